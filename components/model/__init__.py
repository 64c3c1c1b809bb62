"""The box model: settings, plans, sizing and the files rendered from them.

Pure: no Pulumi, no I/O beyond reading the templates. Layers above import it; it imports none.
"""

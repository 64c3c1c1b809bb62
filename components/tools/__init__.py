"""The command-line tools (render, diff, explain, reference, rehearse, bench).

They read the box model and the cloud layer; nothing imports them.
"""

"""The Pulumi resources: one ComponentResource per module, built from the box model."""

"""tunedstack: settings, sizing, rendering and Pulumi components for one tuned Linode box."""

"""The `pantau` command and the demo: the composition root, the only code that imports every
service."""

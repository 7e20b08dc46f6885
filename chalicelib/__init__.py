"""fuse-bridge: queue Plum Fuse outbound calls from friendly JSON (see README.md)."""

"""Everything that runs the bridge on one machine with no AWS account (docs/local.md)."""

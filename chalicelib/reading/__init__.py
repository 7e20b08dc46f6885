"""Reading: what callers see of their calls and lists."""

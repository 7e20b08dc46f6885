"""Validation, pure: a caller's JSON read within bounds, each field checked, a call's and a list's
request, phone numbers. No configuration, no I/O."""

"""Placing calls: one door for each way a call comes in (HTTP, list, native webhook, event), over
one idempotent path to Fuse."""

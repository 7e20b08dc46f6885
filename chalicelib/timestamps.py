"""The one way the bridge writes a moment: ISO-8601 in UTC with a `Z`."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(seconds: int | None) -> str | None:
    """Unix seconds -> `2026-11-23T10:00:00Z`; None, zero, negative or out of range -> None."""
    if not seconds or seconds <= 0:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return None

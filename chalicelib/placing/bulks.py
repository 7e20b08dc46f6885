"""How waiting calls are grouped into bulk_queue requests, pure: what a bulk applies to its
whole list (campaign, schedule, attempts, retry wait, pci) its calls share; what each row keeps
of its own (caller id, DTMF, variables); and never one phone twice in one request, since Fuse's
results name the phone and two rows of one could not be told apart.
"""

from __future__ import annotations

from typing import Any

from chalicelib.records import CallRecord
from chalicelib.validation.call_settings import CallSettings

# What bulk_queue applies to a whole list: calls differing in any of these go in different bulks.
BULK_SETTINGS = ("campaign", "start_at", "end_at", "attempts", "retry_delay", "pci")
MAX_BULK_CALLS = 1000  # rows of one bulk_queue request, at most


def bulk_key(record: CallRecord, now: float) -> tuple[Any, ...]:
    """What a call's bulk must share with it. A start already past is now."""
    request = record.request
    start = request.get("start_at")
    values = {**request, "start_at": start if start is not None and start > now else None}
    return tuple(values.get(name) for name in BULK_SETTINGS)


def plan_bulks(calls: list[CallRecord], max_size: int, now: float) -> list[list[CallRecord]]:
    """The bulks to send: each call in exactly one, with the calls that share its bulk
    settings, at most `max_size` a bulk and never the same phone twice in one (Fuse's results
    name the phone: two rows of one phone could not be told apart)."""
    bulks: dict[tuple[Any, ...], list[list[CallRecord]]] = {}
    for call in calls:
        chunks = bulks.setdefault(bulk_key(call, now), [])
        phone = call.request.get("phone")
        fitting = (
            c
            for c in chunks
            if len(c) < max_size and all(o.request.get("phone") != phone for o in c)
        )
        chunk = next(fitting, None)
        if chunk is None:
            chunk = []
            chunks.append(chunk)
        chunk.append(call)
    return [chunk for chunks in bulks.values() for chunk in chunks]


def shared_settings(call: CallRecord, now: float) -> CallSettings:
    """The bulk-wide settings its calls share (their own caller id and DTMF go in their rows)."""
    request = call.request
    start = request.get("start_at")
    return CallSettings(
        caller_id=str(request["caller_id"]),
        campaign=str(request["campaign"]),
        attempts=int(request.get("attempts") or 1),
        retry_delay=request.get("retry_delay"),
        start_at=start if start is not None and start > now else None,
        end_at=request.get("end_at"),
        pci=request.get("pci"),
    )

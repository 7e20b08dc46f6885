"""How waiting calls are grouped into bulk_queue requests, pure: what a bulk applies to its
whole list (campaign, schedule, attempts, retry wait, pci) its calls share, as do their
integration (one CRM's calls never share a request, nor its results, with another's); what each
row keeps of its own (caller id, DTMF, variables); and never one phone twice in one request,
since Fuse's results name the phone and two rows of one could not be told apart.
"""

from __future__ import annotations

from typing import Any

from chalicelib.records import CallRecord
from chalicelib.validation.call_settings import CallSettings

# What bulk_queue applies to a whole list: calls differing in any of these go in different bulks.
BULK_SETTINGS = ("campaign", "attempts", "retry_delay", "pci")
MAX_BULK_CALLS = 1000  # rows of one bulk_queue request, at most
MINUTE = 60


def window(request: Any, now: float) -> tuple[int | None, int | None]:
    """A call's start and end as its bulk sends them. A start already past is now (None). The
    start is rounded up and the end down to the minute, so that calls asked for a few seconds
    apart ("two hours from enrolment") share a bulk, none starting before nor ending after what
    it asked; unless that would leave it no window: then its own."""
    start, end = request.get("start_at"), request.get("end_at")
    start = start if start is not None and start > now else None
    early = -(-start // MINUTE) * MINUTE if start is not None else None
    late = end // MINUTE * MINUTE if end is not None else None
    if late is not None and late <= (early if early is not None else now):
        return start, end
    return early, late


def bulk_key(record: CallRecord, now: float) -> tuple[Any, ...]:
    """What a call's bulk must share with it."""
    request = record.request
    return (
        record.integration,
        *window(request, now),
        *(request.get(name) for name in BULK_SETTINGS),
    )


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
    start, end = window(request, now)
    return CallSettings(
        caller_id=str(request["caller_id"]),
        campaign=str(request["campaign"]),
        attempts=int(request.get("attempts") or 1),
        retry_delay=request.get("retry_delay"),
        start_at=start,
        end_at=end,
        pci=request.get("pci"),
    )

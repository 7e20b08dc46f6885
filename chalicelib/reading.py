"""Reading: what callers see of their calls and lists (GET /calls/{id}, GET /calls?reference=,
GET /batches/{id})."""

from __future__ import annotations

from collections import Counter
from typing import Any

from chalicelib.answers import call_links, list_links
from chalicelib.errors import FieldError, NotFound, ValidationFailed
from chalicelib.records import CANCEL_REQUESTED, QUEUED, REJECTED, CallRecord, Kind
from chalicelib.request_fields import MAX_REFERENCE_LENGTH
from chalicelib.store import CallStore
from chalicelib.timestamps import iso

DEFAULT_PAGE, MAX_PAGE = 20, 100
MAX_ID_LENGTH = 64  # longer than any id the bridge gives: not looked up at all


def describe_call(record: CallRecord, cancel_requested_at: int | None = None) -> dict[str, Any]:
    """The call as its caller sees it; the phone in full, since the caller gave it.

    A queued call of a campaign whose pending calls were canceled after it was queued reads
    `cancel_requested` until its `canceled` result arrives.
    """
    status = record.status
    if (
        status == QUEUED
        and cancel_requested_at is not None
        and record.created_at <= cancel_requested_at
    ):
        status = CANCEL_REQUESTED
    view = {
        "id": record.id,
        "status": status,
        "reference": record.reference,
        "campaign": record.campaign,
        "fuse_call_id": record.fuse_call_id,
        "request": dict(record.request),
        "created_at": iso(record.created_at),
        "updated_at": iso(record.updated_at or record.created_at),
        "result": dict(record.result) if record.result else None,
        "links": call_links(record.id),
    }
    if record.status == REJECTED and record.reply is not None:
        view["error"] = record.reply.body.get("error")  # why it was never placed
    return view


class CancelMarkers:
    """Each campaign's cancel time, read at most once per request."""

    def __init__(self, store: CallStore) -> None:
        self._store = store
        self._seen: dict[str, int | None] = {}

    def for_record(self, record: CallRecord) -> int | None:
        if record.status != QUEUED or not record.campaign:
            return None
        if record.campaign not in self._seen:
            self._seen[record.campaign] = self._store.cancel_requested_at(record.campaign)
        return self._seen[record.campaign]


def get_call(store: CallStore, call_id: str) -> dict[str, Any]:
    record = store.get(call_id) if len(call_id) <= MAX_ID_LENGTH else None
    if record is None:
        raise NotFound(f"no call {call_id[:MAX_ID_LENGTH]}")
    return describe_call(record, CancelMarkers(store).for_record(record))


def list_calls(store: CallStore, query: dict[str, str]) -> dict[str, Any]:
    """`reference` (required), `limit` (1-100, default 20), `cursor` (the `next` of a page)."""
    errors = []
    reference = query.get("reference", "")
    if not 1 <= len(reference) <= MAX_REFERENCE_LENGTH:
        errors.append(
            FieldError("reference", f"is required: 1 to {MAX_REFERENCE_LENGTH} characters")
        )
    limit_text = query.get("limit", str(DEFAULT_PAGE))
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_PAGE:
        errors.append(FieldError("limit", f"must be an integer from 1 to {MAX_PAGE}"))
    unknown = set(query) - {"reference", "limit", "cursor"}
    errors += [FieldError(name, "unknown query parameter") for name in sorted(unknown)]
    if errors:
        names = ", ".join(e.field for e in errors)
        raise ValidationFailed(f"the query has invalid parameters: {names}", errors)
    records, cursor = store.by_reference(reference, int(limit_text), query.get("cursor"))
    markers = CancelMarkers(store)
    return {"calls": [describe_call(r, markers.for_record(r)) for r in records], "next": cursor}


def describe_list(store: CallStore, list_id: str) -> dict[str, Any]:
    """A list and each contact's call, in list order, with counts by status."""
    record = store.get(list_id, Kind.LIST) if len(list_id) <= MAX_ID_LENGTH else None
    if record is None:
        raise NotFound(f"no batch {list_id[:MAX_ID_LENGTH]}")
    markers = CancelMarkers(store)
    contacts = [
        {
            "index": call.list_index,
            "id": call.id,
            "phone": call.request.get("phone"),
            "reference": call.reference,
            "status": describe_call(call, markers.for_record(call))["status"],
        }
        for call in store.list_calls(list_id)
    ]
    return {
        "batch_id": list_id,
        "status": record.status,
        "campaign": record.campaign,
        "created_at": iso(record.created_at),
        "counts": dict(Counter(c["status"] for c in contacts)),
        "contacts": contacts,
        "skipped": record.request.get("skipped", []),
        "links": list_links(list_id),
    }

"""What callers read about their calls: GET /calls/{id} and GET /calls?reference=."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from chalicelib.call_request import MAX_REFERENCE_LENGTH
from chalicelib.errors import FieldError, NotFound, ValidationFailed
from chalicelib.records import CANCEL_REQUESTED, QUEUED, CallRecord
from chalicelib.store import CallStore

DEFAULT_PAGE, MAX_PAGE = 20, 100


def iso(seconds: int) -> str | None:
    return (
        datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z") if seconds else None
    )


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
        "links": {"self": f"/calls/{record.id}"},
    }
    if record.status == "rejected" and record.reply is not None:
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
    record = store.get(call_id) if len(call_id) <= 64 else None
    if record is None:
        raise NotFound(f"no call {call_id[:64]}")
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

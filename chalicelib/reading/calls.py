"""What callers see of their calls: GET /calls/{id} and GET /calls?reference=."""

from __future__ import annotations

import re
from typing import Any

from chalicelib.config.integrations import Caller
from chalicelib.deliveries.messages import delivery_view
from chalicelib.errors import FieldError, NotFound, ValidationFailed
from chalicelib.placing.replies import call_links
from chalicelib.reading.cursors import seal, unseal
from chalicelib.records import CANCEL_REQUESTED, MAX_ID_LENGTH, QUEUED, CallRecord
from chalicelib.store.calls import CallStore
from chalicelib.timestamps import iso
from chalicelib.validation.fields import MAX_REFERENCE_LENGTH

DEFAULT_PAGE, MAX_PAGE = 20, 100
PAGE_SIZE = re.compile(r"[0-9]{1,3}")  # ASCII digits only: "²".isdigit() is True, int("²") fails


def describe_call(
    record: CallRecord,
    base_url: str,
    cancel_requested_at: int | None = None,
    delivering: frozenset[str] = frozenset(),
) -> dict[str, Any]:
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
        "links": call_links(base_url, record.id),
    }
    if record.bulk_id is not None:
        view["bulk_id"] = record.bulk_id  # the bulk_queue request it went to Fuse in
    if record.never_placed and record.reply is not None:
        view["error"] = record.reply.body.get("error")  # why the bridge never placed it
    delivery = delivery_view(record, record.integration in delivering)
    if delivery is not None:
        view["delivery"] = delivery
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
            self._seen[record.campaign] = self._store.markers.cancel_requested_at(record.campaign)
        return self._seen[record.campaign]


def get_call(
    store: CallStore,
    call_id: str,
    base_url: str,
    caller: Caller,
    delivering: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Another integration's call is `not_found`, exactly as an absent one."""
    record = store.get(call_id) if len(call_id) <= MAX_ID_LENGTH else None
    if record is None or not caller.may_read(record.integration):
        raise NotFound(f"no call {call_id[:MAX_ID_LENGTH]}")
    cancel_at = CancelMarkers(store).for_record(record)
    return describe_call(record, base_url, cancel_at, delivering)


def calls_by_reference(
    store: CallStore,
    query: dict[str, str],
    base_url: str,
    cursor_key: str,
    caller: Caller,
    *,
    delivering: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """`reference` (required), `limit` (1-100, default 20), `cursor` (the `next` of a page).
    Only the caller's integration's calls (an admin's: all); a page may then hold fewer than
    `limit` (DynamoDB filters after its limit), so follow `next` until it is null."""
    errors = []
    reference = query.get("reference", "")
    if not 1 <= len(reference) <= MAX_REFERENCE_LENGTH:
        errors.append(
            FieldError("reference", f"is required: 1 to {MAX_REFERENCE_LENGTH} characters")
        )
    limit_text = query.get("limit", str(DEFAULT_PAGE))
    if not PAGE_SIZE.fullmatch(limit_text) or not 1 <= int(limit_text) <= MAX_PAGE:
        errors.append(FieldError("limit", f"must be an integer from 1 to {MAX_PAGE}"))
    unknown = set(query) - {"reference", "limit", "cursor"}
    errors += [FieldError(name, "unknown query parameter") for name in sorted(unknown)]
    if errors:
        names = ", ".join(e.field for e in errors)
        raise ValidationFailed(f"the query has invalid parameters: {names}", errors)
    given = query.get("cursor")
    owner = None if caller.admin else caller.integration
    listing = f"{'admin' if owner is None else 'integration ' + owner}\n{reference}"
    page = unseal(given, listing, cursor_key) if given else None
    records, next_page = store.by_reference(reference, int(limit_text), page, owner)
    markers = CancelMarkers(store)
    return {
        "calls": [describe_call(r, base_url, markers.for_record(r), delivering) for r in records],
        "next": seal(next_page, listing, cursor_key) if next_page else None,
    }

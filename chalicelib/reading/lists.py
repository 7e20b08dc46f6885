"""What callers see of a list: GET /batches/{id}, each contact's call with counts by status."""

from __future__ import annotations

from collections import Counter
from typing import Any

from chalicelib.config.integrations import Caller
from chalicelib.errors import NotFound
from chalicelib.placing.replies import list_links
from chalicelib.reading.calls import CancelMarkers, describe_call
from chalicelib.records import MAX_ID_LENGTH, Kind, Reply
from chalicelib.store.calls import CallStore
from chalicelib.timestamps import iso


def describe_list(store: CallStore, list_id: str, base_url: str, caller: Caller) -> dict[str, Any]:
    """A list and each contact's call, in list order, with counts by status."""
    record = store.get(list_id, Kind.LIST) if len(list_id) <= MAX_ID_LENGTH else None
    if record is None or not caller.may_read(record.integration):
        raise NotFound(f"no batch {list_id[:MAX_ID_LENGTH]}")
    markers = CancelMarkers(store)
    contacts = [
        {
            "index": call.list_index,
            "id": call.id,
            "phone": call.request.get("phone"),
            "status": describe_call(call, base_url, markers.for_record(call))["status"],
        }
        for call in store.lists.contacts(list_id, since=record.created_at)
    ]
    return {
        "batch_id": list_id,
        "status": record.status,
        "campaign": record.campaign,
        "created_at": iso(record.created_at),
        "counts": dict(Counter(c["status"] for c in contacts)),
        "contacts": contacts,
        "skipped": (store.first_reply(record) or Reply(0, {})).body.get("skipped", []),
        "links": list_links(base_url, list_id),
    }

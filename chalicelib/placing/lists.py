"""Placing a list: POST /calls/bulk, after authentication, on placing's idempotent path.

A list is one Fuse `bulk_queue` request (Plum warns that looping the single-call API can make
every call fail); each contact then gets a call of its own, whose id is derived from the list and
the phone, so that a result Fuse posts for the list (it names the phone, not the row) finds its
call without a lookup. A result that comes before the contacts are written is kept beside the
list and matched by results/ (callbacks.py, the reconciler). Its own module: a cold POST /calls
need not import lists.
"""

from __future__ import annotations

import math
from typing import Any

from chalicelib.config.dependencies import Dependencies
from chalicelib.config.integrations import Caller
from chalicelib.config.parameters import Parameters
from chalicelib.errors import BridgeError, FuseError, FuseOutcomeUnknown
from chalicelib.fuse.bulk_form import bulk_form_fields, contacts_csv
from chalicelib.fuse.callback_urls import list_callback_url
from chalicelib.logs import logger
from chalicelib.metrics import count
from chalicelib.placing.idempotency import (
    DEFAULT_CALLER,
    counted_as_rejected,
    key_of,
    place_once,
    release,
)
from chalicelib.placing.ids import contact_call_id
from chalicelib.placing.replies import list_links, list_reply
from chalicelib.records import QUEUED, UNKNOWN, CallRecord, Kind, Placement
from chalicelib.validation.json_body import read_json
from chalicelib.validation.list_request import ListRequest, parse_list_request, skipped_json

MAX_LIST_BODY_BYTES = 5 * 1024 * 1024


@counted_as_rejected
def place_list(
    raw_body: bytes | None,
    key_header: str | None,
    public_base_url: str,
    parameters: Parameters,
    deps: Dependencies,
    *,
    caller: Caller = DEFAULT_CALLER,
) -> Placement:
    """The whole of POST /calls/bulk after authentication."""
    body = read_json(raw_body, MAX_LIST_BODY_BYTES)
    return place_once(
        Kind.LIST,
        body,
        key_of(key_header, body),
        parse=parse_list_request,
        send=send_list,
        base_url=public_base_url,
        parameters=parameters,
        deps=deps,
        caller=caller,
    )


def send_list(
    record: CallRecord,
    request: ListRequest,
    base_url: str,
    parameters: Parameters,
    deps: Dependencies,
) -> Placement:
    """Asks Fuse for the whole list whose key is held, as one bulk_queue request."""
    list_id = record.id
    url = list_callback_url(base_url, list_id, parameters.callback_secret)
    log = {"batch_id": list_id, "campaign": request.campaign, "contacts": len(request.contacts)}
    unknown: FuseOutcomeUnknown | None = None
    call_ids: tuple[str, ...] | None = None
    fuse_response = ""
    try:
        queued = deps.fuse.bulk_queue(
            parameters.fuse_credentials,
            parameters.campaigns[request.campaign],
            csv_file=contacts_csv(request),
            fields=bulk_form_fields(request, url),
            rows=len(request.contacts),
        )
        call_ids, fuse_response = queued.call_ids, queued.body
    except FuseOutcomeUnknown as err:
        count("FuseErrors", code=err.code)
        unknown = err
    except FuseError as err:
        logger.warning("list not queued", extra={**log, "outcome": err.code})
        count("FuseErrors", code=err.code)
        release(list_id, Kind.LIST, deps)
        raise
    status = UNKNOWN if unknown else QUEUED
    count("BulkContacts", len(request.contacts), outcome=status)
    now = math.floor(deps.clock())
    calls = contact_calls(
        record,
        request,
        status=status,
        call_ids=call_ids,
        now=now,
        id_secret=parameters.id_secret,
        deps=deps,
    )
    body: dict[str, Any] = {
        "batch_id": list_id,
        "status": status,
        # Each contact's call, in list order; its reference is on the call (GET /calls/{id}):
        # 10,000 references of 128 non-ASCII characters would make an answer over Lambda's 6 MB.
        "calls": [{"index": c.list_index, "id": c.id, "phone": c.request["phone"]} for c in calls],
        "skipped": skipped_json(request.skipped),
        "links": list_links(base_url, list_id),
    }
    reply = list_reply(base_url, list_id, body, unknown)
    expires_at = deps.settings.expires_at(now)
    try:
        # The contacts' calls first: a result Fuse posts for the list must find its call. One
        # that came sooner was kept beside the list and left for the reconciler; one that comes
        # after the list settles below finds its call (results/callbacks.py).
        deps.store.lists.put_contacts(calls, expires_at)
        deps.store.lists.save_reply(list_id, reply, expires_at)
        deps.store.settle(
            list_id, status, None, now=now, kind=Kind.LIST, fuse_response=fuse_response
        )
    except BridgeError:
        # Fuse has the list: say so. The key stays held (pending, then unknown on replay), and
        # results for contacts not recorded are kept beside the list, as unmatched.
        logger.exception("list queued but not fully recorded", extra=log)
    logger.info(
        "list sent", extra={**log, "outcome": status, "fuse_call_ids": call_ids is not None}
    )
    return Placement(list_id, status, reply)


def contact_calls(
    list_record: CallRecord,
    request: ListRequest,
    *,
    status: str,
    call_ids: tuple[str, ...] | None,
    now: int,
    id_secret: str,
    deps: Dependencies,
) -> list[CallRecord]:
    """One call per contact, its list's integration's. Only with Fuse's ids can the reconciler
    ask about a call later."""
    list_id = list_record.id
    shared = request.settings.to_json()
    poll_at = request.settings.check_after(now, deps.settings.reconcile_after_seconds)
    return [
        CallRecord(
            id=contact_call_id(id_secret, list_id, contact.phone),
            status=status,
            request_hash="",
            created_at=now,
            lock_until=0,
            request={
                "phone": contact.phone,
                **shared,
                "variables": dict(contact.variables),
                "reference": contact.reference,
                "batch_id": list_id,
            },
            reference=contact.reference,
            campaign=request.campaign,
            fuse_call_id=call_ids[row] if call_ids else None,
            list_id=list_id,
            list_index=contact.index,
            check_after=poll_at if call_ids and status == QUEUED else None,
            integration=list_record.integration,
        )
        for row, contact in enumerate(request.contacts)
    ]

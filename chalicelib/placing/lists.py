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
from dataclasses import replace
from typing import Any

from chalicelib.admission.calls import opt_out_link
from chalicelib.admission.contacts import (
    admit_contacts,
    give_back_contacts,
    schedule_list,
    skipped_for,
)
from chalicelib.config.dependencies import Dependencies
from chalicelib.config.integrations import Caller
from chalicelib.config.parameters import Parameters
from chalicelib.errors import (
    BridgeError,
    CallLimitReached,
    FuseError,
    FuseOutcomeUnknown,
    OutsideCallingHours,
    PhoneSuppressed,
    ValidationFailed,
)
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
from chalicelib.validation.list_request import (
    Contact,
    ListRequest,
    parse_list_request,
    skipped_json,
)

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
        schedule=schedule_list,
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
    """Asks Fuse for the whole list whose key is held: its contacts counted against their
    numbers' caps (a suppressed or capped one skipped), then one bulk_queue request per
    window (bulk_queue has one schedule; contacts of different zones may have different
    windows). A list whose first request Fuse refuses is not placed at all."""
    list_id = record.id
    ids = {
        c.index: contact_call_id(parameters.id_secret, list_id, c.phone) for c in request.contacts
    }
    request = counted_contacts(list_id, request, ids, parameters, deps)
    url = list_callback_url(base_url, list_id, parameters.callback_secret)
    log = {"batch_id": list_id, "campaign": request.campaign, "contacts": len(request.contacts)}
    now = math.floor(deps.clock())
    calls: list[CallRecord] = []
    responses: list[str] = []
    unknown: FuseOutcomeUnknown | None = None
    skipped = list(request.skipped)
    for part in by_window(request):
        call_ids: tuple[str, ...] | None = None
        try:
            queued = deps.fuse.bulk_queue(
                parameters.fuse_credentials,
                parameters.campaigns[request.campaign],
                csv_file=contacts_csv(
                    part,
                    [
                        opt_out_link(base_url, ids[c.index], c.phone, parameters)
                        for c in part.contacts
                    ],
                ),
                fields=bulk_form_fields(part, url),
                rows=len(part.contacts),
            )
            call_ids, status = queued.call_ids, QUEUED
            responses.append(queued.body)
        except FuseOutcomeUnknown as err:
            count("FuseErrors", code=err.code)
            unknown, status = err, UNKNOWN
        except FuseError as err:
            logger.warning("list not queued", extra={**log, "outcome": err.code})
            count("FuseErrors", code=err.code)
            if not calls:  # nothing of it went: the list is not placed, its key is freed
                not_sent(list_id, request, ids, parameters, deps)
                raise
            skipped += [skipped_for(c, err) for c in part.contacts]  # a later window refused
            give_back_contacts(ids, part, parameters=parameters, store=deps.store)
            continue
        count("BulkContacts", len(part.contacts), outcome=status)
        calls += contact_calls(
            record,
            part,
            status=status,
            call_ids=call_ids,
            now=now,
            ids=ids,
            deps=deps,
        )
    status = UNKNOWN if unknown else QUEUED
    calls.sort(key=lambda c: c.list_index or 0)
    skipped.sort(key=lambda s: s.index)
    body: dict[str, Any] = {
        "batch_id": list_id,
        "status": status,
        # Each contact's call, in list order; its reference is on the call (GET /calls/{id}):
        # 10,000 references of 128 non-ASCII characters would make an answer over Lambda's 6 MB.
        "calls": [{"index": c.list_index, "id": c.id, "phone": c.request["phone"]} for c in calls],
        "skipped": skipped_json(tuple(skipped)),
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
            list_id, status, None, now=now, kind=Kind.LIST, fuse_response="\n".join(responses)
        )
    except BridgeError:
        # Fuse has the list: say so. The key stays held (pending, then unknown on replay), and
        # results for contacts not recorded are kept beside the list, as unmatched.
        logger.exception("list queued but not fully recorded", extra=log)
    logger.info("list sent", extra={**log, "outcome": status, "requests": len(responses)})
    return Placement(list_id, status, reply)


def counted_contacts(
    list_id: str,
    request: ListRequest,
    ids: dict[int, str],
    parameters: Parameters,
    deps: Dependencies,
) -> ListRequest:
    """The contacts consent lets ring, counted; none left, or no count possible: the list is
    not placed (its key freed, its counts given back)."""
    try:
        admitted = admit_contacts(
            ids,
            request,
            parameters=parameters,
            settings=deps.settings,
            store=deps.store,
            now=deps.clock(),
        )
    except BridgeError:
        not_sent(list_id, request, ids, parameters, deps)
        raise
    if not admitted.contacts:  # every contact refused, and a refusal counts nothing
        release(list_id, Kind.LIST, deps)
        raise nothing_to_call(admitted)
    return admitted


def by_window(request: ListRequest) -> list[ListRequest]:
    """The list as one request per window, in the order of each window's first contact."""
    parts: dict[tuple[int | None, int | None], list[Contact]] = {}
    shared = request.settings
    for contact in request.contacts:
        parts.setdefault(contact.window or (shared.start_at, shared.end_at), []).append(contact)
    return [
        replace(request, contacts=tuple(c), settings=replace(shared, start_at=s, end_at=e))
        for (s, e), c in parts.items()
    ]


def nothing_to_call(request: ListRequest) -> BridgeError:
    """A list consent left no contact of: refused with the first contact's reason."""
    first = next(s for s in request.skipped if s.code)
    kinds = {e.code: e for e in (PhoneSuppressed, CallLimitReached, ValidationFailed)}
    error = kinds.get(first.code or "", OutsideCallingHours)
    return error(
        "no contact of this list may be called now (see details)",
        [d for s in request.skipped for d in s.details],
    )


def not_sent(
    list_id: str,
    request: ListRequest,
    ids: dict[int, str],
    parameters: Parameters,
    deps: Dependencies,
) -> None:
    """Nothing of the list went to Fuse: its key freed, its contacts' counts given back."""
    release(list_id, Kind.LIST, deps)
    give_back_contacts(ids, request, parameters=parameters, store=deps.store)


def contact_calls(
    list_record: CallRecord,
    request: ListRequest,
    *,
    status: str,
    call_ids: tuple[str, ...] | None,
    now: int,
    ids: dict[int, str],
    deps: Dependencies,
) -> list[CallRecord]:
    """One call per contact (`ids`: each contact's call id, by its index), its list's
    integration's. Only with Fuse's ids can the reconciler ask about a call later."""
    list_id = list_record.id
    shared = request.settings.to_json()  # its window's (send_list sends one part a window)
    poll_at = request.settings.check_after(now, deps.settings.reconcile_after_seconds)
    return [
        CallRecord(
            id=ids[contact.index],
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

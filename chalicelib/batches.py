"""Whole lists of calls: POST /calls/bulk, GET /batches/{id}, and results posted for a list.

A list goes to Fuse as one bulk_queue request (Plum warns that looping the single-call API can
make every call fail). The list has its own idempotency lock (its batch item); each contact gets a
call of its own, whose id is derived from the list and the phone, so that a result Fuse posts for
the list (it names the phone, not the row) finds its call without a lookup.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import replace
from typing import Any

from chalicelib.bulk_request import (
    BulkRequest,
    bulk_form_fields,
    contacts_csv,
    parse_bulk_request,
)
from chalicelib.call_views import CancelMarkers, describe_call, iso
from chalicelib.callback_tokens import batch_result_url, batch_token_subject, require_genuine
from chalicelib.callbacks import publish_outcome, read_delivery
from chalicelib.calls import (
    call_id_for_key,
    check_after,
    hold_key,
    idempotency_key_of,
    new_call_id,
    read_json_body,
    replay_for_key,
    request_fingerprint,
)
from chalicelib.dependencies import Dependencies
from chalicelib.errors import (
    BridgeError,
    FuseOutcomeUnknown,
    NotFound,
    ValidationFailed,
)
from chalicelib.fuse_client import FuseCredentials
from chalicelib.logs import logger
from chalicelib.metrics import count
from chalicelib.phones import InvalidPhone, parse_phone
from chalicelib.records import CALLBACK, PENDING, QUEUED, UNKNOWN, CallRecord, Reply
from chalicelib.secrets import Secrets
from chalicelib.store import BATCH_SORT_KEY, STORED, UNKNOWN_CALL

MAX_BULK_BODY_BYTES = 5 * 1024 * 1024


def batch_id_for_key(key: str) -> str:
    return call_id_for_key(f"batch:{key}")


def contact_call_id(batch_id: str, phone: str) -> str:
    return call_id_for_key(f"batch:{batch_id}:{phone}")


def place_bulk(
    raw_body: bytes | None,
    key_header: str | None,
    public_base_url: str,
    secrets: Secrets,
    deps: Dependencies,
) -> Reply:
    body = read_json_body(raw_body, MAX_BULK_BODY_BYTES)
    key = idempotency_key_of(key_header, body)
    key_id = batch_id_for_key(key) if key is not None else None
    now = deps.clock()
    fingerprint = request_fingerprint(body)
    try:
        request = parse_bulk_request(
            body,
            default_region=deps.settings.default_phone_region,
            now=now,
            campaigns=secrets.campaigns,
        )
    except ValidationFailed:
        if (first := replay_for_key(key_id, fingerprint, now, deps, BATCH_SORT_KEY)) is not None:
            return first
        raise
    batch_id = key_id or new_call_id()
    record = CallRecord(
        id=batch_id,
        status=PENDING,
        request_hash=fingerprint,
        created_at=math.floor(now),
        lock_until=math.ceil(now + deps.settings.in_flight_seconds),
        request={
            **request.shared(),
            "contacts": len(request.contacts),
            "skipped": [s.to_json() for s in request.skipped],
        },
        campaign=request.campaign,
    )
    if (first := hold_key(record, now, deps, BATCH_SORT_KEY)) is not None:
        return first
    callback_url = batch_result_url(public_base_url, batch_id, secrets.callback_secret)
    return send_batch(batch_id, request, callback_url, secrets, deps)


def send_batch(
    batch_id: str, request: BulkRequest, callback_url: str, secrets: Secrets, deps: Dependencies
) -> Reply:
    campaign = secrets.campaigns[request.campaign]
    log = {"batch_id": batch_id, "campaign": request.campaign, "contacts": len(request.contacts)}
    unknown: FuseOutcomeUnknown | None = None
    try:
        queued = deps.fuse.bulk_queue(
            FuseCredentials(secrets.fuse_email, secrets.developer_key),
            campaign.application_id,
            campaign.deployment_id,
            csv_file=contacts_csv(request),
            fields=bulk_form_fields(request, callback_url),
            rows=len(request.contacts),
        )
        call_ids, fuse_answer = queued.call_ids, queued.body
    except FuseOutcomeUnknown as err:
        count("FuseErrors", code=err.code)
        unknown, call_ids, fuse_answer = err, None, ""
    except BridgeError as err:
        logger.warning("list not queued", extra={**log, "outcome": err.code})
        count("FuseErrors", code=err.code)
        deps.store.release(batch_id, BATCH_SORT_KEY)
        raise
    status = UNKNOWN if unknown else QUEUED
    count("BulkContacts", len(request.contacts), outcome=status)
    now = math.floor(deps.clock())
    expires_at = deps.settings.expires_at(now)
    calls = contact_calls(batch_id, request, status=status, call_ids=call_ids, now=now, deps=deps)
    body: dict[str, Any] = {
        "batch_id": batch_id,
        "status": status,
        "calls": [
            {"id": c.id, "phone": c.request["phone"], "reference": c.reference} for c in calls
        ],
        "skipped": [s.to_json() for s in request.skipped],
        "links": {"self": f"/batches/{batch_id}"},
    }
    reply = Reply(202, body, {"Location": f"/batches/{batch_id}"})
    if unknown is not None:
        reply = Reply(unknown.status, {**unknown.body(), **body}, {**reply.headers})
    try:
        # The contacts' calls first: a result Fuse posts for the list must find its call.
        deps.store.put_calls(calls, expires_at)
        deps.store.save_reply(batch_id, reply, expires_at)
        deps.store.settle(
            batch_id, status, None, now=now, fuse_call_id=None, sort_key=BATCH_SORT_KEY
        )
        if fuse_answer:
            deps.store.annotate(batch_id, BATCH_SORT_KEY, fuse_response=fuse_answer)
        rematch_early_results(batch_id, deps)
    except BridgeError:
        # Fuse has the list: say so. The key stays held (pending, then unknown on replay), and
        # results for contacts not recorded are kept beside the list, as unmatched.
        logger.exception("list queued but not fully recorded", extra=log)
    logger.info(
        "list sent", extra={**log, "outcome": status, "fuse_call_ids": call_ids is not None}
    )
    return reply


def rematch_early_results(batch_id: str, deps: Dependencies) -> int:
    """Results Fuse posted while the list's calls were still being written found no call and
    were kept beside the list; now that the calls exist, each goes to its own. Returns how many.
    """
    now = math.floor(deps.clock())
    expires_at = deps.settings.expires_at(now)
    matched = 0
    for body, content_type, received_at in deps.store.kept_deliveries(batch_id):
        kept, outcome = read_delivery(batch_id, CALLBACK, body, content_type, received_at)
        phone = contact_phone(kept.parsed, deps.settings.default_phone_region)
        if phone is None:
            continue
        call_id = contact_call_id(batch_id, phone)
        delivery = replace(kept, call_id=call_id)
        if deps.store.store_result(delivery, outcome, now, expires_at) == STORED:
            matched += 1
            if outcome is not None:
                publish_outcome(deps, call_id, outcome, now)
    if matched:
        logger.info("early list results matched", extra={"batch_id": batch_id, "matched": matched})
    return matched


def contact_calls(
    batch_id: str,
    request: BulkRequest,
    *,
    status: str,
    call_ids: tuple[str, ...] | None,
    now: int,
    deps: Dependencies,
) -> list[CallRecord]:
    """One call per contact. Only with Fuse's ids can the reconciler ask about a call later."""
    shared = request.shared()
    poll_at = check_after(request, now, deps.settings.reconcile_after_seconds)
    return [
        CallRecord(
            id=contact_call_id(batch_id, contact.phone),
            status=status,
            request_hash="",
            created_at=now,
            lock_until=0,
            request={
                "phone": contact.phone,
                **shared,
                "variables": dict(contact.variables),
                "reference": contact.reference,
                "batch_id": batch_id,
            },
            reference=contact.reference,
            campaign=request.campaign,
            fuse_call_id=call_ids[row] if call_ids else None,
            batch_id=batch_id,
            batch_index=contact.index,
            check_after=poll_at if call_ids and status == QUEUED else None,
        )
        for row, contact in enumerate(request.contacts)
    ]


def describe_batch(deps: Dependencies, batch_id: str) -> dict[str, Any]:
    batch = deps.store.get(batch_id, BATCH_SORT_KEY) if len(batch_id) <= 64 else None
    if batch is None:
        raise NotFound(f"no batch {batch_id[:64]}")
    markers = CancelMarkers(deps.store)
    contacts = []
    for call in deps.store.batch_calls(batch_id):
        view = describe_call(call, markers.for_record(call))
        contacts.append(
            {
                "index": call.batch_index,
                "id": call.id,
                "phone": call.request.get("phone"),
                "reference": call.reference,
                "status": view["status"],
            }
        )
    return {
        "batch_id": batch_id,
        "status": batch.status,
        "campaign": batch.campaign,
        "created_at": iso(batch.created_at),
        "counts": dict(Counter(c["status"] for c in contacts)),
        "contacts": contacts,
        "skipped": batch.request.get("skipped", []),
        "links": {"self": f"/batches/{batch_id}"},
    }


def receive_batch_result(
    batch_id: str,
    token: str | None,
    raw: bytes,
    content_type: str,
    *,
    secrets: Secrets,
    deps: Dependencies,
) -> Reply:
    """A result Fuse posted for a list: matched to its contact by the phone it names."""
    require_genuine(batch_token_subject(batch_id), token, secrets.callback_secret)
    now = math.floor(deps.clock())
    expires_at = deps.settings.expires_at(now)
    # Read once, as if for the list; it is the contact's call's if its phone names one.
    probe, outcome = read_delivery(batch_id, CALLBACK, raw, content_type, now)
    phone = contact_phone(probe.parsed, deps.settings.default_phone_region)
    if phone is not None:
        call_id = contact_call_id(batch_id, phone)
        delivery = replace(probe, call_id=call_id)
        stored = deps.store.store_result(delivery, outcome, now, expires_at)
        if stored != UNKNOWN_CALL:
            logger.info(
                "list callback received",
                extra={"batch_id": batch_id, "call_id": call_id, "stored": stored},
            )
            if stored == STORED:
                count("CallbacksStored")
                if outcome is not None:
                    publish_outcome(deps, call_id, outcome, now)
            return Reply(200, {"status": stored, "id": call_id})
    # Never dropped: a result that names no contact of the list is kept beside the list.
    if deps.store.get(batch_id, BATCH_SORT_KEY) is None:
        raise NotFound(f"no batch {batch_id[:64]}")
    stored = "unmatched" if deps.store.put_delivery(probe, expires_at) else "duplicate"
    logger.warning(
        "list callback matches no contact", extra={"batch_id": batch_id, "stored": stored}
    )
    return Reply(200, {"status": stored, "batch_id": batch_id})


def contact_phone(parsed: dict[str, Any] | None, region: str) -> str | None:
    """The phone a result names, in E.164. Fuse writes it without its `+` (its example:
    `'6173720293'`), so national digits are read in the default region, else as international."""
    phone = ((parsed or {}).get("details") or {}).get("phone_number")
    if not isinstance(phone, str) or not phone:
        return None
    for candidate in (phone, "+" + phone.lstrip("+")):
        try:
            return parse_phone(candidate, region)
        except InvalidPhone:
            continue
    return None

"""Placing a call: validate, hold the idempotency key, ask Fuse, record the answer.

The order is what keeps a phone from ringing twice. The call record (and with it the key) is
created before Fuse is asked; it is released only when Fuse certainly queued nothing, and an answer
that may hide a queued call is kept as `unknown` and replayed, never retried.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import secrets as random_source
from typing import Any

from chalicelib.bulk_request import BulkRequest
from chalicelib.call_request import IDEMPOTENCY_KEY, CallRequest, parse_call_request
from chalicelib.callback_tokens import result_url
from chalicelib.dependencies import Dependencies
from chalicelib.errors import (
    BridgeError,
    FieldError,
    FuseOutcomeUnknown,
    IdempotencyInProgress,
    IdempotencyKeyReused,
    InvalidJson,
    PayloadTooLarge,
    ValidationFailed,
)
from chalicelib.fuse_client import FuseCredentials
from chalicelib.fuse_form import fuse_form_fields
from chalicelib.logs import logger
from chalicelib.metrics import count
from chalicelib.phones import mask_phone
from chalicelib.records import PENDING, QUEUED, UNKNOWN, CallRecord, Reply
from chalicelib.secrets import Secrets
from chalicelib.store import CALL_SORT_KEY

MAX_BODY_BYTES = 64 * 1024


def read_json_body(raw: bytes | None, max_bytes: int = MAX_BODY_BYTES) -> Any:
    raw = raw or b""
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"the body is {len(raw)} bytes; at most {max_bytes} are accepted")
    if not raw.strip():
        raise InvalidJson("the body is empty; send a JSON object")
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise InvalidJson("the body is not UTF-8 text") from None
    except json.JSONDecodeError as err:
        raise InvalidJson(
            f"the body is not valid JSON: {err.msg} at line {err.lineno} column {err.colno}"
        ) from None
    except ValueError as err:
        raise InvalidJson(f"the body is not valid JSON: {err}") from None


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def request_fingerprint(body: Any) -> str:
    """Same body, same fingerprint: key order and the idempotency_key field itself do not count."""
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k != "idempotency_key"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _encode_id(raw: bytes) -> str:
    return base64.b32encode(raw[:15]).decode().lower()


def new_call_id() -> str:
    """Opaque and URL-safe: 24 characters of base32, 120 random bits."""
    return _encode_id(random_source.token_bytes(15))


def call_id_for_key(key: str) -> str:
    """The same idempotency key always names the same call, so its record is the key's lock."""
    return _encode_id(hashlib.sha256(b"fuse-bridge/idempotency-key/" + key.encode()).digest())


def idempotency_key_of(header: str | None, body: Any, default: str | None = None) -> str | None:
    """The Idempotency-Key header wins over the body's idempotency_key, which wins over the
    default (an SQS message id, an EventBridge event id)."""
    if header is not None:
        if not IDEMPOTENCY_KEY.match(header):
            raise ValidationFailed(
                "the Idempotency-Key header is invalid",
                [
                    FieldError(
                        "Idempotency-Key",
                        "must be 1 to 255 printable ASCII characters without spaces",
                    )
                ],
            )
        return header
    key = body.get("idempotency_key") if isinstance(body, dict) else None
    return key if isinstance(key, str) and IDEMPOTENCY_KEY.match(key) else default


RESULT_GRACE_SECONDS = 300  # a result may come a little after a call's window has closed


def check_after(request: CallRequest | BulkRequest, now: int, after_seconds: int) -> int:
    """When the reconciler asks Fuse about a call whose result has not come: just after its
    window (`end_at`), or `after_seconds` after its last attempt could have started."""
    if request.end_at is not None:
        return request.end_at + RESULT_GRACE_SECONDS
    start = max(now, request.start_at or now)
    return start + (request.attempts - 1) * (request.retry_delay or 0) + after_seconds


def call_links(call_id: str) -> dict[str, str]:
    return {"self": f"/calls/{call_id}"}


def queued_reply(call_id: str, fuse_call_id: str, reference: str | None) -> Reply:
    body = {
        "id": call_id,
        "status": QUEUED,
        "fuse_call_id": fuse_call_id,
        "reference": reference,
        "links": call_links(call_id),
    }
    return Reply(202, body, {"Location": f"/calls/{call_id}"})


def unknown_reply(call_id: str, err: BridgeError) -> Reply:
    """The 504 keeps the call's id, so the caller can follow it until the callback settles it."""
    body = {**err.body(), "id": call_id, "status": UNKNOWN, "links": call_links(call_id)}
    return Reply(err.status, body, {"Location": f"/calls/{call_id}", **err.headers})


def place_call(
    raw_body: bytes | None,
    key_header: str | None,
    public_base_url: str,
    secrets: Secrets,
    deps: Dependencies,
    *,
    default_key: str | None = None,
) -> Reply:
    """The whole of POST /calls after authentication; raises BridgeError for every refusal."""
    body = read_json_body(raw_body)
    key = idempotency_key_of(key_header, body, default_key)
    key_id = call_id_for_key(key) if key is not None else None
    now = deps.clock()
    fingerprint = request_fingerprint(body)
    try:
        request = parse_call_request(
            body,
            default_region=deps.settings.default_phone_region,
            now=now,
            campaigns=secrets.campaigns,
        )
    except ValidationFailed:
        if (first := replay_for_key(key_id, fingerprint, now, deps)) is not None:
            return first
        raise
    call_id = key_id or new_call_id()
    record = CallRecord(
        id=call_id,
        status=PENDING,
        request_hash=fingerprint,
        created_at=math.floor(now),
        lock_until=math.ceil(now + deps.settings.in_flight_seconds),
        request=request.accepted(),
        reference=request.reference,
        campaign=request.campaign,
    )
    if (first := hold_key(record, now, deps)) is not None:
        return first
    return dial(
        call_id,
        request,
        result_url(public_base_url, call_id, secrets.callback_secret),
        secrets,
        deps,
    )


def replay_for_key(
    key_id: str | None,
    fingerprint: str,
    now: float,
    deps: Dependencies,
    sort_key: str = CALL_SORT_KEY,
) -> Reply | None:
    """For a body that fails validation: if its key names an earlier request, that request's
    first answer (a replay must get it even if, say, its start_at has slipped into the past
    since); None when there was none, and the body is judged on its own."""
    earlier = deps.store.get(key_id, sort_key) if key_id is not None else None
    return replay(earlier, fingerprint, now, deps, sort_key) if earlier is not None else None


def hold_key(
    record: CallRecord, now: float, deps: Dependencies, sort_key: str = CALL_SORT_KEY
) -> Reply | None:
    """Creates the pending record that holds its idempotency key (the conditional put is the
    lock); None when it is ours, else the answer the key's first request earned."""
    earlier = deps.store.begin(record, deps.settings.expires_at(now), math.floor(now), sort_key)
    return (
        replay(earlier, record.request_hash, now, deps, sort_key) if earlier is not None else None
    )


def replay(
    earlier: CallRecord,
    fingerprint: str,
    now: float,
    deps: Dependencies,
    sort_key: str = CALL_SORT_KEY,
) -> Reply:
    """The first answer for this key again; `sort_key` says whether it names a call or a list."""
    log = {"call_id": earlier.id, "call_status": earlier.status}
    if earlier.request_hash != fingerprint:
        logger.info("idempotency key reused with another body", extra=log)
        raise IdempotencyKeyReused(
            "this idempotency key was already used with a different request body; "
            "use a new key for a new call",
            [FieldError("idempotency_key", "already used with a different body")],
        )
    if earlier.status == PENDING:
        if earlier.lock_until > now:
            wait = max(1, math.ceil(earlier.lock_until - now))
            raise IdempotencyInProgress(
                "a request with this idempotency key is still being placed; retry shortly",
                headers={"Retry-After": str(wait)},
            )
        # The invocation placing it died mid-way: Fuse may have the call. Say so; never redial.
        reply = unknown_reply(
            earlier.id,
            FuseOutcomeUnknown(
                "an earlier request with this idempotency key stopped before Fuse's answer was "
                "recorded; the call may have been queued. It will not be retried: its result "
                "callback will settle it"
            ),
        )
        deps.store.settle_stale(earlier.id, UNKNOWN, reply, math.floor(now), sort_key)
        logger.warning("stale in-flight call marked unknown", extra=log)
        return reply
    first = deps.store.first_answer(earlier)
    if first is None:  # settled by another path before its answer was stored
        raise IdempotencyInProgress(
            "the request with this idempotency key is being recorded; retry shortly"
        )
    logger.info("idempotent replay", extra=log)
    return Reply(first.status, first.body, {**first.headers, "Idempotent-Replayed": "true"})


def dial(
    call_id: str, request: CallRequest, callback_url: str, secrets: Secrets, deps: Dependencies
) -> Reply:
    campaign = secrets.campaigns[request.campaign]
    fields = fuse_form_fields(request, callback_url)
    log = {
        "call_id": call_id,
        "reference": request.reference,
        "campaign": request.campaign,
        "phone": mask_phone(request.phone),
    }
    now = math.floor(deps.clock())
    try:
        queued = deps.fuse.queue_call(
            FuseCredentials(secrets.fuse_email, secrets.developer_key),
            campaign.application_id,
            campaign.deployment_id,
            fields,
        )
    except FuseOutcomeUnknown as err:
        count("FuseErrors", code=err.code)
        reply = unknown_reply(call_id, err)
        deps.store.settle(call_id, UNKNOWN, reply, now=now, fuse_call_id=None)
        logger.warning("call outcome unknown", extra={**log, "outcome": err.code})
        return reply
    except BridgeError as err:
        # Fuse certainly queued nothing: free the key so a corrected or later retry may queue.
        logger.warning("call not queued", extra={**log, "outcome": err.code})
        count("FuseErrors", code=err.code)
        release_quietly(call_id, deps)
        raise
    except Exception:
        # A bug between sending and reading: the call may exist, so the key stays held (pending,
        # then unknown on replay) rather than freed for a second dial.
        logger.exception("call outcome unknown after an unexpected error", extra=log)
        raise
    reply = queued_reply(call_id, queued.fuse_call_id, request.reference)
    count("CallsQueued")
    try:
        deps.store.settle(
            call_id,
            QUEUED,
            reply,
            now=now,
            fuse_call_id=queued.fuse_call_id,
            check_after=check_after(request, now, deps.settings.reconcile_after_seconds),
        )
    except BridgeError:
        # The call is queued: say so. A replay will find it pending, then unknown; never redialled.
        logger.exception("call queued but its record could not be updated", extra=log)
    logger.info(
        "call queued", extra={**log, "outcome": "queued", "fuse_call_id": queued.fuse_call_id}
    )
    return reply


def release_quietly(call_id: str, deps: Dependencies) -> None:
    try:
        deps.store.release(call_id)
    except BridgeError:
        # Left pending, the key answers 409 and then `unknown`: cautious, never a second dial.
        logger.exception(
            "could not release the idempotency key of a call not queued", extra={"call_id": call_id}
        )

"""One idempotency key, one Fuse request: the whole flow, for single calls and lists alike.

`place_once` is the one entry (as Powertools keeps its idempotent handler's flow in one place):
read the key, derive the record's id from it, fingerprint the body, validate, hold the key by
creating the pending record (the conditional put is the lock), and only then let the caller ask
Fuse. A later request with the key gets the first answer again (`replay`); a body that fails
validation still gets the first answer if its key names an earlier request. `release` frees a
key only when Fuse certainly queued nothing. An answer that may hide a queued call is kept as
`unknown` and replayed, never retried.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import secrets as random_source
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from chalicelib.config.dependencies import Dependencies
from chalicelib.config.integrations import DEFAULT, Caller
from chalicelib.errors import (
    NOT_RETRIED,
    CampaignNotAllowed,
    ConfigurationIncomplete,
    FieldError,
    FuseOutcomeUnknown,
    IdempotencyInProgress,
    IdempotencyKeyReused,
    StoreUnavailable,
    ValidationFailed,
)
from chalicelib.logs import logger
from chalicelib.placing.replies import unknown_reply
from chalicelib.records import PENDING, UNKNOWN, CallRecord, Kind, Placement, Reply
from chalicelib.store.calls import RecordExists
from chalicelib.validation.fields import IDEMPOTENCY_KEY

DEFAULT_CALLER = Caller()

SEPARATOR = "\x1f"  # in no key (printable ASCII), list id (base32) or phone (E.164)


class Placeable(Protocol):
    """What a validated request shows of itself for its pending record."""

    @property
    def reference(self) -> str | None: ...

    @property
    def campaign(self) -> str: ...

    def accepted(self) -> dict[str, Any]: ...


Request = TypeVar("Request", bound=Placeable)


def _encode_id(raw: bytes) -> str:
    return base64.b32encode(raw[:15]).decode().lower()


def new_id() -> str:
    """Opaque and URL-safe: 24 characters of base32, 120 random bits."""
    return _encode_id(random_source.token_bytes(15))


def derive_id(secret: str, namespace: str, *parts: str) -> str:
    """An id from what names it: a keyed HMAC (the `id_secret` parameter), so an id cannot be
    guessed from a guessable key, in a namespace of its own, so no key of one kind can name a
    record of another (a call's key of the right shape cannot name a list contact's call)."""
    if not secret:
        raise ConfigurationIncomplete("SSM parameter id_secret is missing or empty")
    message = SEPARATOR.join((namespace, *parts)).encode()
    return _encode_id(hmac.new(secret.encode(), message, hashlib.sha256).digest())


def id_for_key(secret: str, key: str, kind: Kind = Kind.CALL, integration: str = DEFAULT) -> str:
    """The same key always names the same record, so the record is the key's lock. Keys are
    each integration's own: the same key from two integrations names two records (`default`
    keeps the derivation it had before integrations, so its keys in flight stay the same)."""
    if integration == DEFAULT:
        return derive_id(secret, kind.value, key)
    return derive_id(secret, kind.value, f"integration:{integration}", key)


def contact_call_id(secret: str, list_id: str, phone: str) -> str:
    """A list contact's call: named by the list and the phone (a result for a list names the
    phone, not the row)."""
    return derive_id(secret, "contact", list_id, phone)


def own_id(secret: str, source_id: str) -> str:
    """Where a rejected event is kept when its key already names another request."""
    return derive_id(secret, "rejected-event", source_id)


def fingerprint(body: Any) -> str:
    """Same body, same fingerprint: key order and the idempotency_key field itself do not count."""
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k != "idempotency_key"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def key_of(header: str | None, body: Any, default: str | None = None) -> str | None:
    """The Idempotency-Key header wins over the body's idempotency_key, which wins over the
    default (an SQS message id, an EventBridge event id)."""
    if header is not None:
        if not IDEMPOTENCY_KEY.fullmatch(header):
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
    return key if isinstance(key, str) and IDEMPOTENCY_KEY.fullmatch(key) else default


def place_once(
    kind: Kind,
    body: Any,
    key: str | None,
    deps: Dependencies,
    *,
    base_url: str,
    id_secret: str,
    parse: Callable[[Any], Request],
    place: Callable[[CallRecord, Request], Placement],
    caller: Caller = DEFAULT_CALLER,
) -> Placement:
    """`parse` validates the body (raising ValidationFailed); `place` asks Fuse, given the
    record whose key is now held; `caller` is whose keys, campaigns and records these are.
    Raises a BridgeError for every refusal."""
    key_id = id_for_key(id_secret, key, kind, caller.integration) if key is not None else None
    now = deps.clock()
    body_fingerprint = fingerprint(body)
    try:
        request = parse(body)
    except ValidationFailed:
        # A replay must get the first answer even if, say, its start_at has slipped into the
        # past since; only a key that names no earlier request lets the body be judged alone.
        earlier = deps.store.get(key_id, kind) if key_id is not None else None
        if earlier is not None:
            return replay(earlier, body_fingerprint, now, deps, base_url)
        raise
    if not caller.may_use(request.campaign):
        raise CampaignNotAllowed(
            f"this integration may not use campaign {request.campaign!r}",
            [FieldError("campaign", f"{request.campaign!r} is not one this integration may use")],
        )
    record = CallRecord(
        id=key_id or new_id(),
        kind=kind,
        status=PENDING,
        request_hash=body_fingerprint,
        created_at=math.floor(now),
        lock_until=math.ceil(now + deps.settings.in_flight_seconds),
        request=request.accepted(),
        reference=request.reference,
        campaign=request.campaign,
        integration=caller.integration,
    )
    try:
        deps.store.create(record, deps.settings.expires_at(now), math.floor(now))
    except RecordExists as held:
        return replay(held.record, body_fingerprint, now, deps, base_url)
    return place(record, request)


def replay(
    earlier: CallRecord, body_fingerprint: str, now: float, deps: Dependencies, base_url: str
) -> Placement:
    """The first answer for this key again, or why there is none yet."""
    log = {"call_id": earlier.id, "call_status": earlier.status}
    if earlier.request_hash != body_fingerprint:
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
            base_url,
            earlier.id,
            FuseOutcomeUnknown(
                "an earlier request with this idempotency key stopped before Fuse's answer was "
                f"recorded; {NOT_RETRIED}"
            ),
        )
        deps.store.settle_stale(earlier, UNKNOWN, reply, math.floor(now))
        logger.warning("stale in-flight call marked unknown", extra=log)
        return Placement(earlier.id, UNKNOWN, reply)
    first = deps.store.first_answer(earlier)
    if first is None:  # settled by another path before its answer was stored
        raise IdempotencyInProgress(
            "the request with this idempotency key is being recorded; retry shortly"
        )
    logger.info("idempotent replay", extra=log)
    replayed = Reply(first.status, first.body, {**first.headers, "Idempotent-Replayed": "true"})
    return Placement(earlier.id, str(first.body.get("status", earlier.status)), replayed)


def release(record_id: str, kind: Kind, deps: Dependencies) -> None:
    """Frees the key of a request Fuse certainly did not queue, so a corrected or later retry
    may queue. If the store cannot be reached, the key stays held (409, then `unknown`):
    cautious, never a second dial."""
    try:
        deps.store.release(record_id, kind)
    except StoreUnavailable:
        logger.exception(
            "could not release the idempotency key of a request not queued",
            extra={"call_id": record_id},
        )

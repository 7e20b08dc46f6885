"""One idempotency key, one Fuse request: the one path every way in takes, for calls and lists.

`place_once` is that path (as Powertools keeps its idempotent handler's flow in one place): derive
the record's id from the key, fingerprint the body, validate, hold the key by creating the
pending record (the conditional put is the lock), and only then let `send` ask Fuse. A later
request with the key gets the first reply again (`replay`); a body that fails validation still
gets the first reply if its key names an earlier request. `release` frees a key only when Fuse
certainly queued nothing. A reply that may hide a queued call is kept as `unknown` and replayed,
never retried.

Only placing's own doors call it (calls.py, lists.py, webhooks.py; events.py through calls.py),
each decorated with `counted_as_rejected`, so every way in counts its refusals the same way.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, Protocol, TypeVar

from chalicelib.admission.calls import give_back
from chalicelib.campaigns import DEFAULT_CAMPAIGN, Campaign
from chalicelib.config.dependencies import Dependencies
from chalicelib.config.integrations import Caller
from chalicelib.config.parameters import Parameters
from chalicelib.config.settings import Settings
from chalicelib.errors import (
    NOT_RETRIED,
    BridgeError,
    CampaignNotAllowed,
    FieldError,
    FuseOutcomeUnknown,
    IdempotencyInProgress,
    IdempotencyKeyReused,
    OutsideCallingHours,
    StoreUnavailable,
    ValidationFailed,
)
from chalicelib.logs import logger
from chalicelib.metrics import count
from chalicelib.placing.ids import id_for_key, new_id
from chalicelib.placing.replies import state_reply, unknown_reply
from chalicelib.records import PENDING, UNKNOWN, WAITING, CallRecord, Kind, Placement, Reply
from chalicelib.store.calls import RecordExists
from chalicelib.validation.fields import IDEMPOTENCY_KEY

DEFAULT_CALLER = Caller()
Params = ParamSpec("Params")


class Placeable(Protocol):
    """What a validated request shows of itself for its pending record."""

    @property
    def reference(self) -> str | None: ...

    @property
    def campaign(self) -> str: ...

    def accepted(self) -> dict[str, Any]: ...


Validated = TypeVar("Validated", bound=Placeable)  # a CallRequest or a ListRequest


def counted_as_rejected(place: Callable[Params, Placement]) -> Callable[Params, Placement]:
    """A call request refused (4xx) once its sender is known is counted CallsRejected, whatever
    brought it (HTTP, list, native webhook, SQS, EventBridge); the API's own RequestsRefused and
    RequestsFailed are counted in app.py."""

    @functools.wraps(place)
    def counted(*args: Params.args, **kwargs: Params.kwargs) -> Placement:
        try:
            return place(*args, **kwargs)
        except BridgeError as err:
            if err.status < 500:
                count("CallsRejected", reason=err.code)
            raise

    return counted


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
    *,
    parse: Callable[..., Validated],
    schedule: Callable[[Validated, Parameters, Settings, float], Validated],
    send: Callable[[CallRecord, Validated, str, Parameters, Dependencies], Placement],
    base_url: str,
    parameters: Parameters,
    deps: Dependencies,
    caller: Caller,
    request_hash: str | None = None,
) -> Placement:
    """`parse` validates the body (raising ValidationFailed), given this deployment's region,
    clock, campaigns and dial policy; `schedule` moves its window into calling hours (or
    refuses it); `send` asks Fuse, given the record whose key is now held;
    `caller` is whose keys, campaigns and records these are; `request_hash` what makes a later
    request with the key the same request (by default its body's fingerprint: another body is
    `idempotency_key_reused`). Raises a BridgeError for every refusal."""
    key_id = (
        id_for_key(parameters.id_secret, key, kind, caller.integration) if key is not None else None
    )
    now = deps.clock()
    body_fingerprint = request_hash or fingerprint(body)
    require_campaign_allowed(body, caller)
    try:
        request = parse(
            body,
            default_region=deps.settings.default_phone_region,
            now=now,
            campaigns=campaigns_of(caller, parameters),
            policy=deps.settings.dial_policy,
        )
        request = schedule(request, parameters, deps.settings, now)
    except (ValidationFailed, OutsideCallingHours):
        # A replay must get the first reply even if, say, its start_at has slipped into the
        # past since, or its calling hours have closed; only a key that names no earlier
        # request lets the body be judged alone.
        earlier = deps.store.get(key_id, kind) if key_id is not None else None
        if earlier is not None:
            return replay(earlier, body_fingerprint, now, deps, base_url)
        raise
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
    return send(record, request, base_url, parameters, deps)


def require_campaign_allowed(body: Any, caller: Caller) -> None:
    """Permission before configuration: a campaign the caller may not use is refused by the
    name it gave, before anything of the campaign is read (a half-written one included)."""
    name = body.get("campaign", DEFAULT_CAMPAIGN) if isinstance(body, dict) else None
    if isinstance(name, str) and not caller.may_use(name):
        raise CampaignNotAllowed(
            f"this integration may not use campaign {name[:64]!r}",
            [FieldError("campaign", f"{name[:64]!r} is not one this integration may use")],
        )


def campaigns_of(caller: Caller, parameters: Parameters) -> Mapping[str, Campaign]:
    """The campaigns validation may name to this caller: its own, never the deployment's."""
    if caller.campaigns is None:
        return parameters.campaigns
    return {n: c for n, c in parameters.campaigns.items() if n in caller.campaigns}


def replay(
    earlier: CallRecord, body_fingerprint: str, now: float, deps: Dependencies, base_url: str
) -> Placement:
    """The first reply for this key again, or why there is none yet."""
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
    if earlier.status == WAITING or earlier.bulk_id is not None:  # it waited: its state now
        logger.info("idempotent replay", extra=log)
        now_reply = state_reply(earlier, base_url)
        headers = {**now_reply.headers, "Idempotent-Replayed": "true"}
        return Placement(
            earlier.id, earlier.status, Reply(now_reply.status, now_reply.body, headers)
        )
    first = deps.store.first_reply(earlier)
    if first is None:  # settled by another path before its reply was stored
        raise IdempotencyInProgress(
            "the request with this idempotency key is being recorded; retry shortly"
        )
    logger.info("idempotent replay", extra=log)
    replayed = Reply(first.status, first.body, {**first.headers, "Idempotent-Replayed": "true"})
    return Placement(earlier.id, str(first.body.get("status", earlier.status)), replayed)


def release_call(call_id: str, phone: str, parameters: Parameters, deps: Dependencies) -> None:
    """A call Fuse certainly did not queue: its key freed (release) and its number's count
    given back, so neither a later retry nor the cap pays for a call that never rang."""
    release(call_id, Kind.CALL, deps)
    give_back(call_id, phone, parameters, deps.store)


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

"""Placing a call: POST /calls (and calls from events and native webhooks), after
authentication; and the one idempotent path (idempotency.place_once) a list takes too
(list_placing.py). A call is one Fuse `queue` request.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from chalicelib.config.dependencies import Dependencies
from chalicelib.config.integrations import Caller
from chalicelib.config.parameters import Secrets
from chalicelib.errors import BridgeError, FuseError, FuseOutcomeUnknown
from chalicelib.fuse.callback_urls import result_url
from chalicelib.fuse.form import fuse_form_fields
from chalicelib.logs import logger
from chalicelib.metrics import count
from chalicelib.placing import idempotency
from chalicelib.placing.replies import queued_reply, unknown_reply
from chalicelib.records import QUEUED, UNKNOWN, CallRecord, Kind, Placement
from chalicelib.validation.call_request import CallRequest, parse_call_request
from chalicelib.validation.json_body import read_json
from chalicelib.validation.phones import mask_phone

Params = ParamSpec("Params")
Request = TypeVar("Request")  # a CallRequest, or list_placing's ListRequest
MAX_BODY_BYTES = 64 * 1024


def parser(
    parse: Callable[..., Request], secrets: Secrets, deps: Dependencies
) -> Callable[[Any], Request]:
    """A request parser with this deployment's region, clock and campaigns filled in."""
    return functools.partial(
        parse,
        default_region=deps.settings.default_phone_region,
        now=deps.clock(),
        campaigns=secrets.campaigns,
        policy=deps.settings.dial_policy,
    )


def place_held(
    kind: Kind,
    body: Any,
    key: str | None,
    parse: Callable[..., Request],
    send: Callable[[CallRecord, Request, str, Secrets, Dependencies], Placement],
    *,
    base_url: str,
    secrets: Secrets,
    deps: Dependencies,
    caller: Caller,
) -> Placement:
    """The one idempotent path, for a call or a list: `send` asks Fuse once the key is held."""
    return idempotency.place_once(
        kind,
        body,
        key,
        deps,
        base_url=base_url,
        id_secret=secrets.id_secret,
        parse=parser(parse, secrets, deps),
        place=lambda record, request: send(record, request, base_url, secrets, deps),
        caller=caller,
    )


def counted_as_rejected(place: Callable[Params, Placement]) -> Callable[Params, Placement]:
    """A call request refused (4xx) is counted CallsRejected, whatever brought it (HTTP, SQS,
    EventBridge); the API's own RequestsRefused/RequestsFailed are counted in app.py."""

    @functools.wraps(place)
    def counted(*args: Params.args, **kwargs: Params.kwargs) -> Placement:
        try:
            return place(*args, **kwargs)
        except BridgeError as err:
            if err.status < 500:
                count("CallsRejected", reason=err.code)
            raise

    return counted


@counted_as_rejected
def place_call(
    raw_body: bytes | None,
    key_header: str | None,
    public_base_url: str,
    secrets: Secrets,
    deps: Dependencies,
    *,
    default_key: str | None = None,
    caller: Caller = idempotency.DEFAULT_CALLER,
) -> Placement:
    """The whole of POST /calls after authentication; raises BridgeError for every refusal."""
    body = read_json(raw_body, MAX_BODY_BYTES)
    key = idempotency.key_of(key_header, body, default_key)
    return place_fields(body, key, public_base_url, secrets, deps, caller=caller)


def place_fields(
    body: Any,
    key: str | None,
    public_base_url: str,
    secrets: Secrets,
    deps: Dependencies,
    *,
    caller: Caller,
) -> Placement:
    """A call from a body already read (POST /calls, or a native webhook after its mapping)."""
    return place_held(
        Kind.CALL,
        body,
        key,
        parse_call_request,
        dial,
        base_url=public_base_url,
        secrets=secrets,
        deps=deps,
        caller=caller,
    )


def dial(
    record: CallRecord, request: CallRequest, base_url: str, secrets: Secrets, deps: Dependencies
) -> Placement:
    """Asks Fuse for the call whose key is held; its result_url is on `base_url`."""
    call_id = record.id
    callback_url = result_url(base_url, call_id, secrets.callback_secret)
    log = {
        "call_id": call_id,
        "reference": request.reference,
        "campaign": request.campaign,
        "phone": mask_phone(request.phone),
    }
    now = math.floor(deps.clock())
    try:
        queued = deps.fuse.queue_call(
            secrets.fuse_credentials,
            secrets.campaigns[request.campaign],
            fuse_form_fields(request, callback_url),
            on_late=lambda late: learnt_late(call_id, late.fuse_call_id, request, deps),
        )
    except FuseOutcomeUnknown as err:
        count("FuseErrors", code=err.code)
        reply = unknown_reply(base_url, call_id, err)
        deps.store.settle(call_id, UNKNOWN, reply, now=now)
        logger.warning("call outcome unknown", extra={**log, "outcome": err.code})
        return Placement(call_id, UNKNOWN, reply)
    except FuseError as err:
        # Fuse certainly queued nothing: free the key so a corrected or later retry may queue.
        logger.warning("call not queued", extra={**log, "outcome": err.code})
        count("FuseErrors", code=err.code)
        idempotency.release(call_id, Kind.CALL, deps)
        raise
    except Exception:
        # A bug between sending and reading: the call may exist, so the key stays held (pending,
        # then unknown on replay) rather than freed for a second dial.
        logger.exception("call outcome unknown after an unexpected error", extra=log)
        raise
    reply = queued_reply(base_url, call_id, queued.fuse_call_id, request.reference)
    count("CallsQueued")
    try:
        deps.store.settle(
            call_id,
            QUEUED,
            reply,
            now=now,
            fuse_call_id=queued.fuse_call_id,
            check_after=request.settings.check_after(now, deps.settings.reconcile_after_seconds),
        )
    except BridgeError:
        # The call is queued: say so. A replay will find it pending, then unknown; never redialled.
        logger.exception("call queued but its record could not be updated", extra=log)
    logger.info(
        "call queued", extra={**log, "outcome": "queued", "fuse_call_id": queued.fuse_call_id}
    )
    return Placement(call_id, QUEUED, reply)


def learnt_late(call_id: str, fuse_call_id: str, request: CallRequest, deps: Dependencies) -> None:
    """Fuse answered after the deadline: the call stays `unknown` (that was the answer given),
    but now has Fuse's id and is opened to the reconciler, which asks Fuse how it ended."""
    now = math.floor(deps.clock())
    check_after = request.settings.check_after(now, deps.settings.reconcile_after_seconds)
    deps.store.settle(
        call_id, UNKNOWN, None, now=now, fuse_call_id=fuse_call_id, check_after=check_after
    )
    logger.warning(
        "fuse answered after the deadline", extra={"call_id": call_id, "fuse_call_id": fuse_call_id}
    )

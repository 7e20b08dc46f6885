"""Salesforce Outbound Messaging on POST /hooks/{integration}: a SOAP envelope of up to 100
notifications, each a record (a Contact, a Lead) to call, from an integration of auth
`salesforce`.

Salesforce cannot sign its messages. What stands in: HTTPS and the org id each message carries
(two of its documentation's recommendations; checked against the integration's `org_ids`, on
its first 15 characters), and a token in the endpoint URL (`?api_key=`, checked before the body
is read).

Each notification is one call, mapped by the integration's JMESPath mapping over its sObject's
fields and keyed by its notification Id, which Salesforce keeps on every redelivery. A
redelivery may carry other field values (Salesforce sends a record as it is when it sends), so
the notification, not its values, is what makes two deliveries the same request: the first
one stands, whatever the values now.

The answer (app.py writes it) is an Ack when every notification is placed (queued, waiting, or
unknown: its key is held, so a redelivery could never ring it again) or refused for good (its
rejection kept, delivered and counted, as an SQS message's is). Any passing fault raises
instead: Salesforce redelivers the whole message, and what was placed is then replayed, never
placed again. A message of several waits for the dispatcher, as an SQS batch does, so 100
notifications go to Fuse in a few bulks, not as 100 single queues.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from chalicelib.config.dependencies import Dependencies
from chalicelib.config.integrations import SALESFORCE, Integration
from chalicelib.config.parameters import Parameters
from chalicelib.errors import (
    BridgeError,
    NoTimeLeft,
    Unauthorized,
    UnsupportedMediaType,
)
from chalicelib.integrations.signatures import WebhookRequest
from chalicelib.logs import logger
from chalicelib.placing.calls import dial, dial_in_bulk
from chalicelib.placing.idempotency import counted_as_rejected, fingerprint
from chalicelib.placing.ids import SEPARATOR
from chalicelib.placing.rejections import PERMANENT, keep_rejection
from chalicelib.placing.webhooks import authenticated, mapped, place_mapped
from chalicelib.records import REJECTED, Placement
from chalicelib.validation.salesforce_message import Notification, read_salesforce_message

API_GATEWAY_SECONDS = 29  # API Gateway's own limit on a request: Salesforce waits 60 s


@dataclass(frozen=True)
class MessageOutcome:
    """What became of a message's notifications: every one placed or rejected, or a fault."""

    placed: int
    rejected: int


def place_salesforce_message(
    name: str,
    request: WebhookRequest,
    base_url: str | None,
    parameters: Parameters,
    deps: Dependencies,
    *,
    remaining_ms: Callable[[], int],
    received_at: float | None = None,
) -> MessageOutcome:
    """The whole of a Salesforce outbound message; `remaining_ms` is the invocation's time
    left, `received_at` when API Gateway took the request (epoch seconds; default now), whose
    29 s run from then, cold start included. Raises a BridgeError (answered as a SOAP fault)
    unless every notification is decided."""
    received_at = time.time() if received_at is None else received_at
    integration = authenticated(name, request, base_url, parameters, deps)
    if integration.auth != SALESFORCE:
        raise UnsupportedMediaType("this integration takes JSON or a form, not XML")
    message = read_salesforce_message(request.body)
    org = message.organization_id[:15]
    if org not in integration.org_ids:
        raise Unauthorized("missing or invalid credentials for this webhook")
    send = dial if len(message.notifications) == 1 else dial_in_bulk
    placed = rejected = 0
    faults: list[BridgeError] = []
    for notification in message.notifications:
        left = min(remaining_ms() / 1000, API_GATEWAY_SECONDS - (time.time() - received_at))
        if left < deps.settings.fuse_request_seconds:
            faults.append(NoTimeLeft("the request's time ran out before every notification"))
            break
        try:
            if decide(
                notification,
                org,
                integration,
                send,
                base_url=str(base_url),
                parameters=parameters,
                deps=deps,
            ):
                placed += 1
            else:
                rejected += 1
        except BridgeError as err:
            faults.append(err)
        except Exception:  # a bug met by this notification: the others are still decided
            logger.exception("notification failed", extra={"notification": notification.id})
            faults.append(BridgeError("an internal error occurred"))
    log = {"action_id": message.action_id, "notifications": len(message.notifications)}
    logger.info(
        "salesforce message",
        extra={**log, "placed": placed, "rejected": rejected, "faults": len(faults)},
    )
    if faults:
        undecided = len(message.notifications) - placed - rejected
        raise not_acknowledged(faults[0], undecided, len(message.notifications))
    return MessageOutcome(placed, rejected)


# A notification's refusals are counted as every door's are (CallsRejected, by reason).
place_counted = counted_as_rejected(place_mapped)


def decide(
    notification: Notification,
    org: str,
    integration: Integration,
    send: Callable[..., Placement],
    *,
    base_url: str,
    parameters: Parameters,
    deps: Dependencies,
) -> bool:
    """One notification placed (True) or refused for good (False, its rejection kept); a
    passing fault raises. Salesforce sends a record as it is when it sends, so a redelivery
    with other values is still a redelivery: the request is the notification, whatever its
    values (`same`), and a redelivery is answered as the first request's replay (while that one
    is still being placed, `idempotency_in_progress`: Salesforce comes again)."""
    fields, expressions = mapped(integration, notification.fields)
    key = SEPARATOR.join(("salesforce", org, notification.id))
    same = fingerprint(key)
    try:
        placed = place_counted(
            integration,
            fields,
            expressions,
            key,
            send,
            base_url=base_url,
            parameters=parameters,
            deps=deps,
            request_hash=same,
        )
    except PERMANENT as err:
        keep_rejection(fields, "", key, err, deps, integration=integration.name, request_hash=same)
        return False
    return placed.status != REJECTED  # REJECTED: a replay of a kept rejection


def not_acknowledged(first: BridgeError, undecided: int, total: int) -> BridgeError:
    """The first passing fault, saying how much of the message it stopped."""
    message = (
        f"{undecided} of {total} notifications not placed yet (Salesforce sends the message "
        f"again; those placed are not placed twice): {first.message}"
    )
    return type(first)(message, first.details, first.headers)

"""Native webhooks: POST /hooks/{integration}, a CRM's own request shape turned into a call.

The sender is authenticated by its integration's scheme (integrations/signatures.py), its body
(JSON, or a form with nested `a[b]=` keys) is mapped to the bridge's fields by the integration's
JMESPath mapping, and the call takes the one idempotent path, with the same answers as POST
/calls.

Senders that cannot set an idempotency key still never ring a phone twice on a retry: the key is
the mapped (or sent) `idempotency_key`, else the Standard Webhooks `webhook-id`, else a
fingerprint of the integration and the raw body, held for DEDUP_WINDOW_SECONDS (a retried
webhook is the same body) and for as long after as the call it named is still open. For a
signed integration the key comes only from what its signature covers: its `Idempotency-Key`
header is ignored, since anyone replaying a captured request could change it. An unsigned one
(a token) may send that header, which then wins.

A webhook whose call's outcome is unknown is answered 202 with that status rather than 504: a
sender's retries could never place it again (its key is held), and a 5xx would make HubSpot
retry for three days; the bridge settles it and delivers its outcome to the results_url.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from jmespath.exceptions import JMESPathError

from chalicelib.admission.calls import schedule_call
from chalicelib.config.dependencies import Dependencies
from chalicelib.config.integrations import (
    INTEGRATION_NAME,
    SALESFORCE,
    SIGNED,
    STANDARD_WEBHOOKS,
    Caller,
    FieldMapping,
    Integration,
)
from chalicelib.config.parameters import Parameters
from chalicelib.errors import (
    BridgeError,
    ConfigurationIncomplete,
    FieldError,
    InvalidForm,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
)
from chalicelib.integrations.signatures import WebhookRequest, authentic
from chalicelib.placing.calls import MAX_BODY_BYTES, dial
from chalicelib.placing.idempotency import counted_as_rejected, key_of, place_once
from chalicelib.placing.ids import SEPARATOR, id_for_key
from chalicelib.records import PENDING, UNKNOWN, Kind, Placement, Reply
from chalicelib.validation.call_request import parse_call_request
from chalicelib.validation.form_body import OverwrittenField, nest_php_keys
from chalicelib.validation.json_body import read_json

FORM = "application/x-www-form-urlencoded"
MAX_WEBHOOK_FORM_FIELDS = 200
# ASCII digits, or Salesforce's integral number ("3.0"); "3.5" stays a string, refused.
NUMBER_STRING = re.compile(r"([0-9]{1,9})(?:\.0{1,9})?")
NUMBER_FIELDS = ("attempts", "retry_delay")
BOOLEAN_STRINGS = {"true": True, "false": False}
NO_INTEGRATION = Integration("", problem="unknown")  # authenticates nothing, in the same time
OPEN_STATUSES = (PENDING, UNKNOWN)  # a call that may still ring: its sender's key stays held


def place_webhook(
    name: str,
    request: WebhookRequest,
    base_url: str | None,
    parameters: Parameters,
    deps: Dependencies,
) -> Placement:
    """The whole of POST /hooks/{name} for a JSON or form body."""
    integration = authenticated(name, request, base_url, parameters, deps)
    if integration.auth == SALESFORCE:
        raise UnsupportedMediaType("this integration takes Salesforce outbound messages (text/xml)")
    return place_authenticated(integration, request, str(base_url), parameters, deps)


def authenticated(
    name: str,
    request: WebhookRequest,
    base_url: str | None,
    parameters: Parameters,
    deps: Dependencies,
) -> Integration:
    """The integration `name`, if the request proves it is from it. An unknown integration and
    a bad credential get the same 401: a stranger cannot tell which integrations exist."""
    known = parameters.integrations.get(name) if INTEGRATION_NAME.fullmatch(name) else None
    integration = known or NO_INTEGRATION
    if not authentic(integration, request, deps.clock()) or integration.problem:
        raise Unauthorized("missing or invalid credentials for this webhook")
    if base_url is None:  # told only to an authenticated sender
        raise ConfigurationIncomplete("environment variable PUBLIC_BASE_URL is not set")
    return integration


@counted_as_rejected
def place_authenticated(
    integration: Integration,
    request: WebhookRequest,
    base_url: str,
    parameters: Parameters,
    deps: Dependencies,
) -> Placement:
    """The webhook of a known sender: its body read and mapped, its key found, its call placed."""
    body = read_body(request.body, request.headers.get("content-type", ""))
    fields, expressions = mapped(integration, body)
    header = None if integration.auth in SIGNED else request.headers.get("idempotency-key")
    key = key_of(header, fields)
    if key is None:
        key = sender_key(integration, request, parameters, deps)
    placed = place_mapped(
        integration,
        fields,
        expressions,
        key,
        dial,
        base_url=base_url,
        parameters=parameters,
        deps=deps,
    )
    return for_sender(placed)


def mapped(integration: Integration, body: Any) -> tuple[Any, dict[str, str]]:
    """The bridge's fields from a sender's body, by its integration's mapping (none: the body is
    the bridge's own JSON), and each mapped field's expression, for error messages."""
    expressions: dict[str, str] = {}
    if integration.mapping is not None:
        body, expressions = apply_mapping(integration.mapping, body)
    return accept_string_forms(body), expressions


def place_mapped(
    integration: Integration,
    fields: Any,
    expressions: dict[str, str],
    key: str,
    send: Callable[..., Placement],
    *,
    base_url: str,
    parameters: Parameters,
    deps: Dependencies,
    request_hash: str | None = None,
) -> Placement:
    """One call of a webhook on the one idempotent path (`request_hash`: place_once's); a
    refusal names each mapped field with the expression it came from."""
    try:
        return place_once(
            Kind.CALL,
            fields,
            key,
            parse=parse_call_request,
            schedule=schedule_call,
            send=send,
            base_url=base_url,
            parameters=parameters,
            deps=deps,
            caller=Caller.of(integration),
            request_hash=request_hash,
        )
    except BridgeError as err:
        if not err.details or not expressions:
            raise
        raise renamed(err, expressions) from None


def for_sender(placed: Placement) -> Placement:
    """A webhook sender is answered 2xx for a call whose outcome is unknown (the bridge follows
    it from here), with the same body POST /calls answers 504."""
    if placed.status != UNKNOWN or placed.reply.status < 500:
        return placed
    headers = {k: v for k, v in placed.reply.headers.items() if k.lower() != "retry-after"}
    return Placement(placed.id, placed.status, Reply(202, placed.reply.body, headers))


def read_body(raw: bytes, content_type: str) -> Any:
    """JSON (the bounded reader of POST /calls), or a form read like a callback's. A field
    given twice is refused, as a repeated query parameter is: which one was meant cannot be
    known (but `a[]=` keys, which list)."""
    if content_type.split(";", 1)[0].strip().lower() != FORM:
        return read_json(raw, MAX_BODY_BYTES)
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"the body is over {MAX_BODY_BYTES // 1024} KiB")
    try:
        pairs = parse_qsl(
            raw.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_WEBHOOK_FORM_FIELDS
        )
    except UnicodeDecodeError:
        raise InvalidForm("the form body is not UTF-8") from None
    except ValueError:
        raise InvalidForm(f"the form has more than {MAX_WEBHOOK_FORM_FIELDS} fields") from None
    names = Counter(name for name, _ in pairs if not name.endswith("[]"))  # `a[]=` appends
    if repeated := sorted(name for name, seen in names.items() if seen > 1):
        shown = ", ".join(name[:64] for name in repeated[:10])
        raise InvalidForm(f"form fields given more than once: {shown}")
    try:
        return nest_php_keys(pairs, strict=True)
    except OverwrittenField as err:
        raise InvalidForm(f"form fields name one field twice: {err.key[:64]}") from None


def apply_mapping(mapping: tuple[FieldMapping, ...], body: Any) -> tuple[dict[str, Any], dict]:
    """The bridge's request from the sender's body: a field whose expression yields null is
    absent. Returns the fields and, for error messages, each field's expression."""
    fields: dict[str, Any] = {}
    for item in mapping:
        try:
            value = item.compiled.search(body)
        except JMESPathError:  # a function given the wrong type by this body
            value = None
        if value is not None:
            fields[item.field] = value
    return fields, {item.field: item.expression for item in mapping}


def accept_string_forms(body: Any) -> Any:
    """Forms and many CRMs send every value as a string: `"3"` for attempts, `"true"` for pci.
    Strictly: `"3.5"` or `"yes"` stays a string, and the usual validation refuses it."""
    if not isinstance(body, dict):
        return body
    fields = dict(body)
    for name in NUMBER_FIELDS:
        number = (
            NUMBER_STRING.fullmatch(fields[name]) if isinstance(fields.get(name), str) else None
        )
        if number:
            fields[name] = int(number.group(1))
    if isinstance(fields.get("pci"), str) and fields["pci"] in BOOLEAN_STRINGS:
        fields["pci"] = BOOLEAN_STRINGS[fields["pci"]]
    return fields


def sender_key(
    integration: Integration, request: WebhookRequest, parameters: Parameters, deps: Dependencies
) -> str:
    """For a sender that set no key: its webhook-id (Standard Webhooks keeps it across
    retries, and signs it), else the body's fingerprint, held for DEDUP_WINDOW_SECONDS from its
    first sight, and past that for as long as the call it named is pending or unknown."""
    message_id = request.headers.get("webhook-id")
    if integration.auth == STANDARD_WEBHOOKS and message_id:
        return SEPARATOR.join(("webhook-id", message_id))
    digest = hashlib.sha256(integration.name.encode() + b"\x00" + request.body).hexdigest()

    def body_key(first_seen: int) -> str:
        return SEPARATOR.join(("body", digest, str(first_seen)))

    def still_open(first_seen: int) -> bool:
        named = id_for_key(parameters.id_secret, body_key(first_seen), Kind.CALL, integration.name)
        call = deps.store.get(named)
        return call is not None and call.status in OPEN_STATUSES

    now = int(deps.clock())
    window = deps.settings.dedup_window_seconds
    started = deps.store.markers.dedup_window_start(
        digest, now, window, still_open, deps.settings.expires_at(now)
    )
    return body_key(started)


def renamed(err: BridgeError, expressions: dict[str, str]) -> BridgeError:
    """The same refusal, each mapped field named with the expression it came from:
    `phone (from properties.phone)`."""
    details = []
    for detail in err.details:
        top = re.split(r"[.\[]", detail.field, maxsplit=1)[0]
        where = expressions.get(top)
        field = f"{detail.field} (from {where})" if where else detail.field
        details.append(FieldError(field, detail.message))
    return type(err)(err.message, details, err.headers)

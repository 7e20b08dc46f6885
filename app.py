"""Routes and event handlers only: each reads its request or event, calls into chalicelib/, and
returns what it gets. Every BridgeError raised below a route reaches the `http` middleware
here, which turns it into the one error shape; chalicelib/errors.py lists the codes.

Only POST /calls' modules are imported with the app; every other route and handler imports its
own on first use, so a cold start of the call a CRM waits on loads nothing it does not run."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from chalice import Chalice, Rate, Response

from chalicelib.config.dependencies import Dependencies, get_dependencies
from chalicelib.config.integrations import Caller
from chalicelib.config.parameters import Parameters
from chalicelib.config.settings import load_event_wiring
from chalicelib.errors import (
    BridgeError,
    ConfigurationIncomplete,
    InvalidJson,
    InvalidQuery,
    MethodNotAllowed,
    UnsupportedMediaType,
)
from chalicelib.integrations.callers import identify_caller, require_admin_token
from chalicelib.logs import logger
from chalicelib.metrics import count
from chalicelib.placing.calls import place_call
from chalicelib.records import Placement, Reply

if TYPE_CHECKING:
    from chalicelib.integrations.signatures import WebhookRequest

# configure_logs=False: app.log is the Powertools logger's own (same name), so Chalice's messages
# are JSON lines too. debug stays off: it would return tracebacks to callers.
app = Chalice(app_name="fuse-bridge", configure_logs=False)
# Multipart callbacks may hold any bytes: API Gateway passes them through base64, untouched.
app.api.binary_types.append("multipart/form-data")
# The schedule and the event sources are built when the app is loaded (by `chalice package`
# too), so these few settings are read here, at import; set them per stage in config.json.
WIRING = load_event_wiring()

# Chalice answers some requests itself (wrong method, content type) as {"Code", "Message"};
# these give them the bridge's error shape and a stable code.
CHALICE_ERRORS: dict[int, type[BridgeError]] = {
    400: InvalidJson,
    405: MethodNotAllowed,
    415: UnsupportedMediaType,
}
_cold = [True]


@app.middleware("all")
def request_context(event: Any, get_response: Callable[[Any], Any]) -> Any:
    """Every invocation's logs carry its Lambda request id; the first one counts a cold start."""
    context = getattr(event, "lambda_context", None) or getattr(event, "context", None)
    logger.remove_keys(["integration"])  # keys live as long as the container: not the caller
    logger.append_keys(lambda_request_id=getattr(context, "aws_request_id", None))
    if _cold[0]:
        _cold[0] = False
        count("ColdStart")
    return get_response(event)


@app.middleware("http")
def bridge_error_shape(event: Any, get_response: Callable[[Any], Response]) -> Response:
    """The bridge's errors, and Chalice's own, as one JSON shape with a stable code; and every
    answer says it is JSON (Chalice leaves that to API Gateway's default)."""
    try:
        response = get_response(event)
    except BridgeError as err:
        return error_response(err)
    if response.status_code >= 400 and isinstance(response.body, dict) and "Code" in response.body:
        error_type = CHALICE_ERRORS.get(response.status_code, BridgeError)
        message = response.body.get("Message") if response.status_code < 500 else None
        return error_response(error_type(str(message or "an internal error occurred")))
    response.headers.setdefault("Content-Type", "application/json")
    return response


def error_response(err: BridgeError) -> Response:
    log_refusal(err)
    headers = {"Content-Type": "application/json", **err.headers}
    return Response(body=err.body(), status_code=err.status, headers=headers)


def log_refusal(err: BridgeError) -> None:
    logger.info("request refused", extra={"outcome": err.code, "http_status": err.status})
    count("RequestsRefused" if err.status < 500 else "RequestsFailed", reason=err.code)


def reply_response(reply: Reply) -> Response:
    return Response(body=dict(reply.body), status_code=reply.status, headers=dict(reply.headers))


def public_base_url(configured: str) -> str:
    """PUBLIC_BASE_URL, else this API's own address as API Gateway reports it (a plain deploy)."""
    base_url = known_base_url(configured)
    if not base_url:
        raise ConfigurationIncomplete("environment variable PUBLIC_BASE_URL is not set")
    return base_url


def known_base_url(configured: str) -> str | None:
    if configured:
        return configured
    context = app.current_request.context
    if not context.get("domainName") or not context.get("stage"):
        return None
    return f"https://{context['domainName']}/{context['stage']}"


def for_caller(*, reading: bool = False) -> tuple[Dependencies, Parameters, str, Caller]:
    """The caller routes' first step: who the token says the caller is (identified()), and the
    public base URL the answer's links are on."""
    deps, parameters, caller = identified(reading=reading)
    return deps, parameters, public_base_url(deps.settings.public_base_url), caller


def identified(*, reading: bool = False) -> tuple[Dependencies, Parameters, Caller]:
    """The collaborators and who the token says the caller is (an integration, or an admin;
    `reading`: a signed integration's read token too), for routes whose answers hold no link."""
    deps = get_dependencies()
    parameters = deps.parameters.get()
    authorization = app.current_request.headers.get("authorization")
    caller = identify_caller(authorization, parameters, reading=reading)
    logger.append_keys(integration=caller.integration)
    return deps, parameters, caller


def for_admin() -> tuple[Dependencies, Parameters]:
    """The admin routes' first step: 403 for a caller's token, 401 for anything else."""
    deps = get_dependencies()
    parameters = deps.parameters.get()
    require_admin_token(app.current_request.headers.get("authorization"), parameters)
    return deps, parameters


def single_query() -> dict[str, str]:
    """The query, each parameter once: `?reference=a&reference=b` cannot be read as one."""
    params = app.current_request.query_params
    if not params:
        return {}
    if repeated := sorted(name for name in params if len(params.getlist(name)) > 1):
        raise InvalidQuery(f"query parameters given more than once: {', '.join(repeated)}")
    return dict(params)


def place_for_caller(place: Callable[..., Placement]) -> Response:
    """POST /calls and POST /calls/bulk: a caller's token, then the body and its key."""
    request = app.current_request
    deps, parameters, base_url, caller = for_caller()
    key = request.headers.get("idempotency-key")
    placed = place(request.raw_body, key, base_url, parameters, deps, caller=caller)
    return reply_response(placed.reply)


def batch_response(retried: Iterable[str]) -> dict[str, Any]:
    """Lambda's partial batch response (the event sources report batch item failures): only
    the messages named come back; the rest of the batch is deleted."""
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in retried]}


@app.route("/health", methods=["GET"])
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.route("/openapi.json", methods=["GET"])
def openapi_document() -> dict[str, Any]:
    """The published contract; no token, no secret in it."""
    from chalicelib.api_document import api_document

    return api_document(known_base_url(get_dependencies().settings.public_base_url))


@app.route("/calls", methods=["POST"])
def queue_call() -> Response:
    return place_for_caller(place_call)


@app.route("/calls/bulk", methods=["POST"])
def queue_calls_in_bulk() -> Response:
    from chalicelib.placing.lists import place_list

    return place_for_caller(place_list)


@app.route("/batches/{batch_id}", methods=["GET"])
def read_list(batch_id: str) -> dict[str, Any]:
    from chalicelib.reading.lists import describe_list

    deps, _, base_url, caller = for_caller(reading=True)
    return describe_list(deps.store, batch_id, base_url, caller)


@app.route("/calls/{call_id}", methods=["GET"])
def read_call(call_id: str) -> dict[str, Any]:
    from chalicelib.reading.calls import get_call

    deps, parameters, base_url, caller = for_caller(reading=True)
    return get_call(deps.store, call_id, base_url, caller, parameters.delivering)


@app.route("/calls", methods=["GET"])
def read_calls() -> dict[str, Any]:
    from chalicelib.reading.calls import calls_by_reference

    deps, parameters, base_url, caller = for_caller(reading=True)
    return calls_by_reference(
        deps.store,
        single_query(),
        base_url,
        parameters.callback_secret,  # signs the page cursors
        caller,
        delivering=parameters.delivering,
    )


@app.route("/campaigns/{name}/pending", methods=["DELETE"])
def cancel_campaign(name: str) -> Response:
    from chalicelib.placing.cancels import cancel_pending

    deps, parameters = for_admin()
    return reply_response(cancel_pending(name, parameters, deps))


@app.route(
    "/hooks/{integration}",
    methods=["POST"],
    content_types=[
        "application/json",
        "application/x-www-form-urlencoded",
        "text/xml",
        "application/xml",
    ],
)
def native_webhook(integration: str) -> Response:
    """A CRM's own webhook: authenticated and mapped by its integration's configuration."""
    from chalicelib.integrations.signatures import WebhookRequest
    from chalicelib.placing.webhooks import place_webhook

    deps = get_dependencies()
    # Not public_base_url(): a missing one must not be told to a caller not yet authenticated.
    base_url = known_base_url(deps.settings.public_base_url)
    request = WebhookRequest.of(f"/hooks/{integration}", app.current_request, base_url)
    logger.append_keys(integration=integration[:40])
    if request.is_xml:
        return salesforce_message(integration, request, base_url, deps)
    placed = place_webhook(integration, request, base_url, deps.parameters.get(), deps)
    return reply_response(placed.reply)


def salesforce_message(
    name: str, request: WebhookRequest, base_url: str | None, deps: Dependencies
) -> Response:
    """A SOAP body is answered in SOAP, whoever sent it: Salesforce redelivers a message until
    an envelope acknowledges it, so a refusal is a fault, never the JSON error shape."""
    from chalicelib.placing.salesforce import place_salesforce_message
    from chalicelib.placing.soap_replies import ACKNOWLEDGED, XML_CONTENT_TYPE, soap_fault

    received_ms = app.current_request.context.get("requestTimeEpoch")  # API Gateway's clock
    try:
        place_salesforce_message(
            name,
            request,
            base_url,
            deps.parameters.get(),
            deps,
            remaining_ms=app.lambda_context.get_remaining_time_in_millis,
            received_at=received_ms / 1000 if isinstance(received_ms, int) else None,
        )
    except BridgeError as err:
        log_refusal(err)
        headers = {**err.headers, "Content-Type": XML_CONTENT_TYPE}
        return Response(body=soap_fault(err), status_code=err.status, headers=headers)
    except Exception:  # a bug: still an envelope, which Salesforce reads as "send it again"
        logger.exception("salesforce message failed")
        failed = BridgeError("an internal error occurred")
        log_refusal(failed)
        headers = {"Content-Type": XML_CONTENT_TYPE}
        return Response(body=soap_fault(failed), status_code=500, headers=headers)
    return Response(body=ACKNOWLEDGED, headers={"Content-Type": XML_CONTENT_TYPE})


@app.route("/integrations/{name}/deliveries/redrive", methods=["POST"], content_types=["*/*"])
def redrive_deliveries(name: str) -> dict[str, Any]:
    """Every failed delivery of an integration back on the queue (admin token)."""
    from chalicelib.deliveries.queueing import redrive

    deps, _ = for_admin()
    return {"integration": name, "requeued": redrive(name, deps)}


@app.route("/suppressions/{phone}", methods=["PUT"], content_types=["application/json", "*/*"])
def put_suppression(phone: str) -> dict[str, Any]:
    """A number on the do-not-call list (an integration's token, or admin)."""
    from chalicelib.admission.suppressions import suppress_number

    deps, parameters, caller = identified()
    return suppress_number(phone, app.current_request.raw_body, caller, parameters, deps)


@app.route("/suppressions/{phone}", methods=["GET"])
def get_suppression(phone: str) -> dict[str, Any]:
    from chalicelib.admission.suppressions import read_suppression

    deps, parameters, caller = identified(reading=True)
    return read_suppression(phone, caller, parameters, deps)


@app.route("/suppressions/{phone}", methods=["DELETE"])
def delete_suppression(phone: str) -> Response:
    """Off the do-not-call list: admin only (an opt-out is the callee's, not a CRM's, to undo)."""
    from chalicelib.admission.suppressions import unsuppress_number

    deps, parameters = for_admin()
    unsuppress_number(phone, parameters, deps)
    return Response(body="", status_code=204)


@app.route("/suppressions", methods=["POST"])
def post_suppressions() -> dict[str, Any]:
    """A CRM's list sync: up to 10,000 numbers on the do-not-call list at once."""
    from chalicelib.admission.suppressions import suppress_numbers

    deps, parameters, caller = identified()
    return suppress_numbers(app.current_request.raw_body, caller, parameters, deps)


@app.route("/fuse/opt-out/{call_id}", methods=["POST"], content_types=["*/*"])
def callee_opted_out(call_id: str) -> dict[str, Any]:
    """The Fuse application's post to a call's opt_out_url: that call's number suppressed."""
    from chalicelib.admission.suppressions import receive_opt_out

    deps = get_dependencies()
    query = single_query()
    return receive_opt_out(call_id, query.get("n"), query.get("token"), deps.parameters.get(), deps)


def receive_from_fuse(receive: Callable[..., Reply], target_id: str) -> Response:
    """A result POSTed by Fuse: its URL's token, its body as received, its Content-Type."""
    request = app.current_request
    deps = get_dependencies()
    reply = receive(
        target_id,
        (request.query_params or {}).get("token"),
        request.raw_body or b"",
        request.headers.get("content-type", ""),
        parameters=deps.parameters.get(),
        deps=deps,
    )
    return reply_response(reply)


@app.route("/fuse/results/{target_id}", methods=["POST"], content_types=["*/*"])
def fuse_result(target_id: str) -> Response:
    from chalicelib.results.callbacks import receive_callback

    return receive_from_fuse(receive_callback, target_id)


@app.route("/fuse/results/batch/{target_id}", methods=["POST"], content_types=["*/*"])
def fuse_list_result(target_id: str) -> Response:
    from chalicelib.results.callbacks import receive_list_callback

    return receive_from_fuse(receive_list_callback, target_id)


@app.route("/fuse/results/bulk/{target_id}", methods=["POST"], content_types=["*/*"])
def fuse_bulk_result(target_id: str) -> Response:
    from chalicelib.results.callbacks import receive_bulk_callback

    return receive_from_fuse(receive_bulk_callback, target_id)


@app.route("/fuse/results/{target_id}", methods=["GET"])
@app.route("/fuse/results/batch/{target_id}", methods=["GET"])
@app.route("/fuse/results/bulk/{target_id}", methods=["GET"])
def fuse_result_probe(target_id: str) -> dict[str, str]:
    """Some Plum services GET a result URL before dialing; it must answer 200."""
    return {"status": "ok"}


@app.schedule(Rate(WIRING.reconcile_rate_minutes, unit=Rate.MINUTES))
def reconcile_calls(event: Any) -> dict[str, Any]:
    from chalicelib.results.reconciler import reconcile

    deps = get_dependencies()
    context = event.context
    report = reconcile(
        deps,
        deps.parameters.get(),
        time_left=lambda: context.get_remaining_time_in_millis() / 1000,
    )
    return vars(report)


@app.on_sqs_message(
    queue=WIRING.call_requests_queue,
    batch_size=WIRING.sqs_batch_size,
    maximum_batching_window_in_seconds=WIRING.sqs_batch_window_seconds,
    maximum_concurrency=WIRING.sqs_maximum_concurrency,
)
def call_requests(event: Any) -> dict[str, Any]:
    """Each message decided alone (a batch's calls then go to Fuse in bulks); only those to
    retry come back (ReportBatchItemFailures)."""
    from chalicelib.placing.events import decide_batch

    # surrogatepass: whatever the text holds reaches the JSON reader, which refuses it there.
    messages = [(r.to_dict()["messageId"], r.body.encode("utf-8", "surrogatepass")) for r in event]
    context = event.context
    outcomes = decide_batch(
        messages,
        get_dependencies(),
        time_left=lambda: context.get_remaining_time_in_millis() / 1000,
    )
    return batch_response(o.source_id for o in outcomes if o.must_retry)


@app.on_sqs_message(queue=WIRING.delivery_queue, batch_size=10)
def deliver_results(event: Any) -> dict[str, Any]:
    """Each queued delivery sent once; those to try again come back after their backoff."""
    from chalicelib.deliveries.attempts import deliver_queued

    deps = get_dependencies()
    outcomes = [
        deliver_queued(r.to_dict(), deps, event.context.get_remaining_time_in_millis) for r in event
    ]
    return batch_response(o.message_id for o in outcomes if o.must_retry)


@app.on_sqs_message(
    queue=WIRING.dispatch_queue,
    batch_size=WIRING.dispatch_batch_size,
    maximum_batching_window_in_seconds=WIRING.dispatch_window_seconds,
    maximum_concurrency=WIRING.fuse_bulk_concurrency,
)
def dispatch_calls(event: Any) -> dict[str, Any]:
    """Waiting calls sent to Fuse in bulks; the messages of calls to send later come back."""
    from chalicelib.placing.dispatch import dispatch_batch

    context = event.context
    outcomes = dispatch_batch(
        [r.to_dict() for r in event],
        get_dependencies(),
        time_left=lambda: context.get_remaining_time_in_millis() / 1000,
    )
    return batch_response(o.message_id for o in outcomes if o.must_retry)


@app.on_cw_event({"detail-type": ["Fuse Call Requested"], "source": [WIRING.call_request_source]})
def call_requested(event: Any) -> dict[str, Any]:
    from chalicelib.placing.events import decide_event

    return vars(decide_event(event.event_id, event.detail, get_dependencies()))

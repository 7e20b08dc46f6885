"""Routes only: each reads the request, calls into chalicelib/, and turns the outcome into HTTP."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from typing import Any

from chalice import Chalice, Rate, Response

from chalicelib.auth import require_admin_token, require_api_token
from chalicelib.batches import describe_batch, place_bulk, receive_batch_result
from chalicelib.call_views import get_call, list_calls
from chalicelib.callbacks import receive_result
from chalicelib.calls import place_call
from chalicelib.campaigns import cancel_pending
from chalicelib.dependencies import Dependencies, get_dependencies
from chalicelib.errors import (
    BridgeError,
    ConfigurationIncomplete,
    InvalidJson,
    MethodNotAllowed,
    UnsupportedMediaType,
)
from chalicelib.event_calls import place_batch
from chalicelib.logs import logger
from chalicelib.metrics import count
from chalicelib.reconciler import reconcile
from chalicelib.records import Reply
from chalicelib.secrets import Secrets

# configure_logs=False: app.log is the Powertools logger's own (same name), so Chalice's messages
# are JSON lines too. debug stays off: it would return tracebacks to callers.
app = Chalice(app_name="fuse-bridge", configure_logs=False)
# Multipart callbacks may hold any bytes: API Gateway passes them through base64, untouched.
app.api.binary_types.append("multipart/form-data")
# Read when the app is loaded (by `chalice deploy`/`package` too), so set per stage in config.json.
RECONCILE_RATE_MINUTES = int(os.environ.get("RECONCILE_RATE_MINUTES", "15"))
CALL_REQUESTS_QUEUE = os.environ.get("CALL_REQUESTS_QUEUE", "fuse-bridge-call-requests")
SQS_BATCH_SIZE = int(os.environ.get("SQS_BATCH_SIZE", "10"))
SQS_MAXIMUM_CONCURRENCY = int(os.environ.get("SQS_MAXIMUM_CONCURRENCY", "2"))
CALL_REQUEST_SOURCE = os.environ.get("CALL_REQUEST_SOURCE", "crm")

# Chalice answers some requests itself (wrong method, content type, a crash) as {"Code", "Message"};
# these give them the bridge's error shape and a stable code.
CHALICE_ERRORS: dict[int, type[BridgeError]] = {
    400: InvalidJson,
    405: MethodNotAllowed,
    415: UnsupportedMediaType,
}


def reply_response(reply: Reply) -> Response:
    return Response(body=dict(reply.body), status_code=reply.status, headers=dict(reply.headers))


def error_response(err: BridgeError) -> Response:
    logger.info("request refused", extra={"outcome": err.code, "http_status": err.status})
    request = app.current_request
    placing = request is not None and request.method == "POST" and request.path.startswith("/calls")
    refused = "CallsRejected" if placing else "RequestsRefused"
    count(refused if err.status < 500 else "RequestsFailed", reason=err.code)
    return Response(body=err.body(), status_code=err.status, headers=err.headers)


def answers_errors(view: Callable[..., Response]) -> Callable[..., Response]:
    """A refusal raised anywhere below a route becomes its JSON error answer."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            return view(*args, **kwargs)
        except BridgeError as err:
            return error_response(err)

    return wrapper


_cold = [True]


@app.middleware("all")
def request_context(event: Any, get_response: Callable[[Any], Any]) -> Any:
    """Every invocation's logs carry its Lambda request id; the first one counts a cold start."""
    context = getattr(event, "lambda_context", None) or getattr(event, "context", None)
    logger.append_keys(lambda_request_id=getattr(context, "aws_request_id", None))
    if _cold[0]:
        _cold[0] = False
        count("ColdStart")
    return get_response(event)


@app.middleware("http")
def bridge_error_shape(event: Any, get_response: Callable[[Any], Response]) -> Response:
    response = get_response(event)
    if response.status_code >= 400 and isinstance(response.body, dict) and "Code" in response.body:
        error_type = CHALICE_ERRORS.get(response.status_code, BridgeError)
        message = response.body.get("Message") if response.status_code < 500 else None
        err = error_type(str(message or "an internal error occurred"))
        response = Response(
            body=err.body(), status_code=error_type.status, headers=response.headers
        )
    return response


def public_base_url(configured: str) -> str:
    """PUBLIC_BASE_URL, else this API's own address as API Gateway reports it (a plain deploy)."""
    if configured:
        return configured
    context = app.current_request.context
    if not context.get("domainName") or not context.get("stage"):
        raise ConfigurationIncomplete("environment variable PUBLIC_BASE_URL is not set")
    return f"https://{context['domainName']}/{context['stage']}"


@app.route("/health", methods=["GET"])
def health() -> dict[str, str]:
    return {"status": "ok"}


def for_caller() -> tuple[Dependencies, Secrets]:
    """The caller routes' first step: the collaborators, once the request's API token is one."""
    deps = get_dependencies()
    secrets = deps.secrets.get()
    require_api_token(app.current_request.headers.get("authorization"), secrets.api_tokens)
    return deps, secrets


def place_for_caller(place: Callable[..., Reply]) -> Response:
    """POST /calls and POST /calls/bulk: an API token, then the body and its idempotency key."""
    request = app.current_request
    deps, secrets = for_caller()
    base_url = public_base_url(deps.settings.public_base_url)
    key = request.headers.get("idempotency-key")
    return reply_response(place(request.raw_body, key, base_url, secrets, deps))


@app.route("/calls", methods=["POST"])
@answers_errors
def queue_call() -> Response:
    return place_for_caller(place_call)


@app.route("/calls/bulk", methods=["POST"])
@answers_errors
def queue_calls_in_bulk() -> Response:
    return place_for_caller(place_bulk)


@app.route("/batches/{batch_id}", methods=["GET"])
@answers_errors
def read_batch(batch_id: str) -> Response:
    deps, _ = for_caller()
    return Response(body=describe_batch(deps, batch_id))


@app.route("/calls/{call_id}", methods=["GET"])
@answers_errors
def read_call(call_id: str) -> Response:
    deps, _ = for_caller()
    return Response(body=get_call(deps.store, call_id))


@app.route("/calls", methods=["GET"])
@answers_errors
def read_calls() -> Response:
    deps, _ = for_caller()
    query = dict(app.current_request.query_params or {})
    return Response(body=list_calls(deps.store, query))


@app.route("/campaigns/{name}/pending", methods=["DELETE"])
@answers_errors
def cancel_campaign(name: str) -> Response:
    deps = get_dependencies()
    secrets = deps.secrets.get()
    authorization = app.current_request.headers.get("authorization")
    require_admin_token(authorization, secrets.admin_tokens, secrets.api_tokens)
    return reply_response(cancel_pending(name, secrets, deps))


def receive_from_fuse(receive: Callable[..., Reply], target_id: str) -> Response:
    """A result POSTed by Fuse: its URL's token, its body as received, its Content-Type."""
    request = app.current_request
    deps = get_dependencies()
    reply = receive(
        target_id,
        (request.query_params or {}).get("token"),
        request.raw_body or b"",
        request.headers.get("content-type", ""),
        secrets=deps.secrets.get(),
        deps=deps,
    )
    return reply_response(reply)


@app.route("/fuse/results/{target_id}", methods=["POST"], content_types=["*/*"])
@answers_errors
def fuse_result(target_id: str) -> Response:
    return receive_from_fuse(receive_result, target_id)


@app.route("/fuse/results/batch/{target_id}", methods=["POST"], content_types=["*/*"])
@answers_errors
def fuse_batch_result(target_id: str) -> Response:
    return receive_from_fuse(receive_batch_result, target_id)


@app.route("/fuse/results/{target_id}", methods=["GET"])
@app.route("/fuse/results/batch/{target_id}", methods=["GET"])
def fuse_result_probe(target_id: str) -> dict[str, str]:
    """Some Plum services GET a result URL before dialing; it must answer 200."""
    return {"status": "ok"}


@app.schedule(Rate(RECONCILE_RATE_MINUTES, unit=Rate.MINUTES))
def reconcile_calls(event: Any) -> dict[str, Any]:
    deps = get_dependencies()
    context = event.context
    report = reconcile(
        deps,
        deps.secrets.get(),
        time_left=lambda: context.get_remaining_time_in_millis() / 1000,
    )
    return vars(report)


@app.on_sqs_message(
    queue=CALL_REQUESTS_QUEUE,
    batch_size=SQS_BATCH_SIZE,
    maximum_concurrency=SQS_MAXIMUM_CONCURRENCY,
)
def call_requests(event: Any) -> list[dict[str, Any]]:
    messages = [(r.to_dict()["messageId"], r.body.encode()) for r in event]
    return [vars(o) for o in place_batch(messages, get_dependencies())]


@app.on_cw_event({"detail-type": ["Fuse Call Requested"], "source": [CALL_REQUEST_SOURCE]})
def call_requested(event: Any) -> list[dict[str, Any]]:
    message = (event.event_id, json.dumps(event.detail).encode())
    return [vars(o) for o in place_batch([message], get_dependencies())]

"""Routes only: each reads the request, calls into chalicelib/, and turns the outcome into HTTP."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from chalice import Chalice, Response

from chalicelib.auth import require_api_token
from chalicelib.calls import place_call
from chalicelib.dependencies import get_dependencies
from chalicelib.errors import (
    BridgeError,
    ConfigurationIncomplete,
    InvalidJson,
    MethodNotAllowed,
    UnsupportedMediaType,
)
from chalicelib.logs import logger
from chalicelib.records import Reply

# configure_logs=False: app.log is the Powertools logger's own (same name), so Chalice's messages
# are JSON lines too. debug stays off: it would return tracebacks to callers.
app = Chalice(app_name="fuse-bridge", configure_logs=False)

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


@app.middleware("http")
def bridge_error_shape(event: Any, get_response: Callable[[Any], Response]) -> Response:
    context = getattr(event, "lambda_context", None)
    logger.append_keys(lambda_request_id=getattr(context, "aws_request_id", None))
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


@app.route("/calls", methods=["POST"])
@answers_errors
def queue_call() -> Response:
    request = app.current_request
    deps = get_dependencies()
    secrets = deps.secrets.get()
    require_api_token(request.headers.get("authorization"), secrets.api_tokens)
    return reply_response(
        place_call(
            request.raw_body,
            request.headers.get("idempotency-key"),
            public_base_url(deps.settings.public_base_url),
            secrets,
            deps,
        )
    )

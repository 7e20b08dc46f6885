"""The published contract (chalicelib/openapi.json) against the app: every route is in it and
nothing else is, and schemathesis tries every operation from it through a stand-in for API
Gateway, checking that no input gets a 5xx and every answer's status, content type and body
are the ones the document promises."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import schemathesis
from chalice.local import LambdaContext, RouteMatcher
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from werkzeug.test import Client as WsgiClient

from app import app
from chalicelib.api_document import stored_document
from chalicelib.config.dependencies import Dependencies
from chalicelib.fuse.callback_urls import callback_token, list_token_subject
from local.fuse_sim import FuseSimulator
from tests.helpers import (
    ADMIN_TOKEN,
    API_TOKEN,
    CALLBACK_SECRET,
    CONTACTS,
    FUSE_EXAMPLE,
    PHONE,
    PUBLIC_BASE_URL,
)

STAGE = urlsplit(PUBLIC_BASE_URL).path  # "/api": API Gateway strips it before the function
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES_PER_OPERATION = 40


def app_operations() -> set[tuple[str, str]]:
    return {(path, method.lower()) for path, views in app.routes.items() for method in views}


def test_the_document_names_every_route_and_only_those() -> None:
    documented = {
        (path, method) for path, item in stored_document()["paths"].items() for method in item
    }
    assert app_operations() - documented == set(), "routes the document lacks"
    assert documented - app_operations() == set(), "documented operations with no route"


def test_the_document_is_valid_openapi_3_1() -> None:
    from openapi_spec_validator import validate

    document = stored_document()
    validate(document)
    assert document["openapi"].startswith("3.1.")


def test_it_is_served_without_a_token_on_the_public_base_url(client: Any) -> None:
    response = client.http.get("/openapi.json")
    assert response.status_code == 200
    served = json.loads(response.body)
    assert served["servers"] == [{"url": PUBLIC_BASE_URL}]
    assert {k: v for k, v in served.items() if k != "servers"} == stored_document()


def api_gateway(bridge: Any) -> Callable[..., Iterable[bytes]]:
    """A WSGI app standing in for API Gateway's REST proxy: strips the stage, matches the route,
    builds the proxy event (path parameters decoded, multi-value query, binary types as base64,
    other bodies as text) and gives it to the Chalice app, as Lambda would."""
    matcher = RouteMatcher(list(bridge.routes))

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        raw_path = environ["RAW_URI"].partition("?")[0]  # still percent-encoded, as sent
        query = environ.get("QUERY_STRING", "")
        path = raw_path.removeprefix(STAGE) or "/"
        headers = {
            name[5:].replace("_", "-").lower(): value
            for name, value in environ.items()
            if name.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        try:
            route = matcher.match_route(path)
        except ValueError:
            start_response("403 Forbidden", [("Content-Type", "application/json")])
            return [b'{"message": "Missing Authentication Token"}']
        binary = headers.get("content-type", "").split(";")[0] in bridge.api.binary_types
        multi_query = {unquote(k): v for k, v in parse_qs(query, keep_blank_values=True).items()}
        event = {
            "resource": route.route,
            "path": unquote(path),
            "httpMethod": environ["REQUEST_METHOD"],
            "headers": headers,
            "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": {k: unquote(v) for k, v in route.captured.items()} or None,
            "stageVariables": None,
            "requestContext": {
                "resourcePath": route.route,
                "httpMethod": environ["REQUEST_METHOD"],
                "path": unquote(raw_path),
                "stage": STAGE.strip("/"),
                "domainName": urlsplit(PUBLIC_BASE_URL).netloc,
                "requestId": str(uuid.uuid4()),
                "identity": {"sourceIp": "127.0.0.1"},
            },
            "body": base64.b64encode(body).decode() if binary else body.decode("utf-8", "replace"),
            "isBase64Encoded": binary,
        }
        answer = bridge(event, LambdaContext("api_handler", 512, max_runtime_ms=30_000))
        answer_body = answer.get("body") or ""
        data = (
            base64.b64decode(answer_body)
            if answer.get("isBase64Encoded")
            else answer_body.encode("utf-8")
        )
        answer_headers = [(k, v) for k, v in (answer.get("headers") or {}).items()]
        for name, values in (answer.get("multiValueHeaders") or {}).items():
            answer_headers += [(name, value) for value in values]
        start_response(f"{answer['statusCode']} -", answer_headers)
        return [data]

    return application


# The document as served (the test above checks the two agree). Loaded from the file, not over
# the gateway: schemathesis' lazy fixture loader does not work with pytest 9.
schema = schemathesis.openapi.from_dict(
    {**stored_document(), "servers": [{"url": PUBLIC_BASE_URL}]}
)
schema.config.generation.update(
    modes=["positive", "negative"], max_examples=EXAMPLES_PER_OPERATION, deterministic=True
)
GATEWAY = api_gateway(app)


def token_for(case: Any) -> str:
    return ADMIN_TOKEN if case.method.upper() == "DELETE" else API_TOKEN


@pytest.mark.slow
@schema.parametrize()
@settings(derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_keeps_the_contract(case: Any, deps: Dependencies) -> None:
    """Generated from the document, valid and invalid alike: never a 5xx, and every answer as
    documented. Callers' routes get a valid token, so validation, not auth, meets the body."""
    case.call_and_validate(
        headers={"Authorization": f"Bearer {token_for(case)}"}, checks=CHECKS, app=GATEWAY
    )


def test_every_kind_of_success_answer_is_as_documented(
    deps: Dependencies, fuse: FuseSimulator
) -> None:
    """What generated inputs rarely reach (a placed call read back with its result, a list, a
    cancel, a 504), produced for real and checked against the document's schemas."""
    http = WsgiClient(GATEWAY)
    documented_paths = RouteMatcher(list(stored_document()["paths"]))
    auth = {"Authorization": f"Bearer {API_TOKEN}"}

    def checked(method: str, path: str, status: int, **kwargs: Any) -> Any:
        response = http.open(f"{STAGE}{path}", method=method, **kwargs)
        assert response.status_code == status, response.get_data()
        documented = documented_paths.match_route(path).route
        schema[documented][method].validate_response(response)
        return response.get_json()

    call = checked(
        "POST", "/calls", 202, json={"phone": PHONE, "reference": "lead-7"}, headers=auth
    )
    token = callback_token(call["id"], CALLBACK_SECRET)
    checked("POST", f"/fuse/results/{call['id']}?token={token}", 200, json=FUSE_EXAMPLE)
    assert checked("GET", f"/calls/{call['id']}", 200, headers=auth)["result"]["status"]
    assert checked("GET", "/calls?reference=lead-7&limit=1", 200, headers=auth)["calls"]
    batch = checked("POST", "/calls/bulk", 202, json={"contacts": CONTACTS}, headers=auth)
    list_token = callback_token(list_token_subject(batch["batch_id"]), CALLBACK_SECRET)
    list_url = f"/fuse/results/batch/{batch['batch_id']}?token={list_token}"
    checked("POST", list_url, 200, json={**FUSE_EXAMPLE, "phone_number": "'16175551235'"})
    checked("POST", list_url, 200, json={**FUSE_EXAMPLE, "phone_number": "'16175559999'"})
    checked("GET", f"/batches/{batch['batch_id']}", 200, headers=auth)
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    checked("DELETE", "/campaigns/default/pending", 202, headers=admin)
    fuse.reset("hang")
    unknown = checked("POST", "/calls", 504, json={"phone": PHONE}, headers=auth)
    assert unknown["status"] == "unknown"

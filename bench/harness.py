"""What the benchmarks share: a Lambda-shaped event, and the bridge wired to stubbed AWS.

AWS is answered by botocore's Stubber (no network, no moto cost in the figures), Fuse by the
simulator on 127.0.0.1, so the figures measure the bridge's own code and its HTTP client. The
stubbed clients are made as the bridge makes its own (botocore's session, not boto3), so a cold
start measured here imports what a deployed one imports, no more.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

from botocore.stub import Stubber

from chalicelib.config.dependencies import AWS_CONFIG, Dependencies, aws_session
from chalicelib.config.parameters import ParameterStore
from chalicelib.config.settings import load_settings
from chalicelib.fuse.callback_urls import callback_token
from chalicelib.fuse.client import FuseClient
from chalicelib.results.publisher import ResultPublisher
from chalicelib.store.calls import CallStore
from local.demo import API_TOKEN, HUBSPOT_SAMPLE, demo_parameters, hubspot_headers

PREFIX = "/fuse-bridge/bench"
TABLE = "fuse-bridge-bench-calls"
TOKEN = API_TOKEN
CALL = {"phone": "+16175551234", "reference": "lead-42", "variables": {"name": "Ada"}}
PARAMETERS = demo_parameters()
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def bridge_environment(fuse_url: str) -> dict[str, str]:
    return {
        **FAKE_AWS,
        "BRIDGE_SSM_PREFIX": PREFIX,
        "CALLS_TABLE": TABLE,
        "FUSE_BASE_URL": fuse_url,
        "PUBLIC_BASE_URL": "https://bridge.example.test/api",
        # Paced, as deployed: each call takes its slot of the single-queue budget (one more
        # conditional write). The warm loops send faster than FUSE_QUEUE_RATE's default, so
        # the rate here lets each go alone: these figures are of the single path; burst.py's
        # are of pacing.
        "DISPATCH_QUEUE": "fuse-bridge-bench-dispatch",
        "FUSE_QUEUE_RATE": "1000",
        # Consent as deployed: calling hours (08:00-21:00) checked in the callee's zones, and
        # each call counted against its number; the cap is raised only because the figures
        # send hundreds of calls to a few numbers.
        "MAX_CALLS_PER_NUMBER": "1000",
    }


class LambdaContext:
    function_name = "fuse-bridge-bench"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:fuse-bridge-bench"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def proxy_event(
    resource: str,
    body: dict[str, Any],
    headers: dict[str, str],
    path_parameters: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A POST as API Gateway's proxy integration hands it to Chalice."""
    path = resource.format(**(path_parameters or {}))
    return {
        "resource": resource,
        "path": path,
        "httpMethod": "POST",
        "headers": {"content-type": "application/json", **headers},
        "multiValueHeaders": {},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": "POST",
            "stage": "api",
            "domainName": "bridge.example.test",
            "requestId": str(uuid.uuid4()),
        },
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def api_event(body: dict[str, Any], token: str = TOKEN, path: str = "/calls") -> dict[str, Any]:
    """A caller's POST /calls (or /calls/bulk)."""
    return proxy_event(path, body, {"authorization": f"Bearer {token}"})


def bulk_event(body: dict[str, Any]) -> dict[str, Any]:
    return api_event(body, path="/calls/bulk")


def hook_event(object_id: int, now: float) -> dict[str, Any]:
    """HubSpot's workflow webhook to the demo integration: its shape, its v3 signature."""
    body = {**HUBSPOT_SAMPLE, "objectId": object_id}
    url = "https://bridge.example.test/api/hooks/hubspot-demo"
    signed = hubspot_headers(url, json.dumps(body).encode(), now)
    headers = {name.lower(): value for name, value in signed.items()}
    return proxy_event("/hooks/{integration}", body, headers, {"integration": "hubspot-demo"})


def callback_event(call_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Fuse POSTing a result to the URL the bridge gave it."""
    token = callback_token(call_id, PARAMETERS["callback_secret"])
    return proxy_event(
        "/fuse/results/{target_id}", body, {}, {"target_id": call_id}, {"token": token}
    )


def ssm_pages() -> list[dict[str, Any]]:
    """GetParametersByPath answers, 10 parameters a page as SSM gives them."""
    items = [
        {"Name": f"{PREFIX}/{name}", "Value": value, "Type": "String"}
        for name, value in PARAMETERS.items()
    ]
    pages = [items[i : i + 10] for i in range(0, len(items), 10)]
    answers: list[dict[str, Any]] = [{"Parameters": page} for page in pages]
    for number, answer in enumerate(answers[:-1]):
        answer["NextToken"] = f"page-{number + 1}"
    return answers


def stubbed_dependencies(
    fuse_url: str, calls: int, callbacks: int = 0, hooks: int = 0
) -> tuple[Dependencies, list[Stubber]]:
    """The bridge's collaborators with AWS answered for `calls` POST /calls (four writes each)
    and `hooks` keyless native webhooks (the body's fingerprint, then the call's four writes),
    taking turns, then `callbacks` results (one transaction each)."""
    os.environ.update(FAKE_AWS)
    ssm = aws_session().create_client("ssm", config=AWS_CONFIG)
    dynamodb = aws_session().create_client("dynamodb", config=AWS_CONFIG)
    ssm_stub, dynamodb_stub = Stubber(ssm), Stubber(dynamodb)
    for page in ssm_pages():
        ssm_stub.add_response("get_parameters_by_path", page)
    # A call: its key held, its number checked and counted (one transaction), its budget slot
    # taken, its outcome settled.
    call = ["put_item", "transact_write_items", "update_item", "update_item"]
    hook = ["put_item", *call]  # and first, the keyless body's fingerprint
    # Calls and hooks in turns (a call first), as bench/run.py's warm figure sends them.
    for turn in range(max(calls, hooks)):
        for operation in (call if turn < calls else []) + (hook if turn < hooks else []):
            dynamodb_stub.add_response(operation, {})
    for _ in range(callbacks):
        dynamodb_stub.add_response("transact_write_items", {})
    ssm_stub.activate()
    dynamodb_stub.activate()
    settings = load_settings(bridge_environment(fuse_url))
    deps = Dependencies(
        settings=settings,
        parameters=ParameterStore(
            settings.ssm_prefix, settings.parameters_ttl_seconds, lambda: ssm
        ),
        fuse=FuseClient(settings.fuse_base_url, settings.fuse_timeout_seconds),
        store=CallStore(settings.calls_table, lambda: dynamodb),
        publisher=ResultPublisher(None, lambda: None),
    )
    return deps, [ssm_stub, dynamodb_stub]

"""Least privilege, from the code's side: each function's policy is written from one declared
table (infra/permissions.py), and what each function really calls on AWS, recorded under moto
while it does its work, is in its row. The packaged roles are checked against the same table
in test_infra.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from chalice.local import LambdaContext
from chalice.test import Client

from app import app
from chalicelib.config.dependencies import (
    Dependencies,
    aws_session,
    build_dependencies,
    set_dependencies,
)
from chalicelib.config.settings import load_settings
from chalicelib.fuse.callback_urls import callback_token, list_token_subject
from infra import permissions
from infra.parameters import put_parameters
from local.aws_setup import create_call_requests_queue, create_delivery_queue, create_dispatch_queue
from local.fuse_sim import FuseSimulator
from local.receiver import DemoReceiver
from local.sqs_poller import poll_once
from tests.helpers import (
    ADMIN_TOKEN,
    AUTH,
    CALLBACK_SECRET,
    CONTACTS,
    FUSE_EXAMPLE,
    PHONE,
    PREFIX,
    Aws,
    bridge_environment,
    later,
    list_requests,
)

SECRET = "whsec_" + "cGVybWlzc2lvbnMtdGVzdC1yZWNlaXZlci1zZWNyZXQ="
TRANSACTION_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "ConditionCheck": "ConditionCheckItem",
}


def test_the_policy_files_are_the_ones_the_table_writes() -> None:
    """Edit infra/permissions.py, then run `python -m infra.permissions`; never the files."""
    config = json.loads((permissions.ROOT / ".chalice" / "config.json").read_text())
    for stage in permissions.STAGES:
        functions = config["stages"][stage]["lambda_functions"]
        for function in permissions.FUNCTIONS:
            name = permissions.policy_file(function, stage)
            assert functions[function]["iam_policy_file"] == name
            written = (permissions.ROOT / ".chalice" / name).read_text()
            assert written == permissions.rendered(function, stage), name
    views = {entry.view_name for methods in app.routes.values() for entry in methods.values()}
    assert set(permissions.FUNCTIONS) == set(app.handler_map) - views | {"api_handler"}


def declared(function: str) -> set[str]:
    return set().union(*permissions.FUNCTIONS[function].values())


@pytest.fixture
def calls() -> Iterator[list[str]]:
    """Every AWS action a client made from now on performs, as IAM names it."""
    seen: list[str] = []

    def record(model: Any, params: dict[str, Any], **_: Any) -> None:
        service = model.service_model.endpoint_prefix
        if model.name == "TransactWriteItems":
            for item in params.get("TransactItems", []):
                seen.extend(f"{service}:{TRANSACTION_ACTIONS[kind]}" for kind in item)
        else:
            seen.append(f"{service}:{model.name}")

    session = aws_session()  # where the bridge's clients are made
    session.register("before-call.*.*", record)
    yield seen
    session.unregister("before-call.*.*", record)


@pytest.fixture
def deps(aws: Aws, fuse: FuseSimulator, calls: list[str]) -> Iterator[Dependencies]:
    """Everything on: an event bus, a call-request queue, deliveries to a receiver."""
    receiver = DemoReceiver(SECRET).start()
    put_parameters(
        aws.ssm,
        PREFIX,
        {
            "integrations/default/results_url": receiver.url,
            "integrations/default/results_secret": SECRET,
        },
    )
    boto3.client("events").create_event_bus(Name="fuse-bridge-test-results")
    create_call_requests_queue(boto3.client("sqs"), "fuse-bridge-test-call-requests")
    create_delivery_queue(boto3.client("sqs"), "fuse-bridge-test-deliveries")
    create_dispatch_queue(boto3.client("sqs"), "fuse-bridge-test-dispatch")
    environment = bridge_environment(
        fuse.url,
        RESULTS_EVENT_BUS="fuse-bridge-test-results",
        DELIVERY_QUEUE="fuse-bridge-test-deliveries",
        DISPATCH_QUEUE="fuse-bridge-test-dispatch",
        FUSE_QUEUE_RATE="1000",  # calls go alone, but for the one Fuse refuses below
        DELIVERY_PRIVATE_ADDRESSES="true",  # the receiver is on 127.0.0.1
    )
    dependencies = build_dependencies(load_settings(environment))
    set_dependencies(dependencies)
    calls.clear()  # what the set-up itself did is no function's
    yield dependencies
    set_dependencies(None)
    receiver.stop()


def sqs_record(message_id: str, body: Any) -> dict[str, Any]:
    return {
        "messageId": message_id,
        "receiptHandle": "r",
        "body": json.dumps(body),
        "attributes": {"ApproximateReceiveCount": "1"},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:fuse-bridge-test-call-requests",
    }


def test_each_function_calls_only_what_its_policy_grants(
    client: Client, deps: Dependencies, fuse: FuseSimulator, calls: list[str]
) -> None:
    observed: dict[str, set[str]] = {}

    def as_function(name: str) -> None:
        observed[name] = observed.get(name, set()) | set(calls)
        calls.clear()

    # The API: calls, a replay, a list, callbacks, reads, a keyless webhook, a cancel, a redrive.
    first = json.loads(
        client.http.post(
            "/calls",
            headers={**AUTH, "Idempotency-Key": "p-1"},
            body=json.dumps({"phone": PHONE, "reference": "perm"}),
        ).body
    )
    client.http.post(
        "/calls",
        headers={**AUTH, "Idempotency-Key": "p-1"},
        body=json.dumps({"phone": PHONE, "reference": "perm"}),
    )
    token = callback_token(first["id"], CALLBACK_SECRET)
    client.http.post(
        f"/fuse/results/{first['id']}?token={token}",
        headers={"Content-Type": "application/json"},
        body=json.dumps(FUSE_EXAMPLE),
    )
    listed = json.loads(
        client.http.post("/calls/bulk", headers=AUTH, body=json.dumps({"contacts": CONTACTS})).body
    )
    client.http.get(f"/batches/{listed['batch_id']}", headers=AUTH)
    list_token = callback_token(list_token_subject(listed["batch_id"]), CALLBACK_SECRET)
    client.http.post(  # digits read two ways (+1 354..., +354...): which contact of the list
        f"/fuse/results/batch/{listed['batch_id']}?token={list_token}",
        headers={"Content-Type": "application/json"},
        body=json.dumps({**FUSE_EXAMPLE, "phone_number": "'3546111234'"}),
    )
    client.http.get(f"/calls/{first['id']}", headers=AUTH)
    client.http.get("/calls?reference=perm", headers=AUTH)
    client.http.post("/hooks/default", headers=AUTH, body=json.dumps({"phone": PHONE}))
    fuse.mode = "error500"
    client.http.post("/calls", headers=AUTH, body=json.dumps({"phone": PHONE}))  # it waits
    fuse.mode = "normal"
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    client.http.delete("/campaigns/default/pending", headers=admin)
    client.http.post("/integrations/default/deliveries/redrive", headers=admin)
    as_function("api_handler")

    # The queue consumer and the EventBridge handler: a good request and a refused one.
    context = LambdaContext("f", 512, max_runtime_ms=30_000)
    app.handler_map["call_requests"](
        {"Records": [sqs_record("m-1", {"phone": PHONE}), sqs_record("m-2", {"phone": "1"})]},
        context,
    )
    as_function("call_requests")
    event = client.events.generate_cw_event(
        source="crm", detail_type="Fuse Call Requested", detail={"phone": PHONE}, resources=[]
    )
    client.lambda_.invoke("call_requested", event)
    as_function("call_requested")

    # The dispatcher, once Fuse's breaker has closed again: the waiting call in a bulk.
    later(deps, deps.settings.breaker_open_seconds + 1)
    sqs = boto3.client("sqs")
    waiting = sqs.get_queue_url(QueueName="fuse-bridge-test-dispatch")["QueueUrl"]
    waiting_arn = sqs.get_queue_attributes(QueueUrl=waiting, AttributeNames=["QueueArn"])
    dispatcher = app.handler_map["dispatch_calls"]
    poll_once(sqs, waiting, waiting_arn["Attributes"]["QueueArn"], dispatcher, "us-east-1")
    as_function("dispatch_calls")
    assert [r for r in list_requests(fuse) if "/results/bulk/" in r.form["result_url"]]

    # The reconciler, once a call's result is overdue; and the deliveries queued so far.
    later(deps, 7 * 86400)
    client.lambda_.invoke(
        "reconcile_calls",
        client.events.generate_cw_event(
            source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
        ),
    )
    as_function("reconcile_calls")
    url = sqs.get_queue_url(QueueName="fuse-bridge-test-deliveries")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    handler = app.handler_map["deliver_results"]
    # The test's own SQS client plays Lambda's poller: made by boto3, not the bridge's session,
    # its receive and delete are not recorded; only the handler's calls are.
    poll_once(sqs, url, arn["Attributes"]["QueueArn"], handler, "us-east-1")
    as_function("deliver_results")

    for function, actions in observed.items():
        assert actions, function  # each did call AWS: the recording works
        assert actions <= declared(function), f"{function}: {actions - declared(function)}"
    assert set(observed) == set(permissions.FUNCTIONS)
    assert {"dynamodb:BatchWriteItem", "events:PutEvents"} <= observed["api_handler"]
    assert "dynamodb:BatchGetItem" in observed["api_handler"]
    assert "sqs:SendMessage" in observed["reconcile_calls"] | observed["api_handler"]
    assert "dynamodb:UpdateItem" in observed["deliver_results"]

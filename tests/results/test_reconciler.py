"""No result lost: the scheduled reconciler polls Fuse for lost callbacks; events reach the CRM."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest
from chalice.test import Client

from chalicelib.config.dependencies import Dependencies
from chalicelib.fuse.client import StatusRead
from chalicelib.results.publisher import ResultPublisher
from chalicelib.results.reconciler import reconcile
from local.fuse_sim import FuseSimulator
from tests.helpers import (
    FUSE_EXAMPLE,
    TABLE,
    Aws,
    later,
    post_callback,
    queue,
    read_call,
    run_reconciler,
)

HOUR = 3600


def test_a_lost_callback_is_settled_by_polling_fuse(
    client: Client, deps: Dependencies, fuse: FuseSimulator
) -> None:
    fuse.callback_delay, fuse.lose_callbacks, fuse.outcome = 0, True, "failed"
    call_id = queue(client)
    assert run_reconciler(client)["due"] == 0  # not before its window has passed
    later(deps, 2 * HOUR)
    report = run_reconciler(client)
    assert report["settled"] == 1
    call = read_call(client, call_id)
    assert call["status"] == "failed"
    assert call["result"]["source"] == "poll"
    assert call["result"]["attempts"] == 1
    assert run_reconciler(client)["due"] == 0  # settled calls leave the index


def test_a_call_still_in_progress_is_left_alone_and_asked_again_later(
    client: Client, deps: Dependencies, fuse: FuseSimulator
) -> None:
    fuse.callback_delay = 10 * HOUR  # Fuse will still say "queued"
    call_id = queue(client)
    later(deps, 2 * HOUR)
    assert run_reconciler(client)["in_progress"] == 1
    assert read_call(client, call_id)["status"] == "queued"
    assert run_reconciler(client)["due"] == 0  # not again in the same quarter of an hour
    later(deps, 2 * HOUR + 901)
    assert run_reconciler(client)["in_progress"] == 1


def test_the_window_is_end_at_when_given(
    client: Client, deps: Dependencies, fuse: FuseSimulator
) -> None:
    fuse.callback_delay, fuse.lose_callbacks = 0, True
    base = int(time.time())
    deps.clock = lambda: base
    queue(client, end_at=base + 600)
    deps.clock = lambda: base + 600 + 299
    assert run_reconciler(client)["due"] == 0
    deps.clock = lambda: base + 600 + 300
    assert run_reconciler(client)["settled"] == 1


def test_a_callback_before_the_poll_means_nothing_to_poll(
    client: Client, deps: Dependencies, fuse: FuseSimulator
) -> None:
    call_id = queue(client)
    post_callback(client, call_id, FUSE_EXAMPLE)
    later(deps, 2 * HOUR)
    assert run_reconciler(client)["due"] == 0
    assert [r.path for r in fuse.received if "/outbound/" in r.path] == []


def test_a_run_is_bounded(client: Client, deps: Dependencies, fuse: FuseSimulator) -> None:
    fuse.callback_delay, fuse.lose_callbacks = 0, True
    for _ in range(3):
        queue(client)
    later(deps, 2 * HOUR)
    deps.settings = type(deps.settings)(**{**vars(deps.settings), "reconcile_per_run": 2})
    assert run_reconciler(client)["settled"] == 2
    assert run_reconciler(client)["settled"] == 1


def test_a_run_stops_when_time_runs_short(
    client: Client, deps: Dependencies, fuse: FuseSimulator
) -> None:
    fuse.callback_delay, fuse.lose_callbacks = 0, True
    queue(client)
    later(deps, 2 * HOUR)
    report = reconcile(deps, deps.parameters.get(), time_left=lambda: 1.5)
    assert report.stopped_early == "time"
    assert report.settled == 0


def test_fuse_down_stops_the_run_without_losing_anything(
    client: Client, deps: Dependencies, fuse: FuseSimulator
) -> None:
    fuse.callback_delay, fuse.lose_callbacks = 0, True
    call_id = queue(client)
    later(deps, 2 * HOUR)
    fuse.mode = "error500"
    report = run_reconciler(client)
    assert report["stopped_early"] == "fuse_unavailable"
    assert report["settled"] == 0
    assert read_call(client, call_id)["status"] == "queued"
    fuse.mode = "normal"
    assert run_reconciler(client)["settled"] == 1  # the next run picks it up
    assert read_call(client, call_id)["status"] == "completed"


def test_an_unreadable_answer_is_kept_and_no_call_blocks_the_others(
    client: Client, aws: Aws, deps: Dependencies, fuse: FuseSimulator
) -> None:
    """One unreadable status answer (or a bug on one call) used to fail every run on the same
    oldest call, so no other call was ever polled."""
    fuse.callback_delay, fuse.lose_callbacks = 0, True
    unreadable, buggy, healthy = (queue(client) for _ in range(3))
    fuse_ids = {read_call(client, c)["fuse_call_id"]: c for c in (unreadable, buggy, healthy)}
    call_status = deps.fuse.call_status

    def answer(credentials: Any, fuse_call_id: str) -> StatusRead:
        if fuse_ids[fuse_call_id] == unreadable:
            return StatusRead(b'{"call_details": {"status": "\\ud800"', "application/json")
        if fuse_ids[fuse_call_id] == buggy:
            raise RuntimeError("a bug")
        return call_status(credentials, fuse_call_id)

    deps.fuse.call_status = answer  # type: ignore[method-assign]
    later(deps, 2 * HOUR)
    report = run_reconciler(client)
    assert (report["unreadable"], report["failed"], report["settled"]) == (1, 1, 1)
    assert read_call(client, healthy)["status"] == "completed"
    [kept] = aws.dynamodb.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :result)",
        ExpressionAttributeValues={":pk": {"S": unreadable}, ":result": {"S": "result#"}},
    )["Items"]
    assert kept["source"]["S"] == "poll"
    assert "JSON" in kept["parse_error"]["S"]
    assert run_reconciler(client)["due"] == 0  # both asked again later, not in a tight loop


@pytest.fixture
def results_queue(aws: Aws, deps: Dependencies) -> str:
    """An EventBridge bus whose rule sends `Fuse Call Result` events to an SQS queue."""
    events, sqs = boto3.client("events"), boto3.client("sqs")
    events.create_event_bus(Name="fuse-results")
    queue_url = sqs.create_queue(QueueName="crm-results")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    events.put_rule(
        Name="to-crm",
        EventBusName="fuse-results",
        EventPattern=json.dumps({"source": ["fuse-bridge"], "detail-type": ["Fuse Call Result"]}),
    )
    events.put_targets(
        Rule="to-crm", EventBusName="fuse-results", Targets=[{"Id": "crm", "Arn": queue_arn}]
    )
    deps.publisher = ResultPublisher("fuse-results", lambda: events)
    return queue_url


def received_events(queue_url: str) -> list[dict[str, Any]]:
    messages = boto3.client("sqs").receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
    )
    return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


def test_each_new_outcome_is_an_event_on_the_bus(client: Client, results_queue: str) -> None:
    call_id = queue(client)
    post_callback(client, call_id, FUSE_EXAMPLE)
    post_callback(client, call_id, FUSE_EXAMPLE)  # a duplicate is not a new outcome
    [event] = received_events(results_queue)
    assert event["detail-type"] == "Fuse Call Result"
    assert event["source"] == "fuse-bridge"
    detail = event["detail"]
    assert detail["id"] == call_id
    assert detail["reference"] == "lead-9"
    assert detail["status"] == "completed"
    assert detail["result"]["duration"] == 24
    assert "phone_number" not in json.dumps(detail)  # the event carries no phone number


def test_a_failed_publish_keeps_the_result_and_the_reconciler_sends_it(
    client: Client, deps: Dependencies, results_queue: str
) -> None:
    working = deps.publisher
    deps.publisher = ResultPublisher("no-such-bus", working._client)
    call_id = queue(client)
    assert post_callback(client, call_id, FUSE_EXAMPLE).status_code == 200
    assert read_call(client, call_id)["status"] == "completed"  # stored all the same
    assert received_events(results_queue) == []
    deps.publisher = working
    assert run_reconciler(client)["published"] == 1
    [event] = received_events(results_queue)
    assert event["detail"]["id"] == call_id
    assert run_reconciler(client)["due"] == 0


def test_a_polled_outcome_is_an_event_too(
    client: Client, deps: Dependencies, fuse: FuseSimulator, results_queue: str
) -> None:
    fuse.callback_delay, fuse.lose_callbacks = 0, True
    call_id = queue(client)
    later(deps, 2 * HOUR)
    assert run_reconciler(client)["published"] == 1
    [event] = received_events(results_queue)
    assert event["detail"]["id"] == call_id
    assert event["detail"]["result"]["source"] == "poll"


def test_the_callback_route_does_one_dynamodb_write(client: Client, deps: Dependencies) -> None:
    call_id = queue(client)
    operations: list[str] = []
    deps.store.client.meta.events.register(
        "before-call.dynamodb.*", lambda model, **_: operations.append(model.name)
    )
    assert post_callback(client, call_id, FUSE_EXAMPLE).status_code == 200
    assert operations == ["TransactWriteItems"]

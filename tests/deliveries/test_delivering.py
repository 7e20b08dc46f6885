"""Results delivered back to each integration: signed (checked by the Standard Webhooks
reference library), retried until they land, failed at once when refused, never twice for one
outcome, visible on the call, and re-driven by an admin."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import boto3
import pytest
from chalice.local import LambdaContext
from chalice.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook

from app import app
from chalicelib.config.dependencies import Dependencies, build_dependencies, set_dependencies
from chalicelib.config.settings import load_settings
from chalicelib.deliveries.attempts import least_retry_span, retry_delay
from chalicelib.deliveries.messages import webhook_id
from chalicelib.deliveries.queueing import QUEUE_GRACE_SECONDS
from chalicelib.errors import StoreUnavailable
from chalicelib.queues import NotQueued
from chalicelib.timestamps import iso
from infra.parameters import put_parameters
from local.aws_setup import create_delivery_queue
from local.fuse_sim import FuseSimulator
from local.receiver import DemoReceiver
from local.sqs_poller import poll_once
from tests.helpers import (
    ADMIN_TOKEN,
    FUSE_EXAMPLE,
    PHONE,
    PREFIX,
    TABLE,
    Aws,
    bridge_environment,
    broken_client,
    error_of,
    later,
    post_call,
    post_callback,
    run_batch,
    run_reconciler,
)

SECRET = "whsec_" + "cmVzdWx0cy1yZWNlaXZlci1zZWNyZXQtZm9yLXRlc3Rz"
TOKEN = "crm-r-token"
QUEUE = "fuse-bridge-test-deliveries"


@pytest.fixture
def receiver() -> Iterator[DemoReceiver]:
    with DemoReceiver(SECRET) as server:
        yield server


@pytest.fixture
def deps(aws: Aws, fuse: FuseSimulator, receiver: DemoReceiver) -> Iterator[Dependencies]:
    """The bridge with a delivery queue (moto), and the integration crm-r delivering to the
    receiver; a 1 s backoff base and a 0.5 s deadline so retries and hangs fit in a test."""
    put_parameters(
        aws.ssm,
        PREFIX,
        {
            "integrations/crm-r/token": TOKEN,
            "integrations/crm-r/results_url": receiver.url,
            "integrations/crm-r/results_secret": SECRET,
        },
    )
    create_delivery_queue(boto3.client("sqs"), QUEUE, max_attempts=3)
    environment = bridge_environment(
        fuse.url,
        DELIVERY_QUEUE=QUEUE,
        DELIVERY_PRIVATE_ADDRESSES="true",  # the receiver is on 127.0.0.1
        DELIVERY_RETRY_BASE_SECONDS="1",
        DELIVERY_TIMEOUT_SECONDS="0.5",
        DELIVERY_MAX_ATTEMPTS="3",
    )
    dependencies = build_dependencies(load_settings(environment))
    set_dependencies(dependencies)
    yield dependencies
    set_dependencies(None)


def run_deliveries(wait: float = 0) -> int:
    """One receive from the delivery queue through the deployed handler, as Lambda's event
    source would (messages to retry stay, the rest are deleted); after `wait` seconds."""
    time.sleep(wait)
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    handler = app.handler_map["deliver_results"]
    return poll_once(sqs, url, arn["Attributes"]["QueueArn"], handler, "us-east-1")


def deliver_until(receiver: DemoReceiver, count: int, within: float = 8) -> None:
    """Runs the delivery function as its messages come back, until the receiver has had
    `count` requests (bounded: a retry's backoff here is about 1 s, doubling)."""
    deadline = time.monotonic() + within
    while len(receiver.received) < count:
        assert time.monotonic() < deadline, f"{len(receiver.received)} of {count} deliveries"
        run_deliveries()


def waiting() -> tuple[int, int]:
    """Messages on the delivery queue: (visible now, out of sight)."""
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return int(counts[names[0]]), int(counts[names[1]])


def queued_and_completed(client: Client) -> str:
    call_id = json.loads(post_call(client, {"phone": PHONE, "reference": "r-1"}, token=TOKEN).body)[
        "id"
    ]
    assert post_callback(client, call_id, FUSE_EXAMPLE).status_code == 200
    return call_id


def delivery_of(client: Client, call_id: str) -> dict[str, Any]:
    """The call's `delivery`, the same whether read alone or in a listing by reference."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    alone = json.loads(client.http.get(f"/calls/{call_id}", headers=auth).body)["delivery"]
    listed = json.loads(client.http.get("/calls?reference=r-1", headers=auth).body)["calls"]
    assert [c["delivery"] for c in listed if c["id"] == call_id] == [alone]
    return alone


def test_a_result_is_delivered_signed_without_the_phone(
    client: Client, receiver: DemoReceiver
) -> None:
    call_id = queued_and_completed(client)
    assert delivery_of(client, call_id)["status"] == "pending"  # queued, not yet sent
    assert run_deliveries() == 1
    [got] = receiver.received
    assert got.verified  # by the specification's reference library
    Webhook(SECRET).verify(got.body, got.headers)  # and again, raising if not
    assert got.json["type"] == "call.result"
    assert got.json["data"]["id"] == call_id
    assert got.json["data"]["status"] == "completed"
    assert PHONE[2:] not in got.body.decode()  # no phone unless results_include_phone
    view = delivery_of(client, call_id)
    assert (view["status"], view["attempts"], view["last_error"]) == ("delivered", 1, None)
    assert "webhook_id" not in view


@pytest.mark.slow
def test_a_failing_receiver_is_retried_with_the_same_webhook_id(
    client: Client, receiver: DemoReceiver
) -> None:
    receiver.script((500, 0))
    call_id = queued_and_completed(client)
    run_deliveries()
    assert delivery_of(client, call_id)["status"] == "pending"
    assert delivery_of(client, call_id)["last_error"] == "the receiver answered 500"
    assert waiting() == (0, 1)  # out of sight until its backoff has passed
    deliver_until(receiver, 2)  # about 1 s (jittered): it comes back, and lands
    first, second = receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert (first.answered, second.answered) == (500, 200)
    assert delivery_of(client, call_id)["status"] == "delivered"


def test_a_refusal_fails_at_once_and_an_admin_redrives_it(
    client: Client, receiver: DemoReceiver
) -> None:
    receiver.script((410, 0))
    call_id = queued_and_completed(client)
    run_deliveries()
    assert delivery_of(client, call_id)["status"] == "failed"
    assert waiting() == (0, 0)  # not retried: deleted
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    refused = client.http.post(
        "/integrations/crm-r/deliveries/redrive", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert (refused.status_code, error_of(refused)["code"]) == (403, "forbidden")
    redriven = client.http.post("/integrations/crm-r/deliveries/redrive", headers=admin)
    assert json.loads(redriven.body) == {"integration": "crm-r", "requeued": 1}
    run_deliveries()
    assert [r.answered for r in receiver.received] == [410, 200]
    assert delivery_of(client, call_id)["status"] == "delivered"
    again = client.http.post("/integrations/crm-r/deliveries/redrive", headers=admin)
    assert json.loads(again.body)["requeued"] == 0


def test_a_hanging_receiver_is_cut_at_the_deadline(client: Client, receiver: DemoReceiver) -> None:
    receiver.script((200, 3))
    call_id = queued_and_completed(client)
    started = time.monotonic()
    run_deliveries()
    assert time.monotonic() - started < 2.5
    view = delivery_of(client, call_id)
    assert (view["status"], view["last_error"]) == ("pending", "no answer within 0.5 s")


def test_duplicate_callbacks_give_one_delivery(client: Client, receiver: DemoReceiver) -> None:
    call_id = queued_and_completed(client)
    assert json.loads(post_callback(client, call_id, FUSE_EXAMPLE).body)["status"] == "duplicate"
    run_deliveries()
    assert run_deliveries() == 0
    assert len(receiver.received) == 1


@pytest.mark.slow
def test_after_the_last_attempt_the_message_goes_to_the_dead_letter_queue(
    client: Client, receiver: DemoReceiver
) -> None:
    receiver.script((503, 0), (503, 0), (503, 0))
    call_id = queued_and_completed(client)
    deliver_until(receiver, 3)  # attempt 3 of 3: failed, and returned to go to the DLQ
    assert delivery_of(client, call_id)["status"] == "failed"
    sqs = boto3.client("sqs")
    run_deliveries()  # the next receive moves it (moto applies the redrive policy)
    dead = sqs.get_queue_url(QueueName=f"{QUEUE}-dlq")["QueueUrl"]
    attributes = sqs.get_queue_attributes(
        QueueUrl=dead, AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "1"


def test_the_retry_schedule_spans_more_than_a_day() -> None:
    """The deployed defaults: a 30 s base, doubling to an hour, 37 attempts, jitter included."""
    settings = load_settings(bridge_environment("http://127.0.0.1:1"))
    assert settings.delivery_retry_base_seconds == 30
    assert least_retry_span(30, settings.delivery_max_attempts) > 24 * 3600
    assert least_retry_span(30, settings.delivery_max_attempts - 1) < 24 * 3600  # no more
    assert 24 <= retry_delay(1, 30) <= 36
    assert retry_delay(20, 30) <= 3600 * 1.2
    assert retry_delay(1, 30, retry_after=600) == 600  # a receiver's Retry-After is honoured


def test_a_rejected_queue_message_is_delivered_as_call_rejected(
    aws: Aws, deps: Dependencies, receiver: DemoReceiver
) -> None:
    put_parameters(
        aws.ssm,
        PREFIX,
        {
            "integrations/default/results_url": receiver.url,
            "integrations/default/results_secret": SECRET,
        },
    )
    handler = app.handler_map["call_requests"]
    event = {
        "Records": [
            {
                "messageId": "m-rejected",
                "receiptHandle": "r",
                "body": json.dumps({"phone": "12"}),
                "attributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
            }
        ]
    }
    assert handler(event, LambdaContext("call_requests", 512, 30_000)) == {"batchItemFailures": []}
    run_deliveries()
    [got] = receiver.received
    assert got.json["type"] == "call.rejected"
    assert got.json["data"]["error"]["code"] == "validation_failed"


def test_a_redrive_the_queue_refuses_is_503_and_keeps_the_rest_failed(
    client: Client, deps: Dependencies, receiver: DemoReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver.script((410, 0))
    call_id = queued_and_completed(client)
    run_deliveries()
    assert delivery_of(client, call_id)["status"] == "failed"
    monkeypatch.setattr(deps.deliveries, "_client", lambda: broken_client("sqs"))
    monkeypatch.setattr(type(deps.deliveries), "url", "http://127.0.0.1:1/queue")
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    refused = client.http.post("/integrations/crm-r/deliveries/redrive", headers=admin)
    assert (refused.status_code, error_of(refused)["code"]) == (503, "deliveries_unavailable")
    failed = deps.store.deliveries.failed("crm-r", int(time.time()))
    assert [c for c, _ in failed] == [call_id]  # still there to redrive


# --- issue 19: each outcome its own delivery ------------------------------------------------
OUTCOMES = ("completed", "failed", "busy", "no_answer", "canceled")


def outcome_of(client: Client, call_id: str, status: str, **extra: Any) -> None:
    result = {**FUSE_EXAMPLE, "status": status, "end_timestamp": str(time.time_ns()), **extra}
    assert post_callback(client, call_id, result).status_code == 200


def new_call(client: Client) -> str:
    body = {"phone": PHONE, "reference": "r-1"}
    return json.loads(post_call(client, body, token=TOKEN).body)["id"]


@settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(order=st.permutations(OUTCOMES).map(lambda p: p[:3]))
def test_each_outcome_is_delivered_with_its_own_body_in_any_order(
    client: Client, deps: Dependencies, receiver: DemoReceiver, order: tuple[str, ...]
) -> None:
    """Several outcomes of one call (Fuse may report more than one, in any order): each goes
    out once, under its own webhook-id, with its own status and its own timestamp, not the
    newest one's under every id."""
    receiver.received.clear()
    call_id = new_call(client)
    moments = []
    for status in order:
        later(deps, len(moments) * 60)  # a minute apart, so each has its own moment
        moments.append(int(deps.clock()))
        outcome_of(client, call_id, status)
    deliver_until(receiver, len(order))
    assert run_deliveries() == 0  # and nothing more
    got = {r.headers["webhook-id"]: r.json for r in receiver.received}
    assert len(got) == len(order)
    for status, moment in zip(order, moments, strict=True):
        [body] = [b for b in got.values() if b["data"]["status"] == status]
        assert body["data"]["result"]["status"] == status
        assert body["timestamp"] == iso(moment)
    deps.clock = time.time


def test_a_retry_carries_the_body_it_first_had(client: Client, receiver: DemoReceiver) -> None:
    """An outcome whose first attempt failed is retried with its own body even after a newer
    outcome of the call has been stored."""
    receiver.script((500, 0))
    call_id = new_call(client)
    outcome_of(client, call_id, "failed")
    run_deliveries()  # failed's first attempt: 500
    outcome_of(client, call_id, "completed")
    deliver_until(receiver, 3)
    by_id: dict[str, list[bytes]] = {}
    for got in receiver.received:
        by_id.setdefault(got.headers["webhook-id"], []).append(got.body)
    failed_id = next(i for i in by_id if i.endswith("_failed"))
    first, retry = by_id[failed_id]
    assert first == retry
    assert json.loads(retry)["data"]["status"] == "failed"


def test_an_outcome_sqs_did_not_take_is_queued_again_whatever_its_kind(
    aws: Aws,
    client: Client,
    deps: Dependencies,
    receiver: DemoReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A call.rejected and a second outcome whose queueing failed: the reconciler hands each
    to the queue again once its grace has passed, and each is delivered once."""
    put_parameters(
        aws.ssm,
        PREFIX,
        {
            "integrations/default/results_url": receiver.url,
            "integrations/default/results_secret": SECRET,
        },
    )
    call_id = new_call(client)
    outcome_of(client, call_id, "failed")
    run_deliveries()
    assert len(receiver.received) == 1

    def refused(message: Any) -> None:
        raise NotQueued

    monkeypatch.setattr(deps.deliveries, "send", refused)
    outcome_of(client, call_id, "completed")
    assert run_batch(client, [("m-refused", {"phone": "12"})]) == []  # stored rejected
    monkeypatch.undo()
    assert run_deliveries() == 0  # nothing reached the queue
    assert run_reconciler(client)["requeued"] == 0  # not before their grace
    later(deps, QUEUE_GRACE_SECONDS + 1)
    assert run_reconciler(client)["requeued"] == 2
    deliver_until(receiver, 3)
    kinds = sorted((r.json["type"], r.json["data"]["status"]) for r in receiver.received)
    assert kinds == [
        ("call.rejected", "rejected"),
        ("call.result", "completed"),
        ("call.result", "failed"),
    ]
    assert run_reconciler(client)["requeued"] == 0  # attempted: out of the index


def test_a_redrive_sends_exactly_the_failed_outcomes_once(
    client: Client, deps: Dependencies, receiver: DemoReceiver
) -> None:
    """The first outcome refused, a later one delivered: a redrive sends the refused one, and
    only it, once (it used to re-post the delivered one, which was then skipped as a copy, so
    the refused outcome never went out)."""
    receiver.script((410, 0), (200, 0))
    call_id = new_call(client)
    outcome_of(client, call_id, "failed")
    run_deliveries()
    outcome_of(client, call_id, "completed")
    run_deliveries()
    assert [(r.answered, r.json["data"]["status"]) for r in receiver.received] == [
        (410, "failed"),
        (200, "completed"),
    ]
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    redriven = client.http.post("/integrations/crm-r/deliveries/redrive", headers=admin)
    assert json.loads(redriven.body)["requeued"] == 1
    deliver_until(receiver, 3)
    assert receiver.received[2].json["data"]["status"] == "failed"
    assert receiver.received[2].body == receiver.received[0].body  # its own body, again
    again = client.http.post("/integrations/crm-r/deliveries/redrive", headers=admin)
    assert json.loads(again.body)["requeued"] == 0
    assert run_deliveries() == 0
    assert len(receiver.received) == 3


def test_a_failure_delivered_by_a_later_copy_is_not_redriven(
    client: Client, deps: Dependencies, receiver: DemoReceiver
) -> None:
    receiver.script((410, 0))
    call_id = new_call(client)
    outcome_of(client, call_id, "completed")
    run_deliveries()  # refused: failed, marked for a redrive
    [(_, webhook)] = deps.store.deliveries.failed("crm-r", int(time.time()))
    failed = deps.store.deliveries.get(call_id, webhook)
    assert failed is not None
    assert failed.state == "failed"
    deps.deliveries.send({"call_id": call_id, "webhook_id": webhook})  # SQS: at least once
    run_deliveries()  # the copy lands
    assert deps.store.deliveries.failed("crm-r", int(time.time())) == []  # mark cleared
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    redriven = client.http.post("/integrations/crm-r/deliveries/redrive", headers=admin)
    assert json.loads(redriven.body)["requeued"] == 0
    assert [r.answered for r in receiver.received] == [410, 200]


def test_failed_marks_leave_with_their_call(
    aws: Aws, client: Client, deps: Dependencies, receiver: DemoReceiver
) -> None:
    receiver.script((410, 0))
    call_id = new_call(client)
    outcome_of(client, call_id, "completed")
    run_deliveries()
    record = deps.store.get(call_id)
    assert record is not None
    marks = aws.dynamodb.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "failed-deliveries#crm-r"}},
    )["Items"]
    assert [int(m["expires_at"]["N"]) for m in marks] == [record.expires_at]
    after = record.expires_at + 1
    assert deps.store.deliveries.failed("crm-r", after) == []  # TTL deletes late: not read


def test_fuses_rejection_is_a_result_and_the_bridges_own_is_a_rejection(
    aws: Aws, client: Client, deps: Dependencies, receiver: DemoReceiver
) -> None:
    """Both have the status word `rejected`; only the record tells them apart: Fuse's keeps
    its attempts and events and is delivered as call.result, the bridge's carries its error."""
    call_id = new_call(client)
    outcome_of(client, call_id, "rejected")
    run_deliveries()
    [fuse_rejected] = receiver.received
    assert fuse_rejected.json["type"] == "call.result"
    assert fuse_rejected.json["data"]["result"]["attempts"] == 1
    assert fuse_rejected.json["data"]["result"]["events"]
    assert "error" not in fuse_rejected.json["data"]
    auth = {"Authorization": f"Bearer {TOKEN}"}
    shown = json.loads(client.http.get(f"/calls/{call_id}", headers=auth).body)
    assert shown["status"] == "rejected"
    assert "error" not in shown
    assert shown["result"]["attempts"] == 1


PHONE_DIGITS = st.from_regex(r"\+?1?617555[0-9]{4}", fullmatch=True)
FIELD_NAMES = st.sampled_from(["callee", "to", "ani", "caller", "number", "dest", "cli"])


@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(extra=st.dictionaries(FIELD_NAMES, PHONE_DIGITS, min_size=1, max_size=3))
def test_no_phone_in_any_field_of_fuses_result_leaves_the_bridge(
    client: Client, receiver: DemoReceiver, extra: dict[str, str]
) -> None:
    """A delivery carries an allowlist of a result's fields: a phone Fuse puts under any other
    name (top level or in call_details) is not sent."""
    receiver.received.clear()
    call_id = new_call(client)
    result = {**FUSE_EXAMPLE, **extra, "call_details": {"status": "completed", **extra}}
    assert post_callback(client, call_id, result).status_code == 200
    run_deliveries()
    [got] = receiver.received
    sent = got.body.decode()
    for value in (*extra.values(), PHONE, FUSE_EXAMPLE["phone_number"].strip("'")):
        assert value.lstrip("+") not in sent
    assert got.json["data"]["result"]["status"] == "completed"


def test_an_outcome_whose_delivery_cannot_be_kept_is_announced_again(
    client: Client, deps: Dependencies, receiver: DemoReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DynamoDB fails between storing the outcome and keeping its delivery: Fuse is still told
    the result was stored (a retry of it would be a duplicate, announcing nothing), and the
    reconciler keeps and queues the delivery."""
    call_id = new_call(client)
    real_add = deps.store.deliveries.add

    def store_down(*args: Any, **kwargs: Any) -> bool:
        raise StoreUnavailable("the bridge cannot reach its call store; retry later")

    monkeypatch.setattr(deps.store.deliveries, "add", store_down)
    stored = post_callback(client, call_id, FUSE_EXAMPLE)
    assert (stored.status_code, json.loads(stored.body)["status"]) == (200, "stored")
    monkeypatch.setattr(deps.store.deliveries, "add", real_add)
    assert run_deliveries() == 0  # nothing was queued
    run_reconciler(client)
    deliver_until(receiver, 1)
    [got] = receiver.received
    assert (got.json["type"], got.json["data"]["id"]) == ("call.result", call_id)
    run_reconciler(client)  # announced once: nothing more
    assert run_deliveries() == 0


def test_a_key_reused_after_retention_delivers_its_new_outcome(
    client: Client, deps: Dependencies, receiver: DemoReceiver
) -> None:
    """The earlier life's delivery (same call id, same status) must not make the new life's
    look "kept already", nor its mark for a redrive send the new one."""
    body = {"phone": PHONE, "reference": "r-1"}
    receiver.script((410, 0))
    first = json.loads(post_call(client, body, key="yearly", token=TOKEN).body)["id"]
    outcome_of(client, first, "completed")
    run_deliveries()  # refused: failed, marked for a redrive
    later(deps, deps.settings.retention_days * 86400 + 60)
    again = json.loads(
        post_call(client, {**body, "reference": "r-2"}, key="yearly", token=TOKEN).body
    )
    assert again["id"] == first  # the same derived id, a new life
    deps.clock = time.time  # the receiver checks each signature's time against its own clock
    outcome_of(client, first, "completed")
    deliver_until(receiver, 2)
    assert [r.answered for r in receiver.received] == [410, 200]
    assert deps.store.deliveries.failed("crm-r", int(deps.clock())) == []  # its mark went too


def test_a_delivery_whose_integration_stopped_delivering_fails_once_not_forever(
    aws: Aws, client: Client, deps: Dependencies, receiver: DemoReceiver
) -> None:
    call_id = queued_and_completed(client)
    aws.ssm.delete_parameter(Name=f"{PREFIX}/integrations/crm-r/results_url")
    deps.parameters._fetched_at = -3600.0  # the cache's time is up: it reads SSM again
    assert deps.parameters.get().integrations["crm-r"].delivery_target is None
    run_deliveries()
    assert receiver.received == []
    assert delivery_of(client, call_id)["status"] == "failed"
    later(deps, 3600)  # its first attempt was made: not in the reconciler's index any more
    assert run_reconciler(client)["requeued"] == 0
    assert run_deliveries() == 0


def test_a_copy_failing_after_another_delivered_leaves_it_delivered(
    client: Client, deps: Dependencies, receiver: DemoReceiver
) -> None:
    call_id = queued_and_completed(client)
    [delivery] = deps.store.deliveries.of_call(call_id)
    run_deliveries()  # delivered
    receiver.script((410, 0))
    deps.deliveries.send({"call_id": call_id, "webhook_id": delivery.webhook_id})
    run_deliveries()  # a copy: skipped, since it is delivered
    assert [r.answered for r in receiver.received] == [200]
    after = replace(delivery, state="failed", attempts=2, last_error="HTTP 410")
    assert not deps.store.deliveries.record_attempt(after)  # never over a delivered one
    assert deps.store.deliveries.get(call_id, delivery.webhook_id).state == "delivered"


def test_a_message_from_before_deliveries_were_kept_is_sent_once_not_queued_again(
    client: Client, deps: Dependencies, receiver: DemoReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A queue message of the old shape (its `kind`, no delivery kept) keeps its delivery now
    and sends it; it does not also queue a second message for it."""
    monkeypatch.setattr(deps.deliveries, "queue_name", None)  # stored as before deliveries
    call_id = queued_and_completed(client)
    monkeypatch.undo()
    status = delivery_status(client, call_id)
    deps.deliveries.send(
        {"call_id": call_id, "webhook_id": webhook_id(call_id, status), "kind": "call.result"}
    )
    assert run_deliveries() == 1
    assert [r.answered for r in receiver.received] == [200]
    assert waiting() == (0, 0)  # nothing more on the queue


def delivery_status(client: Client, call_id: str) -> str:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    return json.loads(client.http.get(f"/calls/{call_id}", headers=auth).body)["status"]

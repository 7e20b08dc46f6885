"""Calls from SQS messages and EventBridge events: same path as POST /calls, decided per message.

Each message is decided alone, whatever it holds or raises: only those to retry come back
(Lambda's partial batch response), so a poison message never costs its neighbours, and a placed
message never reaches the dead-letter queue, where a redrive would give it a new id and a new
default idempotency key.
"""

from __future__ import annotations

import itertools
import json
import uuid
from typing import Any

import boto3
import pytest
from chalice.local import LambdaContext
from chalice.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import app
from chalicelib.config.dependencies import Dependencies
from chalicelib.errors import FuseUnavailable
from chalicelib.placing.events import RetryLater
from chalicelib.placing.ids import id_for_key
from local.aws_setup import create_call_requests_queue
from local.fuse_sim import FuseSimulator
from local.sqs_poller import poll_once
from tests.helpers import API_TOKEN, ID_SECRET, PHONE, read_call, run_batch, sqs_event

VALID = {"phone": PHONE, "reference": "sqs-ok"}
INVALID = {"phone": "12", "reference": "sqs-bad", "attempts": 99}
FLAKY_PHONE = "+16175559876"  # Fuse is "down" for this one number, below


@pytest.fixture
def flaky_fuse(deps: Dependencies, fuse: FuseSimulator) -> list[bool]:
    """Fuse answers 500 for FLAKY_PHONE while the returned flag is set."""
    down = [True]
    queue_call = deps.fuse.queue_call

    def maybe_down(credentials: Any, campaign: Any, fields: Any, **options: Any) -> Any:
        if down[0] and FLAKY_PHONE in fields["phone_number"]:
            raise FuseUnavailable("Fuse is unavailable (HTTP 500)")
        return queue_call(credentials, campaign, fields, **options)

    deps.fuse.queue_call = maybe_down  # type: ignore[method-assign]
    return down


def test_a_batch_decides_each_message_and_only_the_failed_one_comes_back(
    client: Client, fuse: FuseSimulator, flaky_fuse: list[bool]
) -> None:
    messages = [("m-1", VALID), ("m-2", INVALID), ("m-3", {"phone": FLAKY_PHONE}), ("m-4", "no")]
    assert run_batch(client, messages) == ["m-3"]
    assert len(fuse.queued) == 1  # the valid one; the flaky one was refused, not queued

    flaky_fuse[0] = False  # Fuse is back; SQS delivers m-3 again
    assert run_batch(client, [messages[2]]) == []
    phones = sorted(f["phone_number"].split(";")[0] for f in fuse.queued.values())
    assert phones == ["tel:+16175551234", f"tel:{FLAKY_PHONE}"]
    # Were the whole batch to come back (an invocation that timed out), nothing dials twice.
    assert run_batch(client, messages) == []
    assert len(fuse.queued) == 2


def test_a_rejected_message_is_readable_and_never_retried(client: Client) -> None:
    assert run_batch(client, [("m-9", INVALID)]) == []
    call = read_call(client, id_for_key(ID_SECRET, "m-9"))
    assert call["status"] == "rejected"
    assert call["error"]["code"] == "validation_failed"
    assert {d["field"] for d in call["error"]["details"]} == {"phone", "attempts"}
    listed = client.http.get(
        "/calls?reference=sqs-bad", headers={"Authorization": f"Bearer {API_TOKEN}"}
    )
    assert [c["id"] for c in json.loads(listed.body)["calls"]] == [id_for_key(ID_SECRET, "m-9")]


def test_fuse_refusing_a_message_stores_it_rejected(client: Client, fuse: FuseSimulator) -> None:
    fuse.fail_with = (400, "Invalid caller id")
    assert run_batch(client, [("m-5", VALID)]) == []
    assert (
        read_call(client, id_for_key(ID_SECRET, "m-5"))["error"]["code"] == "fuse_rejected_request"
    )


def test_an_unknown_outcome_is_not_retried(client: Client, fuse: FuseSimulator) -> None:
    fuse.mode = "garbage"
    assert run_batch(client, [("m-6", VALID)]) == []
    assert read_call(client, id_for_key(ID_SECRET, "m-6"))["status"] == "unknown"
    fuse.mode = "normal"
    assert run_batch(client, [("m-6", VALID)]) == []
    assert len(fuse.queue_requests()) == 1


def test_the_bodys_idempotency_key_wins_over_the_message_id(
    client: Client, fuse: FuseSimulator
) -> None:
    body = {**VALID, "idempotency_key": "crm-lead-1"}
    assert run_batch(client, [("m-7", body), ("m-8", body)]) == []
    assert len(fuse.queue_requests()) == 1
    assert read_call(client, id_for_key(ID_SECRET, "crm-lead-1"))["status"] == "queued"


POISON = [
    ("lone surrogate", '{"phone": "+16175551234", "reference": "\\ud800"}'),
    ("lone surrogate in a key", '{"phone": "+16175551234", "variables": {"\\udc00": 1}}'),
    ("nested 20,000 deep", "[" * 20_000 + "]" * 20_000),
    ("nested 900 deep in a field", '{"variables": ' + "[" * 900 + "]" * 900 + "}"),
    ("a rejection too large to store", json.dumps({f"k{i}": "x" * 10 for i in range(5000)})),
    ("not UTF-8", "\udcff"),
]


@pytest.mark.parametrize(("name", "poison"), POISON, ids=[name for name, _ in POISON])
def test_a_poison_message_is_rejected_alone_and_its_neighbours_are_placed(
    client: Client, fuse: FuseSimulator, name: str, poison: str
) -> None:
    good = [("g-1", VALID), ("g-2", {"phone": "+16175551235"})]
    raw = poison.encode("utf-8", "surrogateescape")
    event = sqs_event(client, [*good, ("poison", "placeholder")])
    event["Records"][2]["body"] = raw.decode("utf-8", "surrogateescape")
    context = LambdaContext("call_requests", 512, max_runtime_ms=30_000)
    answer = app.handler_map["call_requests"](event, context)
    assert answer == {"batchItemFailures": []}
    assert len(fuse.queued) == 2
    assert read_call(client, id_for_key(ID_SECRET, "poison"))["status"] == "rejected"


def test_a_bug_costs_only_its_own_message(
    client: Client, deps: Dependencies, fuse: FuseSimulator
) -> None:
    queue_call = deps.fuse.queue_call

    def crash_on_one(credentials: Any, campaign: Any, fields: Any, **options: Any) -> Any:
        if FLAKY_PHONE in fields["phone_number"]:
            raise RuntimeError("a bug")
        return queue_call(credentials, campaign, fields, **options)

    deps.fuse.queue_call = crash_on_one  # type: ignore[method-assign]
    assert run_batch(client, [("b-1", {"phone": FLAKY_PHONE}), ("b-2", VALID)]) == ["b-1"]
    assert len(fuse.queued) == 1


def test_messages_with_no_time_left_come_back_untouched(
    client: Client, fuse: FuseSimulator
) -> None:
    """A 10-message batch with a slow Fuse cannot finish in a 30 s Lambda; an invocation that
    times out returns its whole batch. So a message is only started while one more Fuse request
    fits; the rest are returned as failures, never started."""
    messages = [(f"t-{n}", {"phone": f"+1617555{n:04d}"}) for n in range(3)]
    assert run_batch(client, messages, runtime_ms=1_000) == ["t-0", "t-1", "t-2"]
    assert fuse.queue_requests() == []
    assert run_batch(client, messages) == []
    assert len(fuse.queue_requests()) == 3


def test_an_eventbridge_event_places_a_call_once(client: Client, fuse: FuseSimulator) -> None:
    event = client.events.generate_cw_event(
        source="crm", detail_type="Fuse Call Requested", detail=VALID, resources=[]
    )
    event["id"] = "eb-1"
    first = client.lambda_.invoke("call_requested", event).payload
    again = client.lambda_.invoke("call_requested", event).payload  # at-least-once delivery
    assert first["decision"] == again["decision"] == "queued"
    assert first["call_id"] == again["call_id"]
    assert len(fuse.queue_requests()) == 1


def test_an_eventbridge_event_with_a_passing_fault_raises_so_lambda_retries(
    client: Client, flaky_fuse: list[bool]
) -> None:
    event = client.events.generate_cw_event(
        source="crm", detail_type="Fuse Call Requested", detail={"phone": FLAKY_PHONE}, resources=[]
    )
    with pytest.raises(RetryLater):
        client.lambda_.invoke("call_requested", event)


def test_the_event_sources_are_wired_as_configured() -> None:
    sources = {e.name: e for e in app.event_sources}
    sqs = sources["call_requests"]
    assert sqs.queue == "fuse-bridge-call-requests"  # CALL_REQUESTS_QUEUE, set per stage
    assert sqs.maximum_concurrency == 2
    assert sqs.batch_size == 100  # a batch's calls go to Fuse in bulks: the bigger, the fewer
    assert sqs.maximum_batching_window_in_seconds == 1  # AWS's least for a batch over ten
    dispatcher = sources["dispatch_calls"]
    assert dispatcher.queue == "fuse-bridge-dispatch"
    assert (dispatcher.batch_size, dispatcher.maximum_batching_window_in_seconds) == (100, 5)
    assert dispatcher.maximum_concurrency == 2  # FUSE_BULK_CONCURRENCY: bulks in flight
    pattern = sources["call_requested"].event_pattern
    assert pattern == {"detail-type": ["Fuse Call Requested"], "source": ["crm"]}


@pytest.mark.usefixtures("aws")
def test_only_messages_never_placed_reach_the_dead_letter_queue_and_a_redrive_dials_once(
    client: Client, fuse: FuseSimulator, flaky_fuse: list[bool]
) -> None:
    """Through SQS (moto) and the local consumer, which treats a partial batch response as
    Lambda does. A redriven message gets a new message id, so it must never have been placed."""
    sqs = boto3.client("sqs")
    queue_url = create_call_requests_queue(sqs, "fuse-bridge-test-call-requests", 0)
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    queue_arn = arn["Attributes"]["QueueArn"]
    dlq_url = sqs.get_queue_url(QueueName="fuse-bridge-test-call-requests-dlq")["QueueUrl"]
    handler = app.handler_map["call_requests"]
    for body in (VALID, {"phone": FLAKY_PHONE}, INVALID):
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(body))

    def drain(url: str) -> None:
        for _ in range(10):  # five receipts, then SQS moves what still fails to the DLQ
            if poll_once(sqs, url, queue_arn, handler, "us-east-1") == 0:
                return

    drain(queue_url)
    dead = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(m["Body"]) for m in dead] == [{"phone": FLAKY_PHONE}]
    assert [f["phone_number"].split(";")[0] for f in fuse.queued.values()] == [f"tel:{PHONE}"]

    flaky_fuse[0] = False  # the cause is fixed; the operator redrives the DLQ
    for message in dead:
        sqs.send_message(QueueUrl=queue_url, MessageBody=message["Body"])
        sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
    drain(queue_url)
    phones = sorted(f["phone_number"].split(";")[0] for f in fuse.queued.values())
    assert phones == [f"tel:{PHONE}", f"tel:{FLAKY_PHONE}"]  # each dialled exactly once


POISON_BODIES = st.one_of(
    st.text(max_size=40),
    st.sampled_from([body for _, body in POISON]),
    st.builds(lambda n: json.dumps({"phone": "12", "attempts": n}), st.integers()),
    st.builds(lambda v: json.dumps({"phone": PHONE, "dtmf": v}), st.text(max_size=5)),
)
_numbers = itertools.count(1000)


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    shape=st.lists(st.one_of(st.just("good"), POISON_BODIES), min_size=1, max_size=10),
    redelivered=st.booleans(),
)
def test_any_batch_places_every_good_message_exactly_once(
    client: Client, fuse: FuseSimulator, shape: list[str], redelivered: bool
) -> None:
    fuse.reset()
    messages, good_phones = [], []
    for item in shape:
        message_id = str(uuid.uuid4())
        if item == "good":
            phone = f"+1617555{next(_numbers) % 10_000:04d}"
            good_phones.append(phone)
            messages.append((message_id, {"phone": phone}))
        else:
            messages.append((message_id, item))
    failures = run_batch(client, messages)
    if redelivered:  # SQS delivers at least once: the whole batch may come again
        failures = run_batch(client, messages)
    assert failures == []
    dialled = [f["phone_number"].split(";")[0].removeprefix("tel:") for f in fuse.queued.values()]
    assert sorted(dialled) == sorted(good_phones)  # each good one once, nothing else


def sns_notification(message: dict[str, Any], message_id: str) -> dict[str, Any]:
    """What an SNS topic delivers to an SQS subscription without raw message delivery (the
    notification JSON format in the SNS documentation)."""
    return {
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:crm-call-requests",
        "Message": json.dumps(message),
        "Timestamp": "2026-11-23T07:00:00.000Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLEpH+..",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000.pem",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
    }


def eventbridge_event(detail: dict[str, Any], event_id: str) -> dict[str, Any]:
    """A whole event, as a rule with an SQS target (and no input transformer) sends it."""
    return {
        "version": "0",
        "id": event_id,
        "detail-type": "Fuse Call Requested",
        "source": "crm",
        "account": "123456789012",
        "time": "2026-11-23T07:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


def test_sns_and_eventbridge_envelopes_are_unwrapped_and_keyed_by_their_own_ids(
    client: Client, fuse: FuseSimulator
) -> None:
    """SNS and EventBridge deliver again with the same envelope id but a new SQS message:
    the envelope's id is the key, so the phone rings once."""
    sns = sns_notification({"phone": PHONE, "reference": "via-sns"}, "sns-msg-1")
    bridge = eventbridge_event({"phone": PHONE, "reference": "via-rule"}, "event-1")
    assert run_batch(client, [("m1", sns), ("m2", bridge)]) == []
    assert run_batch(client, [("m3", sns), ("m4", bridge)]) == []  # delivered again
    assert len(fuse.queue_requests()) == 2
    sns_call = read_call(client, id_for_key(ID_SECRET, "sns-msg-1"))
    assert sns_call["reference"] == "via-sns"
    assert read_call(client, id_for_key(ID_SECRET, "event-1"))["reference"] == "via-rule"
    bad = sns_notification({"phone": "12"}, "sns-msg-2")
    assert run_batch(client, [("m5", bad)]) == []  # rejected: stored, not retried
    assert read_call(client, id_for_key(ID_SECRET, "sns-msg-2"))["status"] == "rejected"

"""Calls from SQS messages and EventBridge events: same path as POST /calls, decided per message."""

from __future__ import annotations

import json
from typing import Any

import pytest
from chalice.test import Client

from app import app
from chalicelib.dependencies import Dependencies
from chalicelib.errors import FuseUnavailable
from chalicelib.event_calls import RetryLater
from local.fuse_sim import FuseSimulator
from tests.helpers import API_TOKEN, PHONE, read_call

VALID = {"phone": PHONE, "reference": "sqs-ok"}
INVALID = {"phone": "12", "reference": "sqs-bad", "attempts": 99}
FLAKY_PHONE = "+16175559876"  # Fuse is "down" for this one number, below


def sqs_event(client: Client, messages: list[tuple[str, Any]]) -> dict[str, Any]:
    event = client.events.generate_sqs_event(
        [m if isinstance(m, str) else json.dumps(m) for _, m in messages],
        queue_name="fuse-bridge-test-call-requests",
    )
    for record, (message_id, _) in zip(event["Records"], messages, strict=True):
        record["messageId"] = message_id
    return event


@pytest.fixture
def flaky_fuse(deps: Dependencies, fuse: FuseSimulator) -> list[bool]:
    """Fuse answers 500 for FLAKY_PHONE while the returned flag is set."""
    down = [True]
    queue_call = deps.fuse.queue_call

    def maybe_down(credentials: Any, campaign: Any, fields: Any) -> Any:
        if down[0] and FLAKY_PHONE in fields["phone_number"]:
            raise FuseUnavailable("Fuse is unavailable (HTTP 500)")
        return queue_call(credentials, campaign, fields)

    deps.fuse.queue_call = maybe_down  # type: ignore[method-assign]
    return down


def test_a_batch_decides_each_message_and_a_redelivery_dials_nothing_twice(
    client: Client, fuse: FuseSimulator, flaky_fuse: list[bool]
) -> None:
    event = sqs_event(
        client,
        [("m-1", VALID), ("m-2", INVALID), ("m-3", {"phone": FLAKY_PHONE}), ("m-4", "not json")],
    )
    with pytest.raises(RetryLater, match="1 of 4"):
        client.lambda_.invoke("call_requests", event)
    assert len(fuse.queued) == 1  # the valid one; the flaky one was refused, not queued

    flaky_fuse[0] = False  # Fuse is back; SQS delivers the whole batch again
    outcomes = client.lambda_.invoke("call_requests", event).payload
    assert [o["decision"] for o in outcomes] == ["queued", "rejected", "queued", "rejected"]
    assert len(fuse.queued) == 2  # m-1 was not dialled again
    phones = sorted(f["phone_number"].split(";")[0] for f in fuse.queued.values())
    assert phones == ["tel:+16175551234", f"tel:{FLAKY_PHONE}"]


def test_a_rejected_message_is_readable_and_never_retried(client: Client) -> None:
    [outcome] = client.lambda_.invoke(
        "call_requests", sqs_event(client, [("m-9", INVALID)])
    ).payload
    assert outcome["decision"] == "rejected"
    assert outcome["code"] == "validation_failed"
    call = read_call(client, outcome["call_id"])
    assert call["status"] == "rejected"
    assert {d["field"] for d in call["error"]["details"]} == {"phone", "attempts"}
    listed = client.http.get(
        "/calls?reference=sqs-bad", headers={"Authorization": f"Bearer {API_TOKEN}"}
    )
    assert [c["id"] for c in json.loads(listed.body)["calls"]] == [outcome["call_id"]]


def test_fuse_refusing_a_message_stores_it_rejected(client: Client, fuse: FuseSimulator) -> None:
    fuse.fail_with = (400, "Invalid caller id")
    [outcome] = client.lambda_.invoke("call_requests", sqs_event(client, [("m-5", VALID)])).payload
    assert outcome["decision"] == "rejected"
    assert read_call(client, outcome["call_id"])["error"]["code"] == "fuse_rejected_request"


def test_an_unknown_outcome_is_not_retried(client: Client, fuse: FuseSimulator) -> None:
    fuse.mode = "garbage"
    [outcome] = client.lambda_.invoke("call_requests", sqs_event(client, [("m-6", VALID)])).payload
    assert outcome["decision"] == "unknown"
    fuse.mode = "normal"
    [again] = client.lambda_.invoke("call_requests", sqs_event(client, [("m-6", VALID)])).payload
    assert again["decision"] == "unknown"
    assert len(fuse.queue_requests()) == 1


def test_the_bodys_idempotency_key_wins_over_the_message_id(
    client: Client, fuse: FuseSimulator
) -> None:
    body = {**VALID, "idempotency_key": "crm-lead-1"}
    event = sqs_event(client, [("m-7", body), ("m-8", body)])
    outcomes = client.lambda_.invoke("call_requests", event).payload
    assert outcomes[0]["call_id"] == outcomes[1]["call_id"]
    assert len(fuse.queue_requests()) == 1


def test_an_eventbridge_event_places_a_call_once(client: Client, fuse: FuseSimulator) -> None:
    event = client.events.generate_cw_event(
        source="crm", detail_type="Fuse Call Requested", detail=VALID, resources=[]
    )
    event["id"] = "eb-1"
    [first] = client.lambda_.invoke("call_requested", event).payload
    [again] = client.lambda_.invoke("call_requested", event).payload  # at-least-once delivery
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
    assert sqs.batch_size == 10
    pattern = sources["call_requested"].event_pattern
    assert pattern == {"detail-type": ["Fuse Call Requested"], "source": ["crm"]}

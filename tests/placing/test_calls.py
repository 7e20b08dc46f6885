"""POST /calls through Chalice's test client, with moto for AWS and the simulator for Fuse."""

from __future__ import annotations

import json
import time

from chalice.test import Client

from chalicelib.admission.calls import number_key
from chalicelib.fuse.callback_urls import callback_token
from local.fuse_sim import FuseSimulator
from tests.helpers import (
    API_TOKEN,
    CALLBACK_SECRET,
    ID_SECRET,
    OTHER_TOKEN,
    PHONE,
    PUBLIC_BASE_URL,
    error_of,
    post_call,
)


def test_health_answers_without_auth(client: Client) -> None:
    response = client.http.get("/health")
    assert response.status_code == 200
    assert json.loads(response.body) == {"status": "ok"}


def test_a_call_is_queued_on_fuse_and_answered_202(client: Client, fuse: FuseSimulator) -> None:
    start = int(time.time()) + 3600
    response = post_call(
        client,
        {
            "phone": "(617) 555-1234",
            "variables": {"name": "Ada", "appointment": "10:00", "vip": True},
            "start_at": start,
            "end_at": start + 7200,
            "attempts": 3,
            "retry_delay": 600,
            "dtmf": "1w#",
            "pci": False,
            "reference": "lead-42",
        },
    )
    assert response.status_code == 202, response.body
    body = json.loads(response.body)
    call_id = body["id"]
    assert body == {
        "id": call_id,
        "status": "queued",
        "fuse_call_id": "1001",
        "reference": "lead-42",
        "links": {"self": f"{PUBLIC_BASE_URL}/calls/{call_id}"},
    }
    # Absolute, with the API's stage: a bare /calls/{id} resolves outside /api.
    assert response.headers["Location"] == f"{PUBLIC_BASE_URL}/calls/{call_id}"
    [sent] = fuse.queue_requests()
    assert sent.path == "/api/apps/101/201/queue"
    assert sent.content_type == "multipart/form-data"
    assert sent.files == ()
    token = callback_token(call_id, CALLBACK_SECRET)
    number = number_key(ID_SECRET, "+16175551234")
    opt_out = callback_token(f"opt-out/{call_id}/{number}", CALLBACK_SECRET)
    opt_out_url = f"{PUBLIC_BASE_URL}/fuse/opt-out/{call_id}?n={number}&token={opt_out}"
    assert sent.form == {
        "phone_number": "tel:+16175551234;ani=6175550100;postd=1w#",
        "start_timestamp": str(start),
        "end_timestamp": str(start + 7200),
        "max_attempts": "3",
        "reattempt_wait": "600",
        "metadata": json.dumps(
            {"name": "Ada", "appointment": "10:00", "vip": True, "opt_out_url": opt_out_url},
            separators=(",", ":"),
        ),
        "is_pci": "0",
        "result_url": f"{PUBLIC_BASE_URL}/fuse/results/{call_id}?token={token}",
    }


def test_the_campaign_chooses_the_fuse_deployment(client: Client, fuse: FuseSimulator) -> None:
    response = post_call(
        client, {"phone": PHONE, "campaign": "reminders", "caller_id": "+16175550199"}
    )
    assert response.status_code == 202, response.body
    [sent] = fuse.queue_requests()
    assert sent.path == "/api/apps/102/202/queue"
    assert sent.form["phone_number"] == "tel:+16175551234;ani=6175550199"


def test_every_configured_api_token_is_accepted(client: Client) -> None:
    assert post_call(client, {"phone": PHONE}, token=OTHER_TOKEN).status_code == 202


def test_missing_or_wrong_token_is_401_and_nothing_is_queued(
    client: Client, fuse: FuseSimulator
) -> None:
    for token in (None, "wrong", API_TOKEN + "x", ""):
        response = post_call(client, {"phone": PHONE}, token=token)
        assert response.status_code == 401
        assert error_of(response)["code"] == "unauthorized"
    basic = client.http.post(
        "/calls",
        headers={"Authorization": f"Basic {API_TOKEN}", "Content-Type": "application/json"},
        body=json.dumps({"phone": PHONE}),
    )
    assert basic.status_code == 401
    assert fuse.queue_requests() == []


def test_malformed_json_is_400_invalid_json(client: Client) -> None:
    for raw in (b'{"phone": ', b"", b"   ", b"\xff\xfe\x00garbage", b'{"attempts": NaN}'):
        response = post_call(client, None, raw=raw)
        assert response.status_code == 400, raw
        assert error_of(response)["code"] == "invalid_json"


def test_a_body_over_64_kib_is_413(client: Client, fuse: FuseSimulator) -> None:
    raw = json.dumps({"phone": PHONE, "reference": "x" * 70_000}).encode()
    response = post_call(client, None, raw=raw)
    assert response.status_code == 413
    assert error_of(response)["code"] == "payload_too_large"
    assert fuse.queue_requests() == []


def test_every_bad_field_is_listed_at_once(client: Client, fuse: FuseSimulator) -> None:
    response = post_call(
        client,
        {"phone": "12", "attempts": 11, "dtmf": "abc", "colour": "red", "pci": "yes"},
    )
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "validation_failed"
    assert {d["field"] for d in error["details"]} == {"phone", "attempts", "dtmf", "colour", "pci"}
    assert "colour" in error["message"]
    assert fuse.queue_requests() == []


def test_a_body_that_is_not_an_object_is_422(client: Client) -> None:
    response = post_call(client, ["+16175551234"])
    assert response.status_code == 422
    assert error_of(response)["details"] == [
        {"field": "(body)", "message": "must be a JSON object"}
    ]


def test_unknown_campaign_names_the_configured_ones(client: Client) -> None:
    response = post_call(client, {"phone": PHONE, "campaign": "summer"})
    [detail] = error_of(response)["details"]
    assert response.status_code == 422
    assert detail["field"] == "campaign"
    assert "default, reminders, retired" in detail["message"]


def test_without_any_caller_id_the_error_says_how_to_configure_one(client: Client) -> None:
    response = post_call(client, {"phone": PHONE, "campaign": "reminders"})
    [detail] = error_of(response)["details"]
    assert response.status_code == 422
    assert detail["field"] == "caller_id"
    assert "campaigns/reminders/caller_id" in detail["message"]


def test_wrong_content_type_is_415_in_the_bridge_shape(client: Client) -> None:
    response = post_call(client, None, raw=b"phone=1", content_type="text/plain")
    assert response.status_code == 415
    assert error_of(response)["code"] == "unsupported_media_type"


def test_wrong_method_is_405_in_the_bridge_shape(client: Client) -> None:
    response = client.http.delete("/calls")
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"

"""Fuse's result callbacks: genuine only, every encoding, nothing lost, readable by callers."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest
from chalice.test import Client

from chalicelib.fuse.callback_urls import callback_token
from local.fuse_sim import FuseSimulator, encode_result
from tests.helpers import (
    CALLBACK_SECRET,
    FUSE_EXAMPLE,
    PHONE,
    TABLE,
    Aws,
    error_of,
    post_call,
    post_callback,
    queue,
    read_call,
)

# Fuse's own example (shared/fuse-api.md section 3): digit strings, numbers, a quoted phone.


def stored_callbacks(aws: Aws, call_id: str) -> list[dict[str, Any]]:
    return aws.dynamodb.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :result)",
        ExpressionAttributeValues={":pk": {"S": call_id}, ":result": {"S": "result#"}},
    )["Items"]


EXPECTED_RESULT = {
    "status": "completed",
    "attempts": 1,
    "max_attempts": 1,
    "duration": 24,
    "events": [
        {"event": "queued", "at": "2016-09-28T20:51:32Z"},
        {"event": "dialing", "at": "2016-09-28T20:51:40Z"},
        {"event": "connected", "at": "2016-09-28T20:51:47Z"},
        {"event": "disconnected", "at": "2016-09-28T20:52:11Z"},
    ],
}


@pytest.mark.parametrize("encoding", ["json", "form", "multipart"])
def test_a_result_in_any_encoding_completes_the_call(client: Client, encoding: str) -> None:
    call_id = queue(client)
    body, content_type = encode_result(FUSE_EXAMPLE, encoding)
    answer = post_callback(client, call_id, body, content_type)
    assert answer.status_code == 200
    assert json.loads(answer.body) == {"status": "stored", "id": call_id}
    call = read_call(client, call_id)
    assert call["status"] == "completed"
    result = call["result"]
    assert {k: result[k] for k in EXPECTED_RESULT} == EXPECTED_RESULT
    assert result["source"] == "callback"
    assert result["received_at"].endswith("Z")
    assert result["details"]["phone_number"] == "6173720293"  # stray quotes gone
    assert result["details"]["start_timestamp"] == "2016-09-28T20:51:40Z"


def test_php_nested_keys_empty_timestamps_and_unknown_fields(client: Client) -> None:
    call_id = queue(client)
    form = urlencode(
        [
            ("status", "failed"),
            ("attempts", "3"),
            ("max_attempts", "3"),
            ("start_timestamp", ""),
            ("end_timestamp", ""),
            ("events[0][event]", "queued"),
            ("events[0][timestamp]", "1475095892"),
            ("events[1][event]", "dialing"),
            ("events[1][timestamp]", "1475095900"),
            ("carrier_note", "busy"),
        ]
    )
    assert (
        post_callback(client, call_id, form, "application/x-www-form-urlencoded").status_code == 200
    )
    result = read_call(client, call_id)["result"]
    assert result["status"] == "failed"
    assert result["attempts"] == 3
    assert result["events"] == [
        {"event": "queued", "at": "2016-09-28T20:51:32Z"},
        {"event": "dialing", "at": "2016-09-28T20:51:40Z"},
    ]
    assert result["details"]["start_timestamp"] is None
    assert result["details"]["carrier_note"] == "busy"


def test_a_wrong_or_missing_token_is_403_and_nothing_is_stored(client: Client, aws: Aws) -> None:
    call_id = queue(client)
    other = callback_token("another-call", CALLBACK_SECRET)
    for token in (None, "", "forged", other):
        answer = post_callback(client, call_id, FUSE_EXAMPLE, token=token)
        assert answer.status_code == 403
        assert error_of(answer)["code"] == "invalid_token"
    assert stored_callbacks(aws, call_id) == []
    assert read_call(client, call_id)["status"] == "queued"


def test_an_id_the_bridge_never_issued_is_404(client: Client, aws: Aws) -> None:
    answer = post_callback(client, "neverissued", FUSE_EXAMPLE)
    assert answer.status_code == 404
    assert error_of(answer)["code"] == "not_found"
    assert stored_callbacks(aws, "neverissued") == []


@pytest.mark.parametrize(
    ("body", "content_type", "flag"),
    [
        (b"", "application/json", "empty"),
        (b"\xff\xfe\x00\x81 not utf-8", "application/x-www-form-urlencoded", "UTF-8"),
        (b"\xff\xfe\x00\x81 not utf-8", "application/json", "JSON"),
        (b"<result><call_details><status>completed", "application/xml", "XML"),
        (b'["completed"]', "application/json", "not an object"),
        (b'{"attempts": "1"}', "application/json", "no status"),
    ],
)
def test_an_unreadable_callback_is_kept_flagged_and_answered_200(
    client: Client, aws: Aws, body: bytes, content_type: str, flag: str
) -> None:
    call_id = queue(client)
    answer = post_callback(client, call_id, body, content_type)
    assert answer.status_code == 200
    [item] = stored_callbacks(aws, call_id)
    assert item["body"]["B"] == body
    assert item["content_type"]["S"] == content_type
    assert flag in item["parse_error"]["S"]
    assert read_call(client, call_id)["status"] == "queued"  # nothing read, nothing changed


def test_the_documented_xml_form_is_read(client: Client) -> None:
    """Fuse's status page documents `<result><call_details>...<events><item>`."""
    call_id = queue(client)
    body = (
        b"<?xml version='1.0'?><result><call_details><status>completed</status>"
        b"<attempts>1</attempts><max_attempts>1</max_attempts><events>"
        b"<item><event>queued</event><timestamp>1475095892</timestamp></item>"
        b"<item><event>dialing</event><timestamp>1475095900</timestamp></item>"
        b"</events><duration>24</duration><phone_number>'6173720293'</phone_number>"
        b"</call_details></result>"
    )
    assert post_callback(client, call_id, body, "application/xml").status_code == 200
    result = read_call(client, call_id)["result"]
    assert (result["status"], result["attempts"], result["duration"]) == ("completed", 1, 24)
    assert result["events"] == EXPECTED_RESULT["events"][:2]
    assert result["details"]["phone_number"] == "6173720293"


def test_xml_entities_are_refused_not_expanded(client: Client, aws: Aws) -> None:
    call_id = queue(client)
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><result><status>&b;</status></result>'
    )
    assert post_callback(client, call_id, bomb, "application/xml").status_code == 200
    [item] = stored_callbacks(aws, call_id)
    assert "XML" in item["parse_error"]["S"]
    assert read_call(client, call_id)["status"] == "queued"


def test_a_1_mib_body_is_kept_cut_and_flagged(client: Client, aws: Aws) -> None:
    call_id = queue(client)
    body = json.dumps({**FUSE_EXAMPLE, "padding": "x" * (1 << 20)}).encode()
    assert post_callback(client, call_id, body).status_code == 200
    [item] = stored_callbacks(aws, call_id)
    assert int(item["body_size"]["N"]) == len(body)
    assert len(item["body"]["B"]) == 256 * 1024
    assert item["truncated"]["BOOL"] is True
    assert "stored cut" in item["parse_error"]["S"]
    assert read_call(client, call_id)["status"] == "completed"  # it was readable in full


def test_the_same_callback_twice_is_stored_once(client: Client, aws: Aws) -> None:
    call_id = queue(client)
    assert json.loads(post_callback(client, call_id, FUSE_EXAMPLE).body)["status"] == "stored"
    assert json.loads(post_callback(client, call_id, FUSE_EXAMPLE).body)["status"] == "duplicate"
    assert len(stored_callbacks(aws, call_id)) == 1


def test_a_later_different_callback_is_kept_and_wins(client: Client, aws: Aws) -> None:
    call_id = queue(client)
    post_callback(client, call_id, {**FUSE_EXAMPLE, "status": "failed"})
    post_callback(client, call_id, {**FUSE_EXAMPLE, "status": "canceled"})
    assert len(stored_callbacks(aws, call_id)) == 2
    assert read_call(client, call_id)["status"] == "canceled"


def test_fuses_own_status_words_are_shown(client: Client) -> None:
    call_id = queue(client)
    post_callback(client, call_id, {**FUSE_EXAMPLE, "status": "Cancelled"})
    assert read_call(client, call_id)["status"] == "canceled"
    other = queue(client)
    post_callback(client, other, {**FUSE_EXAMPLE, "status": "voicemail"})
    assert read_call(client, other)["status"] == "voicemail"


def test_an_unknown_call_is_settled_by_its_callback(client: Client, fuse: FuseSimulator) -> None:
    fuse.mode = "garbage"
    first = post_call(client, {"phone": PHONE}, key="settle-me")
    assert first.status_code == 504
    call_id = json.loads(first.body)["id"]
    assert read_call(client, call_id)["status"] == "unknown"
    assert post_callback(client, call_id, FUSE_EXAMPLE).status_code == 200
    assert read_call(client, call_id)["status"] == "completed"  # queued after all
    replay = post_call(client, {"phone": PHONE}, key="settle-me")
    assert replay.status_code == 504  # the answer given stays the answer replayed
    assert len(fuse.queue_requests()) == 1


def test_a_get_probe_of_the_result_url_answers_200(client: Client) -> None:
    call_id = queue(client)
    token = callback_token(call_id, CALLBACK_SECRET)
    assert client.http.get(f"/fuse/results/{call_id}?token={token}").status_code == 200

"""What an operator sees: EMF metrics and JSON logs with the keys that find a call."""

from __future__ import annotations

import io
import json
import time

import pytest
from chalice.test import Client

from local.demo import standard_webhooks_headers
from local.fuse_sim import FuseSimulator
from tests.helpers import (
    CONTACTS,
    FUSE_EXAMPLE,
    PHONE,
    emitted,
    post_call,
    post_callback,
    post_list,
    run_batch,
)


def test_each_outcome_is_counted(
    client: Client, fuse: FuseSimulator, capsys: pytest.CaptureFixture[str]
) -> None:
    call_id = json.loads(post_call(client, {"phone": PHONE}).body)["id"]
    post_call(client, {"phone": "12"})
    fuse.mode = "error500"
    post_call(client, {"phone": PHONE})
    fuse.mode = "normal"
    post_callback(client, call_id, FUSE_EXAMPLE)
    post_list(client, {"contacts": CONTACTS})
    client.http.get("/calls/nope")  # no token: refused, but not a call request
    names = [
        (m["name"], m.get("reason") or m.get("code"), m["value"])
        for m in emitted(capsys.readouterr().out)
    ]
    assert ("CallsQueued", None, [1.0]) in names
    assert ("CallsRejected", "validation_failed", [1.0]) in names
    assert ("FuseErrors", "fuse_unavailable", [1.0]) in names
    assert ("RequestsFailed", "fuse_unavailable", [1.0]) in names
    assert ("CallbacksStored", None, [1.0]) in names
    assert ("BulkContacts", None, [3.0]) in names
    assert ("RequestsRefused", "unauthorized", [1.0]) in names
    assert ("CallsRejected", "unauthorized", [1.0]) not in names


def test_log_lines_carry_the_keys_that_find_a_call(
    client: Client, bridge_logs: io.StringIO
) -> None:
    body = json.loads(post_call(client, {"phone": PHONE, "reference": "lead-77"}).body)
    [queued] = [
        json.loads(line) for line in bridge_logs.getvalue().splitlines() if '"call queued"' in line
    ]
    assert queued["call_id"] == body["id"]
    assert queued["reference"] == "lead-77"
    assert queued["campaign"] == "default"
    assert queued["outcome"] == "queued"
    assert queued["phone"] == "+1*******1234"
    assert queued["lambda_request_id"]
    assert queued["level"] == "INFO"


@pytest.mark.usefixtures("fuse")
def test_every_way_in_counts_its_refusals_the_same(
    client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    """A call refused once its sender is known is CallsRejected, whatever brought it: POST
    /calls, a list, a native webhook, an SQS message. A stranger's request is not (it is
    RequestsRefused, as on every route)."""
    bad = {"phone": "12"}
    post_call(client, bad)
    post_list(client, {"contacts": [bad]})
    body = json.dumps(bad).encode()
    signed = standard_webhooks_headers("msg_refused", body, time.time())
    assert client.http.post("/hooks/webhooks-demo", headers=signed, body=body).status_code == 422
    forged = {**signed, "webhook-signature": "v1,Zm9yZ2Vk"}
    assert client.http.post("/hooks/webhooks-demo", headers=forged, body=body).status_code == 401
    assert run_batch(client, [("message-1", bad)]) == []  # stored as rejected, not retried
    rejected = [m for m in emitted(capsys.readouterr().out) if m["name"] == "CallsRejected"]
    assert [m["reason"] for m in rejected] == ["validation_failed"] * 4

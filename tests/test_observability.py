"""What an operator sees: EMF metrics and JSON logs with the keys that find a call."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from chalice.test import Client

from local.fuse_sim import FuseSimulator
from tests.helpers import CONTACTS, FUSE_EXAMPLE, PHONE, deliver, post_call, post_list


def emitted(out: str) -> list[dict[str, Any]]:
    """Every EMF metric line printed: {"name", "value", and its dimensions}."""
    metrics = []
    for line in out.splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        record = json.loads(line)
        for directive in record["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == "FuseBridge"
            for metric in directive["Metrics"]:
                dimensions = {d: record[d] for group in directive["Dimensions"] for d in group}
                metrics.append(
                    {"name": metric["Name"], "value": record[metric["Name"]], **dimensions}
                )
    return metrics


def test_each_outcome_is_counted(
    client: Client, fuse: FuseSimulator, capsys: pytest.CaptureFixture[str]
) -> None:
    call_id = json.loads(post_call(client, {"phone": PHONE}).body)["id"]
    post_call(client, {"phone": "12"})
    fuse.mode = "error500"
    post_call(client, {"phone": PHONE})
    fuse.mode = "normal"
    deliver(client, call_id, FUSE_EXAMPLE)
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

"""Cancelling a campaign's pending calls: admin only, one Fuse request, calls read the news."""

from __future__ import annotations

import json
import time

import requests
from chalice.test import Client

from chalicelib.config.dependencies import Dependencies
from local.fuse_sim import FuseSimulator
from tests.helpers import (
    ADMIN_TOKEN,
    API_TOKEN,
    DEVELOPER_KEY,
    FUSE_EMAIL,
    FUSE_EXAMPLE,
    PHONE,
    error_of,
    post_callback,
    queue,
    read_call,
)


def cancel(client: Client, campaign: str = "default", token: str | None = ADMIN_TOKEN) -> object:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.http.delete(f"/campaigns/{campaign}/pending", headers=headers)


def test_only_an_admin_token_may_cancel(client: Client, fuse: FuseSimulator) -> None:
    refused = cancel(client, token=API_TOKEN)
    assert refused.status_code == 403
    assert error_of(refused)["code"] == "forbidden"
    assert cancel(client, token=None).status_code == 401
    assert cancel(client, token="nope").status_code == 401
    assert [r for r in fuse.received if r.method == "DELETE"] == []


def test_cancel_asks_fuse_once_and_queued_calls_read_cancel_requested(
    client: Client, deps: Dependencies, fuse: FuseSimulator
) -> None:
    base = time.time()
    deps.clock = lambda: base
    before = queue(client)
    other_campaign = queue(client, campaign="reminders", caller_id="+16175550199")
    answer = cancel(client)
    assert answer.status_code == 202
    body = json.loads(answer.body)
    assert body["campaign"] == "default"
    assert body["status"] == "cancel_requested"
    [sent] = [r for r in fuse.received if r.method == "DELETE"]
    assert sent.path == "/api/apps/101/201/cancel"
    deps.clock = lambda: base + 1
    after = queue(client)
    assert read_call(client, before)["status"] == "cancel_requested"
    assert read_call(client, other_campaign)["status"] == "queued"
    assert read_call(client, after)["status"] == "queued"
    post_callback(client, before, {**FUSE_EXAMPLE, "status": "canceled"})
    assert read_call(client, before)["status"] == "canceled"


def test_an_unknown_campaign_is_404_naming_the_configured_ones(client: Client) -> None:
    answer = cancel(client, "summer")
    assert answer.status_code == 404
    assert "default, reminders, retired" in error_of(answer)["message"]


def test_fuse_down_is_503_and_nothing_is_marked(client: Client, fuse: FuseSimulator) -> None:
    call_id = queue(client)
    fuse.mode = "error500"
    answer = cancel(client)
    assert answer.status_code == 503
    assert error_of(answer)["code"] == "fuse_unavailable"
    fuse.mode = "normal"
    assert read_call(client, call_id)["status"] == "queued"


def test_the_simulator_cancels_pending_calls_of_that_deployment(fuse: FuseSimulator) -> None:
    fuse.callback_delay = 3600
    auth = (FUSE_EMAIL, DEVELOPER_KEY)
    phone = {"phone_number": (None, PHONE)}
    one = requests.post(f"{fuse.url}/apps/101/201/queue", files=phone, auth=auth, timeout=5)
    two = requests.post(f"{fuse.url}/apps/102/202/queue", files=phone, auth=auth, timeout=5)
    answer = requests.delete(f"{fuse.url}/apps/101/201/cancel", auth=auth, timeout=5)
    assert answer.status_code == 202
    assert answer.content == b""

    def status(call_id: str) -> str:
        body = requests.get(f"{fuse.url}/outbound/{call_id}", auth=auth, timeout=5).json()
        return body["call_details"]["status"]

    assert status(one.json()["call_id"]) == "canceled"
    assert status(two.json()["call_id"]) == "queued"

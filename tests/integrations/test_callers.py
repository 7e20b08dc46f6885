"""Who calls: each integration sees only its own calls and lists, its keys and campaigns are
its own, and one misconfigured is out of service alone."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from chalice.test import Client

from infra.parameters import put_parameters
from local.demo import standard_webhooks_headers
from local.fuse_sim import FuseSimulator
from tests.helpers import (
    ADMIN_TOKEN,
    API_TOKEN,
    CALLER_ID,
    PHONE,
    PREFIX,
    A,
    Aws,
    B,
    bearer,
    error_of,
    get,
    post_call,
)


# --- scope -----------------------------------------------------------------------------------
@pytest.mark.usefixtures("crm")
def test_an_integration_sees_only_its_own_calls_and_lists(
    client: Client, fuse: FuseSimulator
) -> None:
    mine = json.loads(post_call(client, {"phone": PHONE, "reference": "lead-1"}, token=A).body)
    for token in (B, API_TOKEN):  # another integration, and `default`
        hidden = get(client, f"/calls/{mine['id']}", token)
        assert (hidden.status_code, error_of(hidden)["code"]) == (404, "not_found")
        assert json.loads(get(client, "/calls?reference=lead-1", token).body)["calls"] == []
    for token in (A, ADMIN_TOKEN):
        assert get(client, f"/calls/{mine['id']}", token).status_code == 200
        assert len(json.loads(get(client, "/calls?reference=lead-1", token).body)["calls"]) == 1
    batch = json.loads(
        client.http.post(
            "/calls/bulk", headers=bearer(A), body=json.dumps({"contacts": [{"phone": PHONE}]})
        ).body
    )
    assert get(client, f"/batches/{batch['batch_id']}", B).status_code == 404
    assert get(client, f"/batches/{batch['batch_id']}", A).status_code == 200
    assert get(client, f"/calls/{batch['calls'][0]['id']}", B).status_code == 404


@pytest.mark.usefixtures("crm")
def test_idempotency_keys_are_each_integrations_own(client: Client, fuse: FuseSimulator) -> None:
    body = {"phone": PHONE}
    first_a = json.loads(post_call(client, body, key="lead-7", token=A).body)
    first_b = json.loads(post_call(client, body, key="lead-7", token=B).body)
    again_a = post_call(client, body, key="lead-7", token=A)
    assert first_a["id"] != first_b["id"]
    assert json.loads(again_a.body)["id"] == first_a["id"]
    assert again_a.headers["Idempotent-Replayed"] == "true"
    assert len(fuse.queue_requests()) == 2


@pytest.mark.usefixtures("crm")
def test_a_campaign_outside_the_integrations_list_is_refused_by_name(
    client: Client, fuse: FuseSimulator
) -> None:
    other = {"phone": PHONE, "campaign": "reminders", "caller_id": CALLER_ID}
    refused = post_call(client, other, token=A)
    assert refused.status_code == 403
    assert error_of(refused)["code"] == "campaign_not_allowed"
    assert "reminders" in error_of(refused)["message"]
    listed = client.http.post(
        "/calls/bulk",
        headers=bearer(A),
        body=json.dumps(
            {"contacts": [{"phone": PHONE}], "campaign": "reminders", "caller_id": CALLER_ID}
        ),
    )
    assert error_of(listed)["code"] == "campaign_not_allowed"
    assert fuse.queue_requests() == []
    assert post_call(client, other, token=B).status_code == 202  # B may use every campaign


@pytest.mark.usefixtures("crm")
def test_a_misconfigured_integration_is_logged_and_the_others_work(
    client: Client, bridge_logs: Any
) -> None:
    assert post_call(client, {"phone": PHONE}, token=B).status_code == 202
    assert "integrations/broken/auth" in bridge_logs.getvalue()


@pytest.mark.usefixtures("crm")
def test_callers_learn_only_their_own_campaigns(
    aws: Aws, client: Client, fuse: FuseSimulator
) -> None:
    """Permission before configuration: another integration's campaign, even a half-written
    one, is refused by name (403), and an unknown one lists only the caller's own; no SSM path
    and no other campaign's name is told."""
    put_parameters(
        aws.ssm,
        PREFIX,
        {
            "integrations/crm-a/campaigns": "default,ghost",
            "campaigns/halfway/application_id": "301",  # no deployment_id: half-written
        },
    )
    for name in ("reminders", "halfway", "nope"):
        refused = post_call(client, {"phone": PHONE, "campaign": name}, token=A)
        assert (refused.status_code, error_of(refused)["code"]) == (403, "campaign_not_allowed")
        assert b"SSM" not in refused.body
        assert b"retired" not in refused.body
    unknown = post_call(client, {"phone": PHONE, "campaign": "ghost"}, token=A)
    assert (unknown.status_code, error_of(unknown)["code"]) == (422, "validation_failed")
    told = error_of(unknown)["details"][0]["message"]
    assert "default" in told
    assert "reminders" not in told
    assert "retired" not in told
    assert fuse.queue_requests() == []


def test_a_signed_integration_reads_its_own_calls_with_a_read_token(
    aws: Aws, client: Client, fuse: FuseSimulator
) -> None:
    """A HubSpot or Standard Webhooks integration places calls by its signed webhooks; its
    `token` is a read token: GET routes only, its own calls only."""
    put_parameters(aws.ssm, PREFIX, {"integrations/webhooks-demo/token": "sw-read-token"})
    body = json.dumps({"phone": PHONE, "reference": "sw-read"}).encode()
    signed = standard_webhooks_headers("msg_read_1", body, time.time())
    placed = json.loads(client.http.post("/hooks/webhooks-demo", headers=signed, body=body).body)
    assert get(client, f"/calls/{placed['id']}", "sw-read-token").status_code == 200
    listed = json.loads(get(client, "/calls?reference=sw-read", "sw-read-token").body)
    assert [c["id"] for c in listed["calls"]] == [placed["id"]]
    mine = json.loads(post_call(client, {"phone": PHONE, "reference": "sw-read"}).body)
    assert get(client, f"/calls/{mine['id']}", "sw-read-token").status_code == 404  # default's
    refused = post_call(client, {"phone": PHONE}, token="sw-read-token")
    assert refused.status_code == 401  # a read token places nothing

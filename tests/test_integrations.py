"""Integrations: each CRM its own credentials, scope and campaigns, and its own webhook shape on
POST /hooks/{name}, signed its own way, with no code of its own."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import pytest
from chalice.test import Client
from standardwebhooks.webhooks import Webhook

from chalicelib.config.dependencies import Dependencies
from chalicelib.config.integrations import parse_integrations
from chalicelib.integrations.signatures import HookRequest, hubspot_v3, standard_webhooks
from infra.parameters import put_parameters
from local.demo import WEBHOOKS_SECRET, hubspot_headers
from local.fuse_sim import FuseSimulator
from tests.helpers import (
    ADMIN_TOKEN,
    API_TOKEN,
    CALLER_ID,
    PHONE,
    PREFIX,
    PUBLIC_BASE_URL,
    Aws,
    error_of,
    later,
    post_call,
)

A, B = "crm-a-token", "crm-b-token"
CRM_PARAMETERS = {
    "integrations/crm-a/token": A,
    "integrations/crm-a/campaigns": "default",
    "integrations/crm-b/token": B,
    "integrations/form-tool/auth": "query",
    "integrations/form-tool/token": "form-tool-token",
    "integrations/broken/auth": "carrier-pigeon",
}
# HubSpot's workflow "Send a webhook" action posts the enrolled record: its id and properties.
HUBSPOT_BODY = {
    "objectId": 1501,
    "properties": {"phone": "+16175551234", "firstname": "Ada", "email": "ada@example.com"},
}


@pytest.fixture
def crm(aws: Aws) -> None:
    put_parameters(aws.ssm, PREFIX, CRM_PARAMETERS)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def get(client: Client, path: str, token: str) -> Any:
    return client.http.get(path, headers=bearer(token))


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
def test_unknown_integrations_and_bad_credentials_get_the_same_401(client: Client) -> None:
    answers = [
        client.http.post(path, headers=bearer(token), body=json.dumps({"phone": PHONE}))
        for path, token in [
            ("/hooks/crm-a", "wrong"),
            ("/hooks/nobody", A),
            ("/hooks/broken", A),  # misconfigured: out of service
            ("/hooks/NOT%20A%20NAME", A),
        ]
    ]
    assert {a.status_code for a in answers} == {401}
    assert len({a.body for a in answers}) == 1
    assert b"SSM" not in answers[0].body


@pytest.mark.usefixtures("crm")
def test_a_misconfigured_integration_is_logged_and_the_others_work(
    client: Client, bridge_logs: Any
) -> None:
    assert post_call(client, {"phone": PHONE}, token=B).status_code == 202
    assert "integrations/broken/auth" in bridge_logs.getvalue()


# --- native webhooks -------------------------------------------------------------------------
def test_hubspots_published_v3_example_verifies() -> None:
    """HubSpot's own example (hubspot-api-python, tests/spec/utils/test_signature.py)."""
    request = HookRequest(
        url="https://www.example.com/webhook_uri",
        headers={
            "x-hubspot-signature-v3": "HPW73RUtKmcYoEDADG0s6MmGFWUzWJKAW07r8RDgcQw=",
            "x-hubspot-request-timestamp": "15000000",
        },
        query={},
        body=b"{'example_field':'example_value'}",
    )
    secret = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
    assert hubspot_v3([secret], request, now=15000.0)
    assert not hubspot_v3([secret], request, now=15000.0 + 301)  # older than five minutes
    assert not hubspot_v3(["another-secret"], request, now=15000.0)


def test_the_standard_webhooks_specifications_vector_verifies() -> None:
    """The specification's reference library's signing vector (libraries/python tests)."""
    request = HookRequest(
        url="",
        headers={
            "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "webhook-timestamp": "1614265330",
            "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        },
        query={},
        body=b'{"test": 2432232314}',
    )
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    assert standard_webhooks([secret], request, now=1614265330)
    assert standard_webhooks(["whsec_b2xkLXNlY3JldA==", secret], request, now=1614265330)
    assert not standard_webhooks([secret], request, now=1614265330 + 301)
    tampered = HookRequest(request.url, request.headers, {}, b'{"test": 2432232315}')
    assert not standard_webhooks([secret], tampered, now=1614265330)


def test_a_hubspot_workflow_webhook_places_one_call_and_its_retries_none(
    client: Client, fuse: FuseSimulator
) -> None:
    body = json.dumps(HUBSPOT_BODY).encode()
    url = f"{PUBLIC_BASE_URL}/hooks/hubspot-demo"
    first = client.http.post(
        "/hooks/hubspot-demo", headers=hubspot_headers(url, body, time.time()), body=body
    )
    assert first.status_code == 202, first.body
    call = json.loads(first.body)
    assert call["reference"] == "hs-1501"
    retried = client.http.post(
        "/hooks/hubspot-demo", headers=hubspot_headers(url, body, time.time()), body=body
    )
    assert json.loads(retried.body)["id"] == call["id"]  # HubSpot cannot send a key: the body is
    assert len(fuse.queue_requests()) == 1
    read = json.loads(get(client, f"/calls/{call['id']}", ADMIN_TOKEN).body)
    assert read["request"]["variables"] == {"first_name": "Ada"}
    forged = hubspot_headers(url, body, time.time(), secret="not-the-client-secret")
    assert client.http.post("/hooks/hubspot-demo", headers=forged, body=body).status_code == 401
    stale = hubspot_headers(url, body, time.time() - 400)
    assert client.http.post("/hooks/hubspot-demo", headers=stale, body=body).status_code == 401


def test_a_mapped_field_that_fails_names_the_expression(client: Client) -> None:
    body = json.dumps({"objectId": 7, "properties": {"firstname": "Ada"}}).encode()
    url = f"{PUBLIC_BASE_URL}/hooks/hubspot-demo"
    answer = client.http.post(
        "/hooks/hubspot-demo", headers=hubspot_headers(url, body, time.time()), body=body
    )
    assert answer.status_code == 422
    fields = [d["field"] for d in error_of(answer)["details"]]
    assert "phone (from properties.phone)" in fields


def test_the_same_body_after_the_dedup_window_is_a_new_call(
    client: Client, deps: Dependencies, fuse: FuseSimulator
) -> None:
    body = json.dumps({**HUBSPOT_BODY, "objectId": 1502}).encode()
    url = f"{PUBLIC_BASE_URL}/hooks/hubspot-demo"
    first = client.http.post(
        "/hooks/hubspot-demo", headers=hubspot_headers(url, body, time.time()), body=body
    )
    later(deps, deps.settings.dedup_window_seconds + 1)
    headers = hubspot_headers(url, body, deps.clock())
    second = client.http.post("/hooks/hubspot-demo", headers=headers, body=body)
    assert second.status_code == 202, second.body
    assert json.loads(second.body)["id"] != json.loads(first.body)["id"]
    assert len(fuse.queue_requests()) == 2


def standard_headers(body: str, message_id: str, secret: str = WEBHOOKS_SECRET) -> dict:
    """Signed by the specification's reference library: an implementation not ours."""
    now = datetime.now(tz=UTC)
    signature = Webhook(secret).sign(msg_id=message_id, timestamp=now, data=body)
    return {
        "Content-Type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }


def test_a_standard_webhooks_sender_is_deduplicated_by_its_webhook_id(
    client: Client, fuse: FuseSimulator
) -> None:
    body = json.dumps({"phone": PHONE, "reference": "sw-1"})
    first = client.http.post(
        "/hooks/webhooks-demo", headers=standard_headers(body, "msg_1"), body=body
    )
    assert first.status_code == 202, first.body
    again = client.http.post(
        "/hooks/webhooks-demo", headers=standard_headers(body, "msg_1"), body=body
    )
    assert json.loads(again.body)["id"] == json.loads(first.body)["id"]
    other = client.http.post(
        "/hooks/webhooks-demo", headers=standard_headers(body, "msg_2"), body=body
    )
    assert json.loads(other.body)["id"] != json.loads(first.body)["id"]
    assert len(fuse.queue_requests()) == 2
    wrong = standard_headers(body, "msg_3", secret="whsec_" + base64.b64encode(b"x" * 24).decode())
    assert client.http.post("/hooks/webhooks-demo", headers=wrong, body=body).status_code == 401


@pytest.mark.usefixtures("crm")
def test_a_form_post_with_its_token_in_the_query_reads_strings_strictly(
    client: Client, fuse: FuseSimulator
) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    fields = {
        "phone": PHONE,
        "attempts": "2",
        "retry_delay": "600",
        "pci": "true",
        "variables[name]": "Ada",
    }
    placed = client.http.post(
        "/hooks/form-tool?api_key=form-tool-token", headers=form, body=urlencode(fields)
    )
    assert placed.status_code == 202, placed.body
    request = json.loads(get(client, f"/calls/{json.loads(placed.body)['id']}", ADMIN_TOKEN).body)
    assert (request["request"]["attempts"], request["request"]["pci"]) == (2, True)
    assert request["request"]["variables"] == {"name": "Ada"}
    for bad in ({"attempts": "3.5"}, {"pci": "yes"}):
        refused = client.http.post(
            "/hooks/form-tool?api_key=form-tool-token",
            headers=form,
            body=urlencode({**fields, **bad}),
        )
        assert refused.status_code == 422, refused.body
        assert [d["field"] for d in error_of(refused)["details"]] == list(bad)
    twice = "/hooks/form-tool?api_key=form-tool-token&api_key=form-tool-token"
    assert client.http.post(twice, headers=form, body=urlencode(fields)).status_code == 401


def test_a_repeated_query_parameter_is_refused_not_guessed(client: Client) -> None:
    answer = client.http.get("/calls?reference=a&reference=b", headers=bearer(API_TOKEN))
    assert (answer.status_code, error_of(answer)["code"]) == (400, "invalid_query")


def test_integrations_are_read_from_ssm_names_alone() -> None:
    parsed = parse_integrations(
        {
            "integrations/hs/auth": "hubspot-v3",
            "integrations/hs/signing_secret": "one, two",
            "integrations/hs/mapping": '{"phone": "properties.phone"}',
            "integrations/bad-map/token": "t",
            "integrations/bad-map/mapping": '{"phone": "properties.["}',
            "integrations/bad-field/token": "t",
            "integrations/bad-field/mapping": '{"telephone": "phone"}',
            "integrations/sw/auth": "standard-webhooks",
            "integrations/sw/signing_secret": "whsec_not base64!",
        },
        PREFIX,
        api_tokens=("t1",),
    )
    assert parsed["hs"].signing_secrets == ("one", "two")
    assert parsed["hs"].problem is None
    assert parsed["default"].tokens == ("t1",)
    assert "valid JMESPath" in parsed["bad-map"].problem
    assert "telephone" in parsed["bad-field"].problem
    assert "whsec_" in parsed["sw"].problem
    assert "one" not in repr(parsed["hs"])  # secrets are never printed
    no_tokens = parse_integrations({}, PREFIX, api_tokens=())["default"]
    assert no_tokens.problem is not None
    assert f"{PREFIX}/api_tokens" in no_tokens.problem  # the parameter to set, by its name


@pytest.mark.usefixtures("crm")
def test_a_missing_public_url_is_told_only_to_an_authenticated_sender(
    client: Client, deps: Dependencies
) -> None:
    """Without PUBLIC_BASE_URL (and outside API Gateway, which gives its own address), a
    stranger still gets the plain 401; only a genuine sender learns what to fix."""
    deps.settings = replace(deps.settings, public_base_url="")
    body = json.dumps({"phone": PHONE})
    stranger = client.http.post("/hooks/crm-a", headers=bearer("wrong"), body=body)
    assert (stranger.status_code, error_of(stranger)["code"]) == (401, "unauthorized")
    sender = client.http.post("/hooks/crm-a", headers=bearer(A), body=body)
    assert (sender.status_code, error_of(sender)["code"]) == (500, "configuration_incomplete")

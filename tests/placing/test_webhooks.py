"""Integrations: each CRM its own credentials, scope and campaigns, and its own webhook shape on
POST /hooks/{name}, signed its own way, with no code of its own."""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from chalice.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook

from chalicelib.config.dependencies import Dependencies
from chalicelib.config.settings import load_settings
from local.demo import WEBHOOKS_SECRET, hubspot_headers
from local.fuse_sim import FuseSimulator
from tests.helpers import (
    ADMIN_TOKEN,
    API_TOKEN,
    HUBSPOT_BODY,
    PHONE,
    PUBLIC_BASE_URL,
    A,
    bearer,
    bridge_environment,
    error_of,
    get,
    later,
)


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


# --- issue 19: keys from signed material only; markers that outlive nothing ------------------
KEYS = st.from_regex(r"[\x21-\x7e]{1,40}", fullmatch=True)


@settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(keys=st.lists(KEYS, min_size=2, max_size=4, unique=True), hubspot=st.booleans())
def test_a_replayed_signed_webhook_dials_once_whatever_its_unsigned_key(
    client: Client, fuse: FuseSimulator, keys: list[str], hubspot: bool
) -> None:
    """A signed webhook replayed within its signature's tolerance with a fresh Idempotency-Key
    each time: the header is not signed, so it cannot make a new call."""
    fuse.reset()
    unique = uuid.uuid4().hex  # each example its own webhook
    if hubspot:
        body = json.dumps({**HUBSPOT_BODY, "objectId": unique}).encode()
        url, path = f"{PUBLIC_BASE_URL}/hooks/hubspot-demo", "/hooks/hubspot-demo"
        signed = hubspot_headers(url, body, time.time())
    else:
        body = json.dumps({"phone": PHONE, "reference": unique}).encode()
        path = "/hooks/webhooks-demo"
        signed = standard_headers(body.decode(), f"msg_{unique}")
    answers = [
        client.http.post(path, headers={**signed, "Idempotency-Key": key}, body=body)
        for key in keys
    ]
    assert {a.status_code for a in answers} == {202}, [a.body for a in answers]
    assert len({json.loads(a.body)["id"] for a in answers}) == 1
    assert len(fuse.queue_requests()) == 1


@pytest.mark.usefixtures("crm")
def test_an_unsigned_sender_may_still_set_the_key_by_header(
    client: Client, fuse: FuseSimulator
) -> None:
    """A token authenticates the whole request: its header is the caller's, as on /calls."""
    body = json.dumps({"phone": PHONE})
    first = client.http.post(
        "/hooks/crm-a", headers={**bearer(A), "Idempotency-Key": "1"}, body=body
    )
    other = client.http.post(
        "/hooks/crm-a", headers={**bearer(A), "Idempotency-Key": "2"}, body=body
    )
    assert json.loads(first.body)["id"] != json.loads(other.body)["id"]
    assert len(fuse.queue_requests()) == 2


def test_a_keyless_webhook_whose_call_is_unknown_is_never_placed_again(
    client: Client, deps: Dependencies, fuse: FuseSimulator
) -> None:
    """Fuse's answer is lost: the sender is answered 2xx (so HubSpot does not retry for three
    days), and a retry long past the dedup window still names the same call, since the call
    it named is still unknown: the marker never lapses under an open call."""
    fuse.mode = "hang"
    body = json.dumps({**HUBSPOT_BODY, "objectId": 1503}).encode()
    url = f"{PUBLIC_BASE_URL}/hooks/hubspot-demo"
    first = client.http.post(
        "/hooks/hubspot-demo", headers=hubspot_headers(url, body, time.time()), body=body
    )
    fuse.mode = "normal"
    assert first.status_code == 202, first.body
    answer = json.loads(first.body)
    assert answer["status"] == "unknown"
    assert answer["error"]["code"] == "fuse_outcome_unknown"
    assert "Retry-After" not in first.headers
    later(deps, deps.settings.dedup_window_seconds + 3600)
    retried = client.http.post(
        "/hooks/hubspot-demo", headers=hubspot_headers(url, body, deps.clock()), body=body
    )
    assert retried.status_code == 202
    assert json.loads(retried.body)["id"] == answer["id"]
    assert len(fuse.queue_requests()) == 1  # the hung one: never again


def test_the_dedup_window_covers_the_senders_retry_horizons() -> None:
    settings_ = load_settings(bridge_environment("http://127.0.0.1:1"))
    assert settings_.dedup_window_seconds >= 3 * 86400  # HubSpot retries for three days
    # A call kept less long than the window would be gone for a retry within it: placed again.
    short = load_settings(bridge_environment("http://127.0.0.1:1", RETENTION_DAYS="1"))
    assert short.retention_days * 86400 >= short.dedup_window_seconds


@pytest.mark.usefixtures("crm")
@pytest.mark.parametrize(
    ("twice", "again"),
    [
        ("phone", "phone"),
        ("variables[name]", "variables[name]"),
        ("reference", "reference"),
        ("phone", "phone[x]"),  # PHP would make `phone` an object: which was meant?
        ("variables[name]", "variables"),
        ("variables[name]", "variables[name][first]"),
        ("tags[]", "tags[0]"),  # `tags[]=a` was tags[0]
    ],
)
def test_a_form_field_given_twice_is_refused_not_guessed(
    client: Client, fuse: FuseSimulator, twice: str, again: str
) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    given = [("phone", PHONE), ("reference", "r"), ("variables[name]", "Ada"), ("tags[]", "a")]
    body = urlencode([*given, (again, "x")])
    refused = client.http.post("/hooks/form-tool?api_key=form-tool-token", headers=form, body=body)
    assert (refused.status_code, error_of(refused)["code"]) == (400, "invalid_form")
    assert twice.split("[", maxsplit=1)[0] in error_of(refused)["message"]
    assert fuse.queue_requests() == []
    listed = urlencode([("phone", PHONE), ("tags[]", "a"), ("tags[]", "b")])
    answer = client.http.post("/hooks/form-tool?api_key=form-tool-token", headers=form, body=listed)
    assert error_of(answer)["code"] != "invalid_form"  # a list's `a[]=` keys are not repeats

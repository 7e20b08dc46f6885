"""How a webhook proves its sender: HubSpot's published v3 example, and the same 401 for
every failure."""

from __future__ import annotations

import json

import pytest
from chalice.test import Client
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.integrations.signatures import WebhookRequest, hubspot_v3, hubspot_v3_signature
from tests.helpers import (
    PHONE,
    A,
    bearer,
)


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


# --- native webhooks -------------------------------------------------------------------------
def test_hubspots_published_v3_example_verifies() -> None:
    """HubSpot's own example (hubspot-api-python, tests/spec/utils/test_signature.py)."""
    request = WebhookRequest(
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


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    body=st.from_regex(rb"phone=[0-9]{4,12}", fullmatch=True),
    zeros=st.integers(min_value=1, max_value=3),
    moved=st.integers(min_value=1, max_value=3),
)
def test_digits_of_the_body_cannot_move_into_a_hubspot_timestamp(
    body: bytes, zeros: int, moved: int
) -> None:
    """HubSpot signs body + timestamp with nothing between: were a timestamp with a leading zero
    read, a body's trailing zeros could move into it and the signature still verify."""
    secret, url, now = "client-secret", "https://bridge.example.test/api/hooks/hs", 1_800_000_000.0
    signed_body = body + b"0" * zeros
    timestamp = str(int(now * 1000))
    signature = hubspot_v3_signature(secret, url, signed_body, timestamp).decode()

    def request(raw: bytes, ts: str) -> WebhookRequest:
        headers = {"x-hubspot-signature-v3": signature, "x-hubspot-request-timestamp": ts}
        return WebhookRequest(url=url, headers=headers, query={}, body=raw)

    assert hubspot_v3([secret], request(signed_body, timestamp), now)
    shift = min(moved, zeros)
    shifted = request(signed_body[:-shift], "0" * shift + timestamp)
    assert not hubspot_v3([secret], shifted, now)
    assert not hubspot_v3([secret], request(signed_body, "+" + timestamp), now)

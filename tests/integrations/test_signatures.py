"""How a webhook proves its sender: HubSpot's published v3 example, and the same 401 for
every failure."""

from __future__ import annotations

import json

import pytest
from chalice.test import Client

from chalicelib.integrations.signatures import WebhookRequest, hubspot_v3
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

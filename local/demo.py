"""The one set of demo values: `make local`, the tests and the bench all use it, and the Fuse
simulator accepts exactly these credentials and deployments.

Every secret is a distinctive string, so a test can prove none of them ever shows in a log line
or an answer.
"""

from __future__ import annotations

import json

from chalicelib.http.standard_webhooks import StandardWebhooks

FUSE_EMAIL = "demo@example.com"
DEVELOPER_KEY = "local-developer-key"
CALLBACK_SECRET = "local-callback-secret"
ID_SECRET = "local-id-secret"
API_TOKEN = "local-dev-token"
ADMIN_TOKEN = "local-admin-token"
CALLER_ID = "+16175550100"
# Two demo integrations with their own webhook shapes (docs/integrations.md): a HubSpot workflow
# "Send a webhook" action signed with v3, and a Standard Webhooks sender.
HUBSPOT_SECRET = "local-hubspot-client-secret"
WEBHOOKS_SECRET = "whsec_bG9jYWwtc3RhbmRhcmQtd2ViaG9va3Mtc2VjcmV0"  # base64 of a demo phrase
# What the demo integrations' results are signed with (the demo receiver checks it).
RESULTS_SECRET = "whsec_bG9jYWwtcmVzdWx0cy1yZWNlaXZlci1zZWNyZXQ="
HUBSPOT_MAPPING = {
    "phone": "properties.phone",
    "reference": "join('-', ['hs', to_string(objectId)])",
    "variables": "{first_name: properties.firstname}",
}
# The Fuse deployments the simulator has; `retired` names one it does not (Fuse answers 404).
DEPLOYMENTS = (("101", "201"), ("102", "202"))


# A HubSpot workflow "Send a webhook" body: the enrolled record's id and properties.
HUBSPOT_SAMPLE = {
    "objectId": 1501,
    "properties": {"phone": "+16175551234", "firstname": "Ada", "email": "ada@example.com"},
}
WEBHOOKS_SAMPLE = {"phone": "+16175551234", "reference": "sw-42"}


def hubspot_headers(
    url: str, body: bytes, now: float, secret: str = HUBSPOT_SECRET
) -> dict[str, str]:
    """HubSpot's v3 signature for a POST of `body` to `url` at `now` (the bridge's own, checked
    against HubSpot's published example in tests/integrations/test_signatures.py)."""
    # Imported here: the bench's cold start imports these demo values, and a cold POST /calls
    # does not load the webhook signatures.
    from chalicelib.integrations.signatures import hubspot_v3_signature  # noqa: PLC0415

    timestamp = str(int(now * 1000))
    return {
        "Content-Type": "application/json",
        "X-HubSpot-Signature-v3": hubspot_v3_signature(secret, url, body, timestamp).decode(),
        "X-HubSpot-Request-Timestamp": timestamp,
    }


def standard_webhooks_headers(message_id: str, body: bytes, now: float) -> dict[str, str]:
    """A Standard Webhooks signature of `body` with the demo secret (the bridge's own signer,
    checked against the specification's reference library in tests/http/)."""
    signer = StandardWebhooks.of([WEBHOOKS_SECRET])
    if signer is None:
        raise ValueError("WEBHOOKS_SECRET must be whsec_ and base64")
    return {"Content-Type": "application/json", **signer.headers(message_id, body, now)}


def demo_results(receiver_url: str) -> dict[str, str]:
    """The demo integrations deliver their results to the demo receiver at `receiver_url`."""
    return {
        f"integrations/{name}/{parameter}": value
        for name in ("hubspot-demo", "webhooks-demo", "salesforce-demo")
        for parameter, value in (("results_url", receiver_url), ("results_secret", RESULTS_SECRET))
    }


def demo_parameters(api_tokens: str = API_TOKEN, admin_tokens: str = ADMIN_TOKEN) -> dict[str, str]:
    """The SSM parameters of a demo stage, names relative to its prefix."""
    return {
        "fuse/email": FUSE_EMAIL,
        "fuse/developer_key": DEVELOPER_KEY,
        "campaigns/default/application_id": "101",
        "campaigns/default/deployment_id": "201",
        "campaigns/default/caller_id": CALLER_ID,
        # no caller id of its own: a request must bring one
        "campaigns/reminders/application_id": "102",
        "campaigns/reminders/deployment_id": "202",
        "campaigns/retired/application_id": "999",
        "campaigns/retired/deployment_id": "999",
        "campaigns/retired/caller_id": CALLER_ID,
        "callback_secret": CALLBACK_SECRET,
        "id_secret": ID_SECRET,
        "api_tokens": api_tokens,
        "admin_tokens": admin_tokens,
        "integrations/hubspot-demo/auth": "hubspot-v3",
        "integrations/hubspot-demo/signing_secret": HUBSPOT_SECRET,
        "integrations/hubspot-demo/mapping": json.dumps(HUBSPOT_MAPPING),
        "integrations/webhooks-demo/auth": "standard-webhooks",
        "integrations/webhooks-demo/signing_secret": WEBHOOKS_SECRET,
    }

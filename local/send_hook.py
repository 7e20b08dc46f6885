"""Sends a demo integration's webhook, freshly signed, to the local bridge, as the CRM would.

    .venv/bin/python -m local.send_hook hubspot-demo      # HubSpot's shape, v3 signature
    .venv/bin/python -m local.send_hook webhooks-demo     # Standard Webhooks
    .venv/bin/python -m local.send_hook salesforce-demo   # a Salesforce outbound message (SOAP)

Signatures hold a timestamp and are refused after five minutes, so each run signs anew. Run it
twice: the second is the first answer again (a retried webhook never rings twice).
`make local` must be running.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request

from local.demo import HUBSPOT_SAMPLE, WEBHOOKS_SAMPLE, hubspot_headers, standard_webhooks_headers
from local.run import HOST
from local.salesforce_demo import SALESFORCE_TOKEN, salesforce_message

SOAP_HEADERS = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'}


def signed_request(name: str, bridge: str, now: float) -> tuple[str, bytes, dict[str, str]]:
    url = f"{bridge}/hooks/{name}"
    if name == "hubspot-demo":
        body = json.dumps(HUBSPOT_SAMPLE).encode()
        return url, body, hubspot_headers(url, body, now)
    if name == "webhooks-demo":
        body = json.dumps(WEBHOOKS_SAMPLE).encode()
        return url, body, standard_webhooks_headers("msg_demo_42", body, now)
    if name == "salesforce-demo":  # not signed: a token in the URL, the org id in the body
        return f"{url}?api_key={SALESFORCE_TOKEN}", salesforce_message(), SOAP_HEADERS
    sys.exit(__doc__)


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    bridge = f"http://{HOST}:{os.environ.get('BRIDGE_PORT', '8000')}"
    url, body, headers = signed_request(sys.argv[1], bridge, time.time())
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - our own URL
            print(answer.status, answer.read().decode())
    except urllib.error.HTTPError as refused:
        print(refused.code, refused.read().decode())


if __name__ == "__main__":
    main()

"""Secrets, tokens and full phone numbers never appear in a log line, an answer or an error."""

from __future__ import annotations

import io
import json
import logging
import time
from typing import Any

import pytest
from chalice.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.fuse.callback_urls import callback_token
from chalicelib.logs import serialize
from chalicelib.placing.ids import id_for_key
from local.demo import (
    HUBSPOT_SAMPLE,
    HUBSPOT_SECRET,
    WEBHOOKS_SAMPLE,
    WEBHOOKS_SECRET,
    hubspot_headers,
    standard_webhooks_headers,
)
from local.fuse_sim import FuseSimulator
from local.run import masked_line
from tests.helpers import (
    API_TOKEN,
    CALLBACK_SECRET,
    DEVELOPER_KEY,
    ID_SECRET,
    OTHER_TOKEN,
    PHONE,
    PUBLIC_BASE_URL,
    post_call,
)

PHONES = ["+16175551234", "6175551234", "(617) 555-1234", "+442079460958"]
NEVER_SHOWN = [
    DEVELOPER_KEY,
    CALLBACK_SECRET,
    API_TOKEN,
    OTHER_TOKEN,
    HUBSPOT_SECRET,
    WEBHOOKS_SECRET,
    "6175551234",
    "2079460958",
    "617) 555-1234",
    "6175550199",
]


def test_nothing_secret_in_logs_or_answers_across_every_outcome(
    client: Client,
    fuse: FuseSimulator,
    bridge_logs: io.StringIO,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="fuse-bridge")
    caplog.set_level(logging.INFO)
    answers: list[Any] = []

    def call(body: Any, **kwargs: Any) -> None:
        answers.append(post_call(client, body, **kwargs))

    for phone in PHONES:
        call({"phone": phone, "caller_id": "+16175550199", "reference": "r1"})
    call({"phone": "+1617555123", "caller_id": "617555019"})  # invalid numbers, echoed nowhere
    call({"phone": PHONES[0]}, token=API_TOKEN[:-1])  # a near-miss token
    call({"phone": PHONES[0]}, token=DEVELOPER_KEY)  # a secret used as a token
    for mode in ("error500", "hang", "garbage"):
        fuse.mode = mode
        call({"phone": PHONES[0], "caller_id": "+16175550199"}, key=f"leak-{mode}")
    fuse.mode = "normal"
    fuse.fail_with = (400, "Bad phone_number tel:+16175551234;ani=6175550199")
    call({"phone": PHONES[0], "caller_id": "+16175550199"})
    fuse.fail_with = (401, f"Bad key {DEVELOPER_KEY}")  # even if Fuse echoed the key back
    call({"phone": PHONES[0]})

    # Result callbacks: genuine, forged, and for an unknown id; the token must not be logged.
    queued_id = json.loads(answers[0].body)["id"]
    token = callback_token(queued_id, CALLBACK_SECRET)
    result = {"status": "completed", "phone_number": "'6175551234'"}
    for call_id, query in ((queued_id, token), (queued_id, token[:-2]), ("nope", token)):
        answers.append(
            client.http.post(
                f"/fuse/results/{call_id}?token={query}",
                headers={"Content-Type": "application/json"},
                body=json.dumps(result),
            )
        )
    assert [a.status_code for a in answers[-3:]] == [200, 403, 403]

    # Native webhooks, signed right and wrong: no secret, no signature in what is shown.
    fuse.fail_with = None
    hubspot = json.dumps(HUBSPOT_SAMPLE).encode()
    signed = hubspot_headers(f"{PUBLIC_BASE_URL}/hooks/hubspot-demo", hubspot, time.time())
    webhooks = json.dumps(WEBHOOKS_SAMPLE).encode()
    sw_signed = standard_webhooks_headers("msg_leak", webhooks, time.time())
    for path, headers, body in (
        ("/hooks/hubspot-demo", signed, hubspot),
        ("/hooks/hubspot-demo", {**signed, "X-HubSpot-Request-Timestamp": "1"}, hubspot),
        ("/hooks/webhooks-demo", sw_signed, webhooks),
    ):
        answers.append(client.http.post(path, headers=headers, body=body))
    assert [a.status_code for a in answers[-3:]] == [202, 401, 202]
    never = [*NEVER_SHOWN, signed["X-HubSpot-Signature-v3"], sw_signed["webhook-signature"]]

    shown = bridge_logs.getvalue() + caplog.text
    shown += "".join(str(r.exc_text or "") + r.getMessage() for r in caplog.records)
    for answer in answers:
        shown += answer.body.decode() + json.dumps(dict(answer.headers))
    assert "call queued" in shown  # the logs do carry what helps an operator
    assert "+1*******1234" in shown
    for value in never:
        assert value not in shown, value
    # The callback token for a call is a secret too: it is only ever sent to Fuse.
    assert callback_token(id_for_key(ID_SECRET, "leak-hang"), CALLBACK_SECRET) not in shown
    assert token not in shown
    assert token[:-2] not in shown


NATIONAL = st.integers(min_value=2_000_000, max_value=9_999_999).map(lambda n: f"617{n:07d}")
WRITTEN = st.sampled_from(
    [
        lambda d: d,
        lambda d: f"+1{d}",
        lambda d: f"1-{d[:3]}-{d[3:6]}-{d[6:]}",
        lambda d: f"({d[:3]}) {d[3:6]}.{d[6:]}",
        lambda d: f"lead {d} of 3",
        lambda d: f"{d[:3]}/{d[3:6]}/{d[6:]}",
        lambda d: f"lead_{d[:3]}_{d[3:6]}_{d[6:]}",
    ]
)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(digits=NATIONAL, written=WRITTEN)
def test_the_log_serializer_masks_a_phone_however_it_is_carried(digits: str, written: Any) -> None:
    """As text in any field, as a number, under a list, or nested under an id's own key: a
    phone is masked wherever it sits; an id is whole, and a date stays readable."""
    text = written(digits)
    line = serialize(
        {
            "message": f"refused {text}",
            "reference": text,
            "number": int(digits),
            "numbers": [text, int(digits)],
            "call_id": {"nested": text},  # an id's key shields its own value, not what is under
            "fuse_call_id": "6175551234",  # Fuse's id: whole
            "bulk_id": "ab2345672345ab",  # and the bridge's own ids
            "at": "on 2026-12-01 22:04:40",
            "members": {text: "a call id"},  # a map's names are logged too
            "next_slot_ms": 1796161310778,  # times stay numbers
            "created_at": 1900000000,
            "calls": 400,
        }
    )
    assert digits[3:] not in line
    assert '"fuse_call_id":"6175551234"' in line
    assert '"bulk_id":"ab2345672345ab"' in line
    assert "2026-12-01 22:04:40" in line
    assert '"next_slot_ms":1796161310778' in line
    assert '"created_at":1900000000' in line
    assert '"calls":400' in line


@settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(digits=NATIONAL, written=WRITTEN)
def test_a_phone_in_any_logged_field_is_masked_by_what_it_is(
    client: Client, bridge_logs: io.StringIO, digits: str, written: Any
) -> None:
    """A CRM may use the number itself as a reference, or a campaign named by one, or a key:
    whatever field carries it, the log line shows it masked, and the bridge's own ids stay
    whole."""
    bridge_logs.truncate(0)
    bridge_logs.seek(0)
    text = written(digits)
    answer = post_call(
        client,
        {"phone": PHONE, "reference": text},
        key=f"k-{digits}-{text}"[:200].replace(" ", "_"),
    )
    post_call(client, {"phone": PHONE, "campaign": f"c{digits}"})
    lines = bridge_logs.getvalue()
    assert lines
    assert digits[3:] not in lines  # the subscriber's seven digits, in no field
    call_id = json.loads(answer.body)["id"]
    assert f'"call_id":"{call_id}"' in lines  # an id is whole: its digits are no one's number


@settings(max_examples=50, deadline=None, derandomize=True)
@given(
    name=st.sampled_from(["api_key", "api%5Fkey", "API%5fKEY", "token", "to%6Ben", "x"]),
    value=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=8, max_size=30),
)
def test_the_local_access_log_shows_no_query_value(name: str, value: str) -> None:
    """`make local` passes chalice local's access log on: a query value (an api_key in any
    spelling, a callback's token) never reaches it."""
    line = f'127.0.0.1 - - "POST /hooks/form-tool?a=1&{name}={value} HTTP/1.1" 202 -'
    assert value not in masked_line(line)
    assert "/hooks/form-tool" in masked_line(line)

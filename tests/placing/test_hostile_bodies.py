"""Whatever a caller sends, the answer is deliberate: a 4xx with a stable code, never a 5xx.

Classes, not examples: any bytes, any JSON value, any nesting, any escape, on both placing
routes and on a native webhook. The examples below are the reproduced cases; hypothesis tries
the rest.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from chalice.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.errors import InvalidJson
from chalicelib.validation.json_body import MAX_DEPTH, has_lone_surrogate, nesting_depth, read_json
from tests.helpers import AUTH, PHONE, error_of

ROUTES = ["/calls", "/calls/bulk", "/hooks/default"]  # the last: a native webhook, no mapping
REFUSALS = {400, 409, 413, 415, 422}  # every answer a bad body may get
PROPERTY = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,  # the same examples on every run, so CI is repeatable
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SURROGATES = [
    '{"phone": "+16175551234", "reference": "\\ud800"}',
    '{"phone": "\\udfff"}',
    '{"phone": "+16175551234", "variables": {"\\ud83d": "x"}}',
    '{"phone": "+16175551234", "variables": {"name": "ok \\udc00 then"}}',
    '{"contacts": [{"phone": "+16175551234", "reference": "\\ud800"}]}',
]
DEEP = [
    "[" * 20_000,  # 20 KB of brackets, under every size limit
    "[" * 20_000 + "]" * 20_000,
    '{"phone": "+16175551234", "variables": {"a": ' + "[" * 900 + "]" * 900 + "}}",
    '{"contacts": [' + "{" * 5000 + "}" * 5000 + "]}",
]


def post(client: Client, route: str, raw: bytes) -> Any:
    return client.http.post(route, headers=AUTH, body=raw)


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("body", SURROGATES + DEEP)
def test_lone_surrogates_and_deep_nesting_are_invalid_json(
    client: Client, route: str, body: str
) -> None:
    answer = post(client, route, body.encode())
    assert answer.status_code == 400, answer.body
    assert error_of(answer)["code"] == "invalid_json"


@pytest.mark.parametrize("route", ROUTES)
def test_a_utf16_body_is_refused_as_the_docs_say(client: Client, route: str) -> None:
    answer = post(client, route, json.dumps({"phone": PHONE}).encode("utf-16"))
    assert answer.status_code == 400
    assert "UTF-8" in error_of(answer)["message"]


def test_a_utf8_bom_is_tolerated(client: Client) -> None:
    answer = post(client, "/calls", b"\xef\xbb\xbf" + json.dumps({"phone": PHONE}).encode())
    assert answer.status_code == 202


def test_real_requests_are_far_from_the_nesting_limit() -> None:
    contact = {"phone": PHONE, "variables": {"name": "Ada"}, "reference": "[[{{"}
    # body, contacts, a contact, its variables; the brackets inside a string do not count
    assert nesting_depth(json.dumps({"contacts": [contact]}).encode()) == 4
    assert MAX_DEPTH >= 8 * 4


@PROPERTY
@given(raw=st.binary(max_size=2048))
def test_any_bytes_get_a_deliberate_answer(client: Client, raw: bytes) -> None:
    for route in ROUTES:
        answer = post(client, route, raw)
        assert answer.status_code in REFUSALS | {202}, (route, raw, answer.body)
        if answer.status_code != 202:
            assert error_of(answer)["code"]


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
FIELD_NAMES = st.sampled_from(
    ["phone", "caller_id", "variables", "start_at", "attempts", "retry_delay", "dtmf", "pci",
     "campaign", "reference", "idempotency_key", "contacts", "skip_invalid", "end_at"]
)  # fmt: skip


@PROPERTY
@given(body=st.dictionaries(FIELD_NAMES | st.text(max_size=8), JSON_VALUES, max_size=6))
def test_any_json_object_gets_a_deliberate_answer(client: Client, body: dict) -> None:
    raw = json.dumps(body).encode()  # \\ud800 and the like arrive escaped, as a CRM sends them
    for route in ROUTES:
        answer = post(client, route, raw)
        assert answer.status_code in REFUSALS | {202}, (route, body, answer.body)


@PROPERTY
@given(value=JSON_VALUES, depth=st.integers(min_value=0, max_value=60))
def test_the_reader_refuses_exactly_what_it_cannot_hold(value: Any, depth: int) -> None:
    """Depth above the limit, a lone surrogate or Infinity is InvalidJson; anything else reads
    back."""
    wrapped = value
    for _ in range(depth):
        wrapped = [wrapped]
    raw = json.dumps(wrapped).encode()
    too_deep = nesting_depth(raw) > MAX_DEPTH
    try:
        read = read_json(raw, 1 << 20)
    except InvalidJson:  # Infinity (a float too large) is refused too: it is not JSON
        assert too_deep or has_lone_surrogate(wrapped) or b"Infinity" in raw
    else:
        assert not too_deep
        assert read == wrapped


@pytest.mark.parametrize(
    ("field", "body"),
    [
        ("dtmf", {"phone": PHONE, "dtmf": "123\n"}),
        ("campaign", {"phone": PHONE, "campaign": "default\n"}),
        ("idempotency_key", {"phone": PHONE, "idempotency_key": "key\n"}),
        ("variables.destination\n", {"phone": PHONE, "variables": {"destination\n": "x"}}),
        ("start_at", {"phone": PHONE, "start_at": "²"}),
        ("start_at", {"phone": PHONE, "start_at": "9" * 5000}),
    ],
)
def test_a_trailing_newline_or_a_unicode_digit_is_refused_by_name(
    client: Client, field: str, body: dict
) -> None:
    """`$` accepts a trailing newline: `dtmf: "123\\n"` reached Fuse as `;postd=123\\n`."""
    answer = post(client, "/calls", json.dumps(body).encode())
    assert answer.status_code == 422
    assert field in {d["field"] for d in error_of(answer)["details"]}


def test_a_list_variable_cannot_smuggle_a_csv_header(client: Client) -> None:
    contacts = [{"phone": PHONE, "variables": {"destination\n": "x"}}]
    answer = post(client, "/calls/bulk", json.dumps({"contacts": contacts}).encode())
    assert answer.status_code == 422


FORM_KEYS = st.text(max_size=12) | st.sampled_from(["phone", "attempts", "pci", "variables[a]"])


@PROPERTY
@given(
    pairs=st.lists(st.tuples(FORM_KEYS, st.text(max_size=20)), max_size=8),
    raw=st.binary(max_size=64),
)
def test_any_form_post_to_a_native_webhook_gets_a_deliberate_answer(
    client: Client, pairs: list, raw: bytes
) -> None:
    """Any pairs, any key shape (`a[b][]`, `²`), and any bytes at all, as a form."""
    form = {**AUTH, "Content-Type": "application/x-www-form-urlencoded"}
    for body in ("&".join(f"{quote(k)}={quote(v)}" for k, v in pairs).encode(), raw):
        answer = client.http.post("/hooks/default", headers=form, body=body)
        assert answer.status_code in REFUSALS | {202}, (body, answer.body)

"""The Fuse client's reading of what the docs leave open, and its kept-alive session."""

from __future__ import annotations

from chalice.test import Client

from chalicelib.fuse.responses import call_id_from_link, find_call_id
from chalicelib.logs import mask_digit_runs
from local.fuse_sim import FuseSimulator
from tests.helpers import PHONE, post_call


def test_call_id_is_found_as_a_string_or_a_number_at_the_top_or_nested() -> None:
    assert find_call_id({"call_id": "1475"}) == "1475"
    assert find_call_id({"call_id": 1475}) == "1475"
    assert find_call_id({"call_id": "'1475'"}) == "1475"
    assert find_call_id({"result": {"call_id": "a-1"}}) == "a-1"
    assert find_call_id({"call_id": ""}) is None
    assert find_call_id({"call_id": True}) is None
    assert find_call_id(["1475"]) is None
    assert find_call_id(None) is None


def test_call_id_from_the_link_header() -> None:
    link = '<https://fuse.plumvoice.com/api/outbound/98765>; rel="status"'
    assert call_id_from_link(link) == "98765"
    assert call_id_from_link("<https://fuse.plumvoice.com/api/other>") is None
    assert call_id_from_link(None) is None


def test_phone_numbers_in_fuse_messages_are_masked() -> None:
    assert mask_digit_runs("Invalid phone number 6175551234.") == "Invalid phone number 61…34."
    assert mask_digit_runs("bad number +1 (617) 555-1234 here") == "bad number +1…34 here"
    assert mask_digit_runs("max_attempts must be 1 to 10") == "max_attempts must be 1 to 10"


def test_a_link_header_alone_is_enough(client: Client, fuse: FuseSimulator) -> None:
    fuse.mode = "link_only"
    response = post_call(client, {"phone": PHONE})
    assert response.status_code == 202
    assert response.json_body["fuse_call_id"] == "1001"


def test_warm_requests_share_one_connection_to_fuse(client: Client, fuse: FuseSimulator) -> None:
    for _ in range(5):
        assert post_call(client, {"phone": PHONE}).status_code == 202
    assert len({r.client_port for r in fuse.queue_requests()}) == 1

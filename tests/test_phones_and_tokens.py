"""Phone masking and callback tokens: what keeps numbers and secrets out of logs and URLs."""

from __future__ import annotations

from chalicelib.fuse.callback_urls import callback_token, is_genuine_callback, result_url
from chalicelib.validation.phones import fuse_caller_id, mask_phone


def test_mask_shows_country_and_last_four_only() -> None:
    assert mask_phone("+16175551234") == "+1*******1234"
    assert mask_phone("+442079460958") == "+4*******0958"
    assert mask_phone("+1") == "*******"


def test_fuse_caller_id_is_digits() -> None:
    assert fuse_caller_id("+16175550100") == "6175550100"
    assert fuse_caller_id("+442079460000") == "442079460000"


def test_callback_token_is_an_hmac_of_the_id() -> None:
    token = callback_token("call1", "secret")
    assert token == callback_token("call1", "secret")
    assert token != callback_token("call2", "secret")
    assert token != callback_token("call1", "other")
    assert is_genuine_callback("call1", token, "secret")
    assert not is_genuine_callback("call1", token[:-1] + "A", "secret")
    assert not is_genuine_callback("call2", token, "secret")
    assert "secret" not in token


def test_result_url_shape() -> None:
    url = result_url("https://x.test/api", "abc", "s")
    assert url == f"https://x.test/api/fuse/results/abc?token={callback_token('abc', 's')}"

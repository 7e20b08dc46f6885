"""Callback URLs: the HMAC token that proves a callback genuine, and the URL's shape."""

from __future__ import annotations

from chalicelib.fuse.callback_urls import callback_token, callback_url, is_genuine_callback


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
    url = callback_url("https://x.test/api", "abc", "s")
    assert url == f"https://x.test/api/fuse/results/abc?token={callback_token('abc', 's')}"

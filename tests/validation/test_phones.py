"""Phone masking and callback tokens: what keeps numbers and secrets out of logs and URLs."""

from __future__ import annotations

from chalicelib.validation.phones import fuse_caller_id, mask_phone


def test_mask_shows_country_and_last_four_only() -> None:
    assert mask_phone("+16175551234") == "+1*******1234"
    assert mask_phone("+442079460958") == "+4*******0958"
    assert mask_phone("+1") == "*******"


def test_fuse_caller_id_is_digits() -> None:
    assert fuse_caller_id("+16175550100") == "6175550100"
    assert fuse_caller_id("+442079460000") == "442079460000"

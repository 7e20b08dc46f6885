"""Integrations are read from SSM names alone: each problem named, secrets never printed."""

from __future__ import annotations

from chalicelib.config.integrations import parse_integrations
from tests.helpers import (
    PREFIX,
)


def test_integrations_are_read_from_ssm_names_alone() -> None:
    parsed = parse_integrations(
        {
            "integrations/hs/auth": "hubspot-v3",
            "integrations/hs/signing_secret": "one, two",
            "integrations/hs/mapping": '{"phone": "properties.phone"}',
            "integrations/bad-map/token": "t",
            "integrations/bad-map/mapping": '{"phone": "properties.["}',
            "integrations/bad-field/token": "t",
            "integrations/bad-field/mapping": '{"telephone": "phone"}',
            "integrations/sw/auth": "standard-webhooks",
            "integrations/sw/signing_secret": "whsec_not base64!",
        },
        PREFIX,
        api_tokens=("t1",),
    )
    assert parsed["hs"].signing_secrets == ("one", "two")
    assert parsed["hs"].problem is None
    assert parsed["default"].tokens == ("t1",)
    assert "valid JMESPath" in parsed["bad-map"].problem
    assert "telephone" in parsed["bad-field"].problem
    assert "whsec_" in parsed["sw"].problem
    assert "one" not in repr(parsed["hs"])  # secrets are never printed
    no_tokens = parse_integrations({}, PREFIX, api_tokens=())["default"]
    assert no_tokens.problem is not None
    assert f"{PREFIX}/api_tokens" in no_tokens.problem  # the parameter to set, by its name

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


def test_a_salesforce_integration_needs_its_token_and_org_ids_and_is_keyed_by_salesforce() -> None:
    parsed = parse_integrations(
        {
            "integrations/sf/auth": "salesforce",
            "integrations/sf/token": "t",
            "integrations/sf/org_ids": "00D5e000000AbCdEAF, 00D5e000000XyZw",
            "integrations/sf-no-org/auth": "salesforce",
            "integrations/sf-no-org/token": "t",
            "integrations/sf-bad-org/auth": "salesforce",
            "integrations/sf-bad-org/token": "t",
            "integrations/sf-bad-org/org_ids": "00D5e000000AbCdEAF, acme",
            "integrations/sf-no-token/auth": "salesforce",
            "integrations/sf-no-token/org_ids": "00D5e000000AbCdEAF",
            "integrations/sf-keyed/auth": "salesforce",
            "integrations/sf-keyed/token": "t",
            "integrations/sf-keyed/org_ids": "00D5e000000AbCdEAF",
            "integrations/sf-keyed/mapping": '{"phone": "Phone", "idempotency_key": "Id"}',
        },
        PREFIX,
        api_tokens=(),
    )
    sf = parsed["sf"]
    assert sf.problem is None
    assert sf.org_ids == {"00D5e000000AbCd", "00D5e000000XyZw"}  # compared on their first 15
    assert [(m.field, m.expression) for m in sf.mapping or ()] == [
        ("phone", "Phone"),
        ("reference", "Id"),
    ]  # no mapping configured: a Contact's or Lead's phone, its id as the reference
    assert "org_ids" in parsed["sf-no-org"].problem
    assert "org_ids" in parsed["sf-bad-org"].problem
    assert f"{PREFIX}/integrations/sf-no-token/token" in parsed["sf-no-token"].problem
    assert "notification Id" in parsed["sf-keyed"].problem

"""Toll fraud: a token in the wrong hands must not ring premium-rate, satellite or foreign
numbers, nor present any caller id it likes."""

from __future__ import annotations

import phonenumbers
import pytest
from chalice.test import Client
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.config.parameters import Campaign
from chalicelib.config.settings import load_settings
from chalicelib.errors import ConfigurationIncomplete, ValidationFailed
from chalicelib.validation.call_request import parse_call_request
from chalicelib.validation.list_request import parse_list_request
from chalicelib.validation.phones import (
    DialPolicy,
    InvalidPhone,
    number_type_in,
    read_phone,
    region_and_type,
    type_name,
)
from infra.parameters import put_parameters
from tests.helpers import PHONE, PREFIX, Aws, error_of, post_call

NOW = 1_800_000_000
CAMPAIGNS = {"default": Campaign("default", "101", "201", "+16175550100")}


def refusal(phone: str, policy: DialPolicy | None = None) -> str:
    with pytest.raises(ValidationFailed) as caught:
        parse_call_request(
            {"phone": phone}, default_region="US", now=NOW, campaigns=CAMPAIGNS, policy=policy
        )
    [detail] = caught.value.details
    assert detail.field == "phone"
    return detail.message


@pytest.mark.parametrize(
    ("phone", "rule"),
    [
        ("+19005551234", "premium_rate"),  # +1 900
        ("+449011112222", "region GB"),  # +44 90, outside the default region
        ("+881612345678", "non-geographic"),  # satellite
        ("+33123456789", "region FR"),
    ],
)
def test_high_cost_destinations_are_refused_by_default_naming_the_rule(
    phone: str, rule: str
) -> None:
    assert rule in refusal(phone)


def test_premium_rate_is_refused_even_where_its_country_is_allowed() -> None:
    policy = DialPolicy(countries=frozenset({"US", "GB"}))
    assert "premium_rate" in refusal("+449011112222", policy)
    assert "ALLOWED_NUMBER_TYPES" in refusal("+19005551234", policy)


def test_what_an_operator_allows_is_dialled() -> None:
    policy = DialPolicy(
        countries=frozenset({"US", "001"}),
        number_types=frozenset({"mobile", "premium_rate", "fixed_line_or_mobile"}),
    )
    for phone in ("+19005551234", "+881612345678", "+16175551234"):
        request = parse_call_request(
            {"phone": phone}, default_region="US", now=NOW, campaigns=CAMPAIGNS, policy=policy
        )
        assert request.phone == phone


def test_a_list_skips_a_premium_contact_by_index() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_list_request(
            {"contacts": [{"phone": PHONE}, {"phone": "+19005551234"}]},
            default_region="US",
            now=NOW,
            campaigns=CAMPAIGNS,
        )
    assert [d.field for d in caught.value.details] == ["contacts[1].phone"]


def test_the_route_answers_422_naming_the_field(client: Client) -> None:
    answer = post_call(client, {"phone": "+19005551234"})
    assert answer.status_code == 422
    [detail] = error_of(answer)["details"]
    assert detail["field"] == "phone"
    assert "premium_rate" in detail["message"]


def test_a_campaign_may_list_its_only_caller_ids(client: Client, aws: Aws) -> None:
    put_parameters(aws.ssm, PREFIX, {"campaigns/default/caller_ids": "+16175550100, 617-555-0101"})
    refused = post_call(client, {"phone": PHONE, "caller_id": "+16175550199"})
    assert refused.status_code == 422
    assert error_of(refused)["details"][0]["field"] == "caller_id"
    assert post_call(client, {"phone": PHONE, "caller_id": "+16175550101"}).status_code == 202
    assert post_call(client, {"phone": PHONE}).status_code == 202  # the campaign's own


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ALLOWED_COUNTRIES", "USA"),
        ("ALLOWED_COUNTRIES", "us;gb"),
        ("ALLOWED_NUMBER_TYPES", "cheap"),
    ],
)
def test_a_malformed_policy_names_its_variable(variable: str, value: str) -> None:
    env = {"BRIDGE_SSM_PREFIX": "/p", "CALLS_TABLE": "t", variable: value}
    with pytest.raises(ConfigurationIncomplete, match=variable):
        load_settings(env)


def test_the_policy_defaults_to_the_default_region() -> None:
    settings = load_settings(
        {"BRIDGE_SSM_PREFIX": "/p", "CALLS_TABLE": "t", "DEFAULT_PHONE_REGION": "gb"}
    )
    assert settings.dial_policy.countries == frozenset({"GB"})
    assert "premium_rate" not in settings.dial_policy.number_types


@pytest.mark.parametrize(
    "text",
    ["+16175551234", "+18005551234", "+19005551234", "+14165551234", "+442079460958",
     "+447911123456", "+449011112222", "+881612345678", "+33123456789", "+61412345678",
     "+12425550123", "+16175550000", "+1999555123", "+80012345678"],
)  # fmt: skip
def test_the_number_type_shortcut_agrees_with_libphonenumber(text: str) -> None:
    """read_phone asks libphonenumber's type helper with the region it already has (number_type
    would look the region up again): it must say exactly what number_type and
    is_valid_number say, whatever version is pinned."""
    number = phonenumbers.parse(text, "US")
    region = phonenumbers.region_code_for_number(number)
    assert number_type_in(number, region) == phonenumbers.number_type(number)
    assert region_and_type(number) == (region, phonenumbers.number_type(number))
    try:
        phone = read_phone(text, "US")
    except InvalidPhone:
        assert not phonenumbers.is_valid_number(number)
    else:
        assert phonenumbers.is_valid_number(number)
        assert phone.kind == type_name(phonenumbers.number_type(number))


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    country=st.sampled_from([1, 7, 44, 61, 262, 290, 590, 599, 800, 881, 33, 49, 91]),
    national=st.integers(min_value=0, max_value=99_999_999_999),
)
def test_region_and_type_agree_with_libphonenumber_for_any_number(
    country: int, national: int
) -> None:
    """Shared calling codes included (+1, +7, +44, +61, +262, +290, +590, +599), and numbers
    valid or not."""
    number = phonenumbers.PhoneNumber(country_code=country, national_number=national)
    expected = (phonenumbers.region_code_for_number(number), phonenumbers.number_type(number))
    assert region_and_type(number) == expected

"""The validation rules of POST /calls, field by field and bound by bound, with no I/O."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.config.parameters import Campaign
from chalicelib.errors import ValidationFailed
from chalicelib.validation import call_settings
from chalicelib.validation.call_request import CallRequest, parse_call_request
from chalicelib.validation.call_settings import CallSettings
from chalicelib.validation.fields import parse_timestamp
from chalicelib.validation.phones import parse_phone

NOW = 1_800_000_000  # 2027-01-15T08:00:00Z
CAMPAIGNS = {
    "default": Campaign("default", "101", "201", "+16175550100"),
    "bare": Campaign("bare", "102", "202", None),
}


def parse(**body: Any) -> CallRequest:
    body.setdefault("phone", "+16175551234")
    return parse_call_request(body, default_region="US", now=NOW, campaigns=CAMPAIGNS)


def problems(**body: Any) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as caught:
        parse(**body)
    return {d.field: d.message for d in caught.value.details}


def test_defaults() -> None:
    request = parse()
    assert request == CallRequest(
        phone="+16175551234",
        settings=CallSettings(caller_id="+16175550100", campaign="default", attempts=1),
    )


@pytest.mark.parametrize(
    "phone",
    [
        "+16175551234",
        "6175551234",
        "(617) 555-1234",
        "617.555.1234",
        "tel:+1-617-555-1234",
        "TEL:+16175551234",
        " +1 617 555 1234 ",
    ],
)
def test_phone_forms_normalise_to_e164(phone: str) -> None:
    assert parse(phone=phone).phone == "+16175551234"


def test_national_numbers_follow_the_configured_region() -> None:
    request = parse_call_request(
        {"phone": "020 7946 0958", "caller_id": "+442079460000"},
        default_region="GB",
        now=NOW,
        campaigns=CAMPAIGNS,
    )
    assert request.phone == "+442079460958"


@pytest.mark.parametrize(
    "phone",
    [
        "12",
        "+15555555555",
        "1-800-FLOWERS",
        "tel:6175551234",
        "+16175551234;ani=1",
        "",
        "+" * 70,
        "617555123456789",
    ],
)
def test_bad_phones_are_refused(phone: str) -> None:
    assert "phone" in problems(phone=phone)


def test_phone_is_required_and_a_string() -> None:
    assert problems(phone=None)["phone"] == "is required"
    assert problems(phone=6175551234)["phone"] == "must be a string"


def test_caller_id_given_wins_over_the_campaigns() -> None:
    assert parse(caller_id="617-555-0199").settings.caller_id == "+16175550199"
    assert "caller_id" in problems(caller_id="555")


def test_caller_id_falls_back_to_the_campaign_or_is_required() -> None:
    assert parse(campaign="bare", caller_id="+16175550199").settings.caller_id == "+16175550199"
    message = problems(campaign="bare")["caller_id"]
    assert "campaigns/bare/caller_id" in message
    assert "Fuse has no default caller id" in message


def test_a_campaigns_caller_id_is_read_once_per_region_and_a_bad_one_every_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The configured caller id is the same on every call, so it is read once (it cost a
    fiftieth of a warm call); written nationally it still means what its region says."""
    reads: list[str] = []

    def counted(text: str, region: str) -> str:
        reads.append(region)
        return parse_phone(text, region)

    monkeypatch.setattr(call_settings, "parse_phone", counted)
    call_settings.configured_number.cache_clear()
    campaigns = {
        "default": Campaign("default", "101", "201", "020 7946 0000"),
        "broken": Campaign("broken", "102", "202", "555"),
    }

    def caller_id(region: str, campaign: str = "default") -> str | None:
        phone = {"GB": "+442079460958", "US": "+16175551234"}[region]
        body = {"phone": phone, "campaign": campaign}
        request = parse_call_request(body, default_region=region, now=NOW, campaigns=campaigns)
        return request.settings.caller_id

    assert [caller_id("GB") for _ in range(3)] == ["+442079460000"] * 3
    assert reads == ["GB"]
    with pytest.raises(ValidationFailed):
        caller_id("US")  # the same text read as a US number is not one
    for _ in range(2):
        with pytest.raises(ValidationFailed) as caught:
            caller_id("US", "broken")
        assert "the caller id configured for campaign 'broken'" in caught.value.details[0].message
    assert reads == ["GB", "US", "US", "US"]


def test_unknown_fields_are_named() -> None:
    found = problems(phone=None, phnoe="+16175551234", Attempts=2)
    assert set(found) == {"phone", "phnoe", "Attempts"}
    assert "allowed fields are" in found["phnoe"]


@pytest.mark.parametrize("dtmf", ["1", "0123456789*#,w", "w" * 32, "1,,2#"])
def test_dtmf_accepts_digits_and_pauses(dtmf: str) -> None:
    assert parse(dtmf=dtmf).settings.dtmf == dtmf


@pytest.mark.parametrize("dtmf", ["", "a", "1 2", "w" * 33, 12, "1;ani=2"])
def test_dtmf_refuses_anything_else(dtmf: object) -> None:
    assert "dtmf" in problems(dtmf=dtmf)


def test_variables_take_scalars_under_identifier_names() -> None:
    variables = {"name": "Zoë", "count": 3, "ratio": 0.5, "vip": False, "note": None}
    assert parse(variables=variables).variables == variables


def test_variables_refuse_bad_names_nesting_and_non_objects() -> None:
    found = problems(variables={"1st": "x", "ok": {"nested": 1}, "has-dash": 1, "list": [1]})
    assert set(found) == {"variables.1st", "variables.ok", "variables.has-dash", "variables.list"}
    assert "variables" in problems(variables=["a"])


def test_variables_are_at_most_4_kib_serialised() -> None:
    # {"v":"…"} is 8 bytes of JSON around the value.
    assert parse(variables={"v": "x" * (4096 - 8)}).variables
    assert "4096" in problems(variables={"v": "x" * (4096 - 7)})["variables"]
    assert "variables" in problems(variables={"v": "é" * 2045})  # bytes, not characters


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1_800_000_000, 1_800_000_000),
        ("1800000000", 1_800_000_000),
        ("2027-01-15T08:00:00Z", 1_800_000_000),
        ("2027-01-15T03:00:00-05:00", 1_800_000_000),
        ("2027-01-15T09:00:00+01:00", 1_800_000_000),
        ("2027-01-15T08:00:00.900Z", 1_800_000_000),
        ("2027-01-15 08:00:00+00:00", 1_800_000_000),
    ],
)
def test_timestamps_in_every_accepted_form(value: object, expected: int) -> None:
    assert parse_timestamp(value) == expected


@pytest.mark.parametrize("value", ["2027-01-15T08:00:00", "tomorrow", 1.5, True, "", [1]])
def test_timestamps_without_a_zone_or_of_other_types_are_refused(value: object) -> None:
    with pytest.raises(ValueError, match=r"zone|ISO-8601"):
        parse_timestamp(value)


def test_start_at_may_be_up_to_five_minutes_in_the_past() -> None:
    assert parse(start_at=NOW - 300).settings.start_at == NOW - 300
    assert problems(start_at=NOW - 301)["start_at"] == "is more than 5 minutes in the past"


def test_end_at_must_be_in_the_future_and_after_start_at() -> None:
    assert parse(start_at=NOW + 10, end_at=NOW + 11).settings.end_at == NOW + 11
    assert problems(end_at=NOW)["end_at"] == "must be in the future"
    assert problems(start_at=NOW + 100, end_at=NOW + 100)["end_at"] == "must be after start_at"
    assert problems(start_at=NOW + 100, end_at=NOW + 50)["end_at"] == "must be after start_at"


def test_milliseconds_by_mistake_are_caught() -> None:
    assert "milliseconds" in problems(start_at=NOW * 1000)["start_at"]


@pytest.mark.parametrize("attempts", [1, 2, 10])
def test_attempts_from_1_to_10(attempts: int) -> None:
    assert parse(attempts=attempts, retry_delay=60).settings.attempts == attempts


@pytest.mark.parametrize("attempts", [0, 11, -1, "3", 2.0, True])
def test_attempts_out_of_range_or_not_integers(attempts: object) -> None:
    assert "attempts" in problems(attempts=attempts, retry_delay=60)


@pytest.mark.parametrize("delay", [60, 86400])
def test_retry_delay_bounds_are_inclusive(delay: int) -> None:
    assert parse(attempts=2, retry_delay=delay).settings.retry_delay == delay


@pytest.mark.parametrize("delay", [59, 86401, "600", 600.5])
def test_retry_delay_outside_its_bounds(delay: object) -> None:
    assert "retry_delay" in problems(attempts=2, retry_delay=delay)


def test_retry_delay_is_required_for_more_than_one_attempt() -> None:
    assert "retry_delay" in problems(attempts=2)
    assert parse(attempts=1).settings.retry_delay is None


def test_pci_is_a_boolean() -> None:
    assert parse(pci=True).settings.pci is True
    assert "pci" in problems(pci=1)


def test_reference_is_1_to_128_characters() -> None:
    assert parse(reference="r" * 128).reference == "r" * 128
    assert "reference" in problems(reference="r" * 129)
    assert "reference" in problems(reference="")
    assert "reference" in problems(reference=42)


def test_campaign_must_be_configured_and_well_formed() -> None:
    assert "configured campaigns: bare, default" in problems(campaign="nope")["campaign"]
    assert "campaign" in problems(campaign="../etc")


def test_idempotency_key_in_the_body_is_checked() -> None:
    assert parse(idempotency_key="crm-lead-42-2026-11-22")
    assert "idempotency_key" in problems(idempotency_key="with space")
    assert "idempotency_key" in problems(idempotency_key="k" * 256)


def test_the_message_lists_the_bad_fields() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse(phone="1", attempts=0)
    assert caught.value.message == "the request has invalid fields: phone, attempts"
    assert caught.value.status == 422
    assert caught.value.code == "validation_failed"


def test_variables_must_be_finite_numbers() -> None:
    assert problems(variables={"big": float("inf")})["variables.big"] == "must be a finite number"

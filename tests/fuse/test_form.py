"""The pure translation to Fuse's form: every field, exactly as Fuse's documentation writes it."""

from __future__ import annotations

from dataclasses import fields as dataclass_fields

from chalicelib.fuse.form import fuse_form_fields, fuse_phone_number
from chalicelib.validation.call_request import CallRequest
from chalicelib.validation.call_settings import CallSettings

URL = "https://bridge.example.test/api/fuse/results/abc?token=t"
OPT_OUT = "https://bridge.example.test/api/fuse/opt-out/abc?token=o"


SETTINGS = {f.name for f in dataclass_fields(CallSettings)}


def request(**fields: object) -> CallRequest:
    base: dict = {"phone": "+16175551234", "caller_id": "+16175550100", "campaign": "default"}
    given = {**base, **fields}
    settings = CallSettings(**{k: v for k, v in given.items() if k in SETTINGS})
    return CallRequest(settings=settings, **{k: v for k, v in given.items() if k not in SETTINGS})


def test_minimal_request_sends_only_the_phone_result_url_and_opt_out_url() -> None:
    assert fuse_form_fields(request(), URL, OPT_OUT) == {
        "phone_number": "tel:+16175551234;ani=6175550100",
        "result_url": URL,
        "metadata": '{"opt_out_url":"' + OPT_OUT + '"}',
    }


def test_every_field() -> None:
    fields = fuse_form_fields(
        request(
            attempts=4,
            retry_delay=900,
            dtmf="12#",
            variables={"name": "Zoë", "n": 2, "ok": True, "none": None},
            start_at=1_800_000_000,
            end_at=1_800_003_600,
            pci=True,
        ),
        URL,
        OPT_OUT,
    )
    assert fields == {
        "phone_number": "tel:+16175551234;ani=6175550100;postd=12#",
        "result_url": URL,
        "start_timestamp": "1800000000",
        "end_timestamp": "1800003600",
        "max_attempts": "4",
        "reattempt_wait": "900",
        "metadata": '{"name":"Zo\\u00eb","n":2,"ok":true,"none":null,"opt_out_url":"'
        + OPT_OUT
        + '"}',
        "is_pci": "1",
    }


def test_one_attempt_with_a_delay_still_sends_both_and_pci_false_is_zero() -> None:
    fields = fuse_form_fields(request(attempts=1, retry_delay=60, pci=False), URL, OPT_OUT)
    assert fields["max_attempts"] == "1"
    assert fields["reattempt_wait"] == "60"
    assert fields["is_pci"] == "0"


def test_caller_id_outside_north_america_keeps_its_country_code() -> None:
    assert fuse_phone_number("+442079460958", "+442079460000", None) == (
        "tel:+442079460958;ani=442079460000"
    )

"""The time zones of a number, from the libphonenumber data carried beside the code: real
numbers give libphonenumber's answers, the file is of the installed release, the longest-prefix
lookup is the naive one, the generator reads a wheel's data without running it, and a request's
zone name is checked without touching a path."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import zipfile
from importlib.metadata import version
from pathlib import Path
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.consent.zones import (
    ZONE_DATA,
    country_zones,
    known_zone,
    longest_prefix_zones,
    zones_for_number,
)
from chalicelib.validation.fields import TIME_ZONE
from infra.zone_prefixes import build, literal, read_wheel
from tests.helpers import ROOT

DATA = json.loads(ZONE_DATA.read_text())
PREFIXES = sorted(DATA["prefixes"])
UK = ("Europe/Guernsey", "Europe/Isle_of_Man", "Europe/Jersey", "Europe/London")


def test_an_idaho_number_may_be_in_boise_or_los_angeles() -> None:
    """+1 208 5: southern Idaho is Mountain time, the panhandle Pacific; the data names both."""
    assert zones_for_number("+12085550100") == ("America/Boise", "America/Los_Angeles")
    assert zones_for_number("+12083") == ()  # too short to be a number
    assert zones_for_number("+12083430000") == ("America/Denver",)


def test_a_toll_free_number_may_be_anywhere_in_the_nanp() -> None:
    """Toll-free is not geographical: the zones of the whole country code, from Guam to
    Newfoundland."""
    zones = zones_for_number("+18005550100")
    assert zones == country_zones("1")
    assert len(zones) >= 25
    expected = {"America/New_York", "America/Los_Angeles", "Pacific/Honolulu", "Pacific/Guam"}
    assert expected <= set(zones)


def test_uk_numbers() -> None:
    """A UK mobile is not geographical: the country's four zones, all on London's clock. A
    London landline is London's."""
    assert zones_for_number("+447911123456") == UK
    assert zones_for_number("+442079460000") == ("Europe/London",)


@pytest.mark.parametrize(
    "number",
    [
        "+447700900123",  # Ofcom's drama range: no valid number
        "+80012345678",  # international freephone: valid, no zone in the data
        "+979123456789",  # international premium rate
        "not a number",
        "",
        "+1",
    ],
)
def test_numbers_without_a_known_zone_give_none(number: str) -> None:
    assert zones_for_number(number) == ()


def test_the_data_is_of_the_installed_phonenumberslite() -> None:
    """A bump of phonenumberslite fails here until `python -m infra.zone_prefixes` is run."""
    assert DATA["libphonenumber"] == version("phonenumberslite")
    assert "Apache" in DATA["source"]
    assert "libphonenumber" in DATA["source"]


def test_the_data_is_compact_and_well_formed() -> None:
    text = ZONE_DATA.read_text()
    assert text == json.dumps(DATA, separators=(",", ":"))
    assert DATA["zones"] == sorted(set(DATA["zones"]))
    assert "Etc/Unknown" not in DATA["zones"]
    assert DATA["longest_prefix"] == max(map(len, PREFIXES))
    used = {int(i) for value in DATA["prefixes"].values() if value for i in value.split(",")}
    assert used == set(range(len(DATA["zones"])))
    assert all(prefix.isdigit() for prefix in PREFIXES)


def test_every_zone_of_the_data_is_one_this_runtime_knows() -> None:
    for zone in DATA["zones"]:
        assert known_zone(zone), zone
        ZoneInfo(zone)


def naive_lookup(digits: str) -> tuple[str, ...]:
    matches = [prefix for prefix in PREFIXES if digits.startswith(prefix)]
    if not matches:
        return ()
    value = DATA["prefixes"][max(matches, key=len)]
    return tuple(DATA["zones"][int(i)] for i in value.split(",")) if value else ()


digit_strings = st.text("0123456789", min_size=1, max_size=15) | st.builds(
    str.__add__, st.sampled_from(PREFIXES), st.text("0123456789", max_size=8)
)


@given(digits=digit_strings)
@settings(max_examples=300, deadline=None, derandomize=True)
def test_the_longest_prefix_is_the_one_a_naive_scan_finds(digits: str) -> None:
    assert longest_prefix_zones(digits) == naive_lookup(digits)


@given(digits=digit_strings.map(lambda d: d[:15]))
@settings(max_examples=200, deadline=None, derandomize=True)
def test_a_number_gives_its_prefix_zones_or_its_country_zones(digits: str) -> None:
    """Whatever number the digits make, its zones are its E.164 prefix's (geographical) or its
    country code's (not), or none when it is not a number."""
    zones = zones_for_number("+" + digits)
    try:
        number = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        assert zones == ()
        return
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    assert zones in {(), naive_lookup(e164[1:]), country_zones(str(number.country_code))}
    if phonenumbers.is_valid_number(number) and naive_lookup(e164[1:]):
        assert zones  # a valid number the data knows has its zones, never none


def test_the_data_loads_on_first_use_not_on_import() -> None:
    probe = "import chalicelib.consent.zones as z; print(z.zone_data.cache_info().currsize)"
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "0"


GOOD_ZONES = ["America/New_York", "Europe/London", "UTC", "Etc/GMT+5", "Asia/Calcutta"]
BAD_ZONES = [
    "",
    "America",  # a folder
    "America/Nowhere",
    "/etc/localtime",  # absolute
    "../../etc/passwd",
    "America/../Europe/London",
    "America//New_York",
    "America/New_York/",
    "localtime",  # the host's own setting
    "posixrules",
    "right/UTC",  # leap-second rules
    "posix/America/New_York",
    "zone.tab",
    "America/New_York\x00",
    "A" * 65,
]


@pytest.mark.parametrize("name", GOOD_ZONES)
def test_known_zones(name: str) -> None:
    assert known_zone(name)


@pytest.mark.parametrize("name", BAD_ZONES)
def test_names_that_are_not_zones_or_are_paths(name: str) -> None:
    assert not known_zone(name)


# Real zone names, and the same bent toward path tricks, beside any text.
ZONE_LIKE = st.sampled_from(DATA["zones"]) | st.builds(
    str.__add__,
    st.sampled_from(DATA["zones"]),
    st.sampled_from(["", "/", "/..", "/../../etc/passwd", "x" * 80, "\x00"]),
)


@given(name=st.text(max_size=80) | ZONE_LIKE | ZONE_LIKE.map(lambda z: "/" + z))
@settings(max_examples=300, deadline=None, derandomize=True)
def test_any_text_is_checked_without_error(name: str) -> None:
    if known_zone(name):
        assert TIME_ZONE.fullmatch(name)  # validation's shape of a zone name
        assert ".." not in name
        assert not name.startswith("/")
        ZoneInfo(name)


def make_wheel(folder: Path, modules: dict[str, str]) -> Path:
    wheel = folder / "phonenumbers-1.2.3-py2.py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, source in modules.items():
            archive.writestr(f"phonenumbers/tzdata/{name}.py", source)
    return wheel


def test_the_generator_reads_the_data_of_a_wheel(tmp_path: Path) -> None:
    """Old releases wrap strings in u(...), and data may be split over modules; Etc/Unknown is
    dropped from names but its prefix stays, hiding the shorter prefix's zones."""
    wheel = make_wheel(
        tmp_path,
        {
            "__init__": "from ..util import u\nTIMEZONE_DATA = {}\nfrom .data0 import data\n"
            "TIMEZONE_DATA.update(data)\nfrom .data1 import data\nTIMEZONE_DATA.update(data)\n"
            "TIMEZONE_LONGEST_PREFIX = 4\n",
            "data0": "data = {\n '1':(u('America/New_York'), u('America/Chicago')),\n"
            " '1201':('America/New_York',),\n}\n",
            "data1": "data = {\n '44':('Europe/London',),\n '449':(u('Etc/Unknown'),),\n}\n",
        },
    )
    mapping, longest = read_wheel(wheel)
    assert longest == 4
    assert mapping["1"] == ("America/New_York", "America/Chicago")
    data = build(mapping, longest, "1.2.3")
    assert data["zones"] == ["America/Chicago", "America/New_York", "Europe/London"]
    assert data["prefixes"] == {"1": "1,0", "1201": "1", "44": "2", "449": ""}
    assert data["libphonenumber"] == "1.2.3"


def test_the_generator_never_runs_the_data(tmp_path: Path) -> None:
    wheel = make_wheel(
        tmp_path,
        {
            "__init__": "from .data0 import data\nTIMEZONE_LONGEST_PREFIX = 1\n",
            "data0": "data = {'1': (__import__('os').system('false'),)}\n",
        },
    )
    with pytest.raises(ValueError, match="unexpected expression"):
        read_wheel(wheel)
    assert literal(ast.parse("u('x')", mode="eval").body) == "x"


@given(
    country=st.sampled_from(["1", "44", "49", "33", "61", "91", "52", "55", "7", "86", "800"]),
    rest=st.text("0123456789", min_size=6, max_size=12),
)
@settings(max_examples=300, deadline=None, derandomize=True)
def test_the_type_validation_found_gives_the_zones_libphonenumber_would(
    country: str, rest: str
) -> None:
    """A list's contacts pass their type from validation rather than parsing each again: the
    zones are the same either way."""
    from chalicelib.validation.phones import InvalidPhone, read_phone

    try:
        phone = read_phone(f"+{country}{rest}", "US")
    except InvalidPhone:
        return
    assert zones_for_number(phone.e164, phone.kind) == zones_for_number(phone.e164)

"""The time zones a phone number may be in, by libphonenumber's data, and the check of a zone
name a request gives.

phonenumberslite leaves out libphonenumber's time-zone data; zone_prefixes.json beside this
module carries it (written by `python -m infra.zone_prefixes` from the same release). The lookup
mirrors phonenumbers.timezone.time_zones_for_number: geographical numbers by their longest
known prefix, others (toll-free, most mobiles) by their country calling code, which can name
many zones. The file is read on first use, so importing this module costs nothing.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import phonenumberutil

from chalicelib.validation.fields import TIME_ZONE
from chalicelib.validation.phones import NUMBER_TYPES

ZONE_DATA = Path(__file__).with_name("zone_prefixes.json")
# Files of the system's zone folder that are not zones to call by: the host's own setting,
# zic's template, the "no zone" placeholder, and copies under other rules (leap seconds).
NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})
NOT_ZONE_FOLDERS = ("posix/", "right/")


@functools.cache
def zone_data() -> tuple[int, tuple[str, ...], dict[str, str]]:
    """The longest prefix, the zone names, and each prefix's zones as indexes ("3,17")."""
    data: dict[str, Any] = json.loads(ZONE_DATA.read_text())
    return data["longest_prefix"], tuple(data["zones"]), data["prefixes"]


def zones_for_number(e164: str, kind: str | None = None) -> tuple[str, ...]:
    """The zones an E.164 number may be in; () when it is not a valid number or the data knows
    no zone for it. `kind`, the number's type as validation named it (phonenumbers'
    PhoneNumberType, lower case), spares working it out again (a tenth of a millisecond a
    number: a second for a list of 10,000)."""
    known = NUMBER_TYPES.get(kind) if kind else None
    digits = e164.removeprefix("+")
    country = country_code(digits) if known is not None else None
    if known is None or country is None:
        try:
            number = phonenumbers.parse(e164, None)
        except phonenumbers.NumberParseException:
            return ()
        known, country = phonenumbers.number_type(number), number.country_code
    if known == phonenumbers.PhoneNumberType.UNKNOWN:
        return ()
    if not phonenumberutil.is_number_type_geographical(known, country):
        return country_zones(str(country))
    return longest_prefix_zones(digits)


def country_code(digits: str) -> int | None:
    """The calling code an E.164 number's digits start with (codes are prefix-free)."""
    for length in (1, 2, 3):
        if int(digits[:length] or 0) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            return int(digits[:length])
    return None


def longest_prefix_zones(digits: str) -> tuple[str, ...]:
    """The zones of the longest prefix of `digits` (country code first) the data names."""
    longest, names, prefixes = zone_data()
    for length in range(min(longest, len(digits)), 0, -1):
        found = prefixes.get(digits[:length])
        if found is not None:
            return _names(found, names)
    return ()


def country_zones(country_code: str) -> tuple[str, ...]:
    """As libphonenumber's country-level lookup: it tries the code's slices of two or more
    characters, longest first (so "1" and "44" stand for themselves; "380" may fall to "38")."""
    longest, names, prefixes = zone_data()
    for length in range(longest, 0, -1):
        found = prefixes.get(country_code[: length + 1])
        if found is not None:
            return _names(found, names)
    return ()


def _names(indexes: str, names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(names[int(i)] for i in indexes.split(",")) if indexes else ()


def known_zone(name: str) -> bool:
    """Whether a request's `timezone` is an IANA zone this runtime knows. Bounded, and never a
    path: ZoneInfo itself refuses absolute and `..` keys; the pattern refuses the rest first."""
    # TIME_ZONE is validation's shape of an IANA name: letters first, no dots, no path tricks.
    if not isinstance(name, str) or not TIME_ZONE.fullmatch(name):
        return False
    if name in NOT_ZONES or name.startswith(NOT_ZONE_FOLDERS):
        return False
    try:
        ZoneInfo(name)
    except (ValueError, OSError, ZoneInfoNotFoundError):  # OSError: a folder (`America`)
        return False
    return True

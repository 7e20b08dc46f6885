"""Phone numbers: parsed and checked with libphonenumber, kept as E.164, masked in logs.

Only E.164 ever reaches Fuse, rebuilt from the parsed number, so nothing a caller types (such as a
`;ani=` suffix) can be smuggled into Fuse's phone_number field.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import phonenumbers
from phonenumbers import phonenumberutil

MAX_INPUT_LENGTH = 64
# Digits and the punctuation numbers are written with; letters (vanity numbers) and `;` are refused.
ALLOWED_CHARACTERS = re.compile(r"\+?[0-9 ()./-]+")


NUMBER_TYPES = {
    name.lower(): value
    for name, value in vars(phonenumbers.PhoneNumberType).items()
    if name.isupper()
}
# Premium-rate, shared-cost, UAN, personal, pager, voicemail and unknown numbers are where toll
# fraud goes: refused unless ALLOWED_NUMBER_TYPES names them.
DEFAULT_NUMBER_TYPES = frozenset(
    {"fixed_line", "mobile", "fixed_line_or_mobile", "toll_free", "voip"}
)
NON_GEOGRAPHIC = "001"  # libphonenumber's region for +800, +808, +870, +881 (satellite), +882...


class InvalidPhone(ValueError):
    """The message says what is wrong without repeating the number."""


@dataclass(frozen=True)
class DialPolicy:
    """Where this bridge may ring: ISO regions (`001` for non-geographic numbers) and number
    types (NUMBER_TYPES' names)."""

    countries: frozenset[str]
    number_types: frozenset[str] = DEFAULT_NUMBER_TYPES

    @classmethod
    def for_region(cls, region: str) -> DialPolicy:
        """The default: the default phone region's own country, and the ordinary types."""
        return cls(countries=frozenset({region.upper()}))

    def refusal(self, phone: Phone) -> str | None:
        """Why this number may not be dialled, naming the rule; None when it may."""
        if phone.region not in self.countries:
            where = (
                "non-geographic" if phone.region == NON_GEOGRAPHIC else f"in region {phone.region}"
            )
            allowed = ", ".join(sorted(self.countries))
            return f"is {where}; this bridge calls only {allowed} (ALLOWED_COUNTRIES)"
        if phone.kind not in self.number_types:
            allowed = ", ".join(sorted(self.number_types))
            return (
                f"is a {phone.kind} number; this bridge calls only {allowed} (ALLOWED_NUMBER_TYPES)"
            )
        return None


@dataclass(frozen=True)
class Phone:
    """A valid number: E.164, its region (`001` when non-geographic) and its type's name."""

    e164: str
    region: str
    kind: str


def type_name(value: int) -> str:
    return next((name for name, v in NUMBER_TYPES.items() if v == value), "unknown")


def same_numbers(texts: Iterable[str], region: str) -> frozenset[str]:
    """Numbers as configured, in E.164; any that cannot be read are left out."""
    numbers = set()
    for text in texts:
        try:
            numbers.add(parse_phone(text, region))
        except InvalidPhone:
            continue
    return frozenset(numbers)


def parse_phone(text: str, default_region: str) -> str:
    """Returns the number in E.164 (`+16175551234`) or raises InvalidPhone."""
    return read_phone(text, default_region).e164


def read_phone(text: str, default_region: str) -> Phone:
    """The number, its region and its type, or InvalidPhone. The type is worked out once: it is
    what libphonenumber's validity check computes anyway (a valid number has a known type)."""
    raw = text.strip()
    if len(raw) > MAX_INPUT_LENGTH:
        raise InvalidPhone(f"must be at most {MAX_INPUT_LENGTH} characters")
    if raw[:4].lower() == "tel:":
        raw = raw[4:]
        if not raw.startswith("+"):
            raise InvalidPhone("a tel: number must be global, starting with +")
    if not raw or not ALLOWED_CHARACTERS.fullmatch(raw):
        raise InvalidPhone(
            "must be E.164 (+16175551234), national digits, or tel:+16175551234, "
            "with no letters or parameters"
        )
    try:
        number = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException:
        raise InvalidPhone("is not a phone number") from None
    region, kind = region_and_type(number)  # UNKNOWN exactly when is_valid_number is False
    if region is None or kind == phonenumbers.PhoneNumberType.UNKNOWN:
        raise InvalidPhone(
            f"is not a valid number (national numbers are read as region {default_region}; "
            "use the + form for other countries)"
        )
    return Phone(
        e164=phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
        region=region,
        kind=type_name(kind),
    )


def region_and_type(number: phonenumbers.PhoneNumber) -> tuple[str | None, int]:
    """region_code_for_number and number_type at once. Where several regions share a calling
    code (+1: every NANPA region), libphonenumber finds the region by working out the number's
    type in each, in order; that type is the one wanted, so it is kept rather than worked out
    again (a sixth of a 10,000-contact list's validation). A test checks both agree with
    libphonenumber's own, over generated numbers."""
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(number.country_code)
    if not regions:
        return None, phonenumbers.PhoneNumberType.UNKNOWN
    if len(regions) == 1:
        return regions[0], number_type_in(number, regions[0])
    national = phonenumbers.national_significant_number(number)
    for region in regions:
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(region.upper(), None)
        if metadata is None:
            continue
        if metadata.leading_digits is not None:
            if re.match(metadata.leading_digits, national):
                return region, phonenumberutil._number_type_helper(national, metadata)
            continue
        kind = phonenumberutil._number_type_helper(national, metadata)
        if kind != phonenumbers.PhoneNumberType.UNKNOWN:
            return region, kind
    return None, phonenumbers.PhoneNumberType.UNKNOWN


def number_type_in(number: phonenumbers.PhoneNumber, region: str | None) -> int:
    """phonenumbers.number_type with the region already known: number_type would look the
    region up again, and for +1 that walks every NANPA region (a third of a 10,000-contact
    list's validation). The same helper number_type and is_valid_number use; a test checks
    they agree."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(
        number.country_code, region
    )
    if region is None or metadata is None:
        return phonenumbers.PhoneNumberType.UNKNOWN
    national = phonenumbers.national_significant_number(number)
    return phonenumberutil._number_type_helper(national, metadata)


def mask_phone(e164: str) -> str:
    """`+16175551234` -> `+1*******1234`: enough to tell calls apart in logs, not to dial.

    The mask has a fixed width, so it does not tell the number's length either.
    """
    if len(e164) < 8:
        return "*******"
    return e164[:2] + "*******" + e164[-4:]


def fuse_caller_id(e164: str) -> str:
    """The `ani=` value: digits only, as Fuse's examples write it (`ani=8009957586`).

    North American numbers are written in their ten national digits, exactly as the docs show;
    elsewhere the country code is kept, since the national digits alone would be ambiguous.
    """
    digits = e164.lstrip("+")
    return digits[1:] if digits.startswith("1") and len(digits) == 11 else digits

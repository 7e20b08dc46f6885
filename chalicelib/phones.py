"""Phone numbers: parsed and checked with libphonenumber, kept as E.164, masked in logs.

Only E.164 ever reaches Fuse, rebuilt from the parsed number, so nothing a caller types (such as a
`;ani=` suffix) can be smuggled into Fuse's phone_number field.
"""

from __future__ import annotations

import re

import phonenumbers

MAX_INPUT_LENGTH = 64
# Digits and the punctuation numbers are written with; letters (vanity numbers) and `;` are refused.
ALLOWED_CHARACTERS = re.compile(r"\+?[0-9 ()./-]+")


class InvalidPhone(ValueError):
    """The message says what is wrong without repeating the number."""


def parse_phone(text: str, default_region: str) -> str:
    """Returns the number in E.164 (`+16175551234`) or raises InvalidPhone."""
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
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone(
            f"is not a valid number (national numbers are read as region {default_region}; "
            "use the + form for other countries)"
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


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

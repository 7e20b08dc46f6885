"""The JSON of POST /calls/bulk, checked into a ListRequest.

Shared settings are checked exactly as POST /calls checks them (call_settings.py); every contact
is checked too, and a bad contact is named by its index (`contacts[12].phone`). Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chalicelib.campaigns import Campaign
from chalicelib.errors import FieldError
from chalicelib.validation.call_settings import CallSettings, check_call_settings
from chalicelib.validation.fields import (
    SETTINGS_FIELDS,
    Errors,
    Scalar,
    check_destination,
    check_idempotency_key,
    check_reference,
    check_timezone,
    check_variables,
    raise_if_invalid,
    require_object,
    unknown_fields,
)
from chalicelib.validation.phones import DialPolicy

LIST_FIELDS = ("contacts", *SETTINGS_FIELDS, "skip_invalid")
CONTACT_FIELDS = ("phone", "variables", "reference", "timezone")
MAX_CONTACTS = 10_000
SKIPPED_WITH_DETAILS, MAX_DETAILS_EACH = 100, 5
MAX_FIELD_NAME, MAX_MESSAGE = 100, 300


@dataclass(frozen=True)
class Contact:
    index: int  # its place in the request, kept through skipping
    phone: str
    reference: str | None = None
    variables: Mapping[str, Scalar] = field(default_factory=dict)
    timezone: str | None = None
    # When its calling hours let it ring (start_at, end_at), if not the list's own: contacts of
    # different windows go to Fuse in different bulk requests (bulk_queue has one schedule).
    window: tuple[int | None, int | None] | None = None
    kind: str | None = field(default=None, compare=False)  # the type validation found


@dataclass(frozen=True)
class Skipped:
    """A contact left out: invalid (`code` None), or one consent does not let ring (its code:
    phone_suppressed, call_limit_reached, outside_calling_hours)."""

    index: int
    details: tuple[FieldError, ...]
    code: str | None = None

    def to_json(self) -> dict[str, Any]:
        details = [
            {"field": d.field[:MAX_FIELD_NAME], "message": d.message[:MAX_MESSAGE]}
            for d in self.details[:MAX_DETAILS_EACH]
        ]
        return {
            "index": self.index,
            "details": details,
            **({"code": self.code} if self.code else {}),
        }


def skipped_json(skipped: tuple[Skipped, ...]) -> list[dict[str, Any]]:
    """What an answer says of the contacts left out, bounded by construction: the details of the
    first SKIPPED_WITH_DETAILS (each cut), then only the indexes. 10,000 skipped contacts with
    long unknown keys must not make an answer of megabytes."""
    shown = [s.to_json() for s in skipped[:SKIPPED_WITH_DETAILS]]
    rest = skipped[SKIPPED_WITH_DETAILS:]
    return shown + [{"index": s.index, **({"code": s.code} if s.code else {})} for s in rest]


@dataclass(frozen=True)
class ListRequest:
    contacts: tuple[Contact, ...]
    settings: CallSettings
    skipped: tuple[Skipped, ...] = ()

    @property
    def campaign(self) -> str:
        return self.settings.campaign

    @property
    def reference(self) -> None:
        """A list has no reference of its own; its contacts do."""
        return None

    def accepted(self) -> dict[str, Any]:
        """The list as accepted, for its lock item: settings and counts only (the skipped
        contacts' details are in the list's answer, kept in parts), so the item stays small."""
        return {
            **self.settings.to_json(),
            "contacts": len(self.contacts),
            "skipped": len(self.skipped),
        }


def parse_list_request(
    body: object,
    *,
    default_region: str,
    now: float,
    campaigns: Mapping[str, Campaign],
    policy: DialPolicy | None = None,
) -> ListRequest:
    body = require_object(body)
    policy = policy or DialPolicy.for_region(default_region)
    errors = unknown_fields(body, LIST_FIELDS)
    settings = check_call_settings(
        body, region=default_region, now=now, campaigns=campaigns, errors=errors
    )
    check_idempotency_key(body, errors)
    skip_invalid = body.get("skip_invalid", False)
    if not isinstance(skip_invalid, bool):
        errors.append(FieldError("skip_invalid", "must be true or false"))
    contacts, skipped = check_contacts(body.get("contacts"), default_region, policy, errors)
    if skipped and not skip_invalid:
        errors += [d for s in skipped for d in s.details]
    elif not contacts and not any(e.field == "contacts" for e in errors):
        errors.append(FieldError("contacts", "has no valid contact to call"))
    raise_if_invalid(errors)
    return ListRequest(contacts=tuple(contacts), settings=settings, skipped=tuple(skipped))


def check_contacts(
    value: object, region: str, policy: DialPolicy, errors: Errors
) -> tuple[list[Contact], list[Skipped]]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_CONTACTS:
        errors.append(FieldError("contacts", f"must be a list of 1 to {MAX_CONTACTS} contacts"))
        return [], []
    contacts: list[Contact] = []
    skipped: list[Skipped] = []
    first_at: dict[str, int] = {}
    for index, item in enumerate(value):
        problems: Errors = []
        contact = check_contact(item, index, region, policy, problems)
        if contact is not None and contact.phone in first_at:
            # Fuse's results name the phone, not the row: one number, one row.
            message = (
                f"appears more than once in the list (first at index {first_at[contact.phone]})"
            )
            problems.append(FieldError("phone", message))
        if problems or contact is None:
            prefix = f"contacts[{index}]"
            details = tuple(FieldError(f"{prefix}.{p.field}", p.message) for p in problems)
            skipped.append(Skipped(index, details))
            continue
        first_at[contact.phone] = index
        contacts.append(contact)
    return contacts, skipped


def check_contact(
    item: object, index: int, region: str, policy: DialPolicy, problems: Errors
) -> Contact | None:
    if not isinstance(item, dict):
        problems.append(FieldError("(contact)", "must be an object with a phone"))
        return None
    problems += unknown_fields(item, CONTACT_FIELDS)
    phone = check_destination(item, region, policy, problems)
    variables = check_variables(item, problems)
    reference = check_reference(item, problems)
    timezone = check_timezone(item, problems)
    if problems or phone is None:
        return None
    return Contact(index, phone.e164, reference, variables, timezone, kind=phone.kind)

"""The JSON of POST /calls/bulk, checked into a BulkRequest, and the CSV Fuse's bulk_queue takes.

Shared settings are checked as POST /calls checks them; every contact is checked too, and a bad
contact is named by its index (`contacts[12].phone`). Like the single-call rules, this is pure.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from chalicelib.call_request import (
    Scalar,
    check_attempts,
    check_caller_id,
    check_campaign,
    check_dtmf,
    check_idempotency_key,
    check_pci,
    check_phone,
    check_reference,
    check_schedule,
    check_variables,
    require_object,
    unknown_fields,
)
from chalicelib.errors import FieldError, ValidationFailed
from chalicelib.fuse_form import fuse_phone_number, schedule_fields
from chalicelib.secrets import Campaign

BULK_FIELDS = (
    "contacts",
    "caller_id",
    "dtmf",
    "start_at",
    "end_at",
    "attempts",
    "retry_delay",
    "pci",
    "campaign",
    "idempotency_key",
    "skip_invalid",
)
CONTACT_FIELDS = ("phone", "variables", "reference")
MAX_CONTACTS = 10_000
PER_LIST = ("contacts", "skipped")  # a BulkRequest's fields that are not a call's settings
DESTINATION = "destination"  # Fuse's CSV name for the number; no variable may take it


@dataclass(frozen=True)
class Contact:
    index: int  # its place in the request, kept through skipping
    phone: str
    reference: str | None = None
    variables: Mapping[str, Scalar] = field(default_factory=dict)


@dataclass(frozen=True)
class Skipped:
    index: int
    details: tuple[FieldError, ...]

    def to_json(self) -> dict[str, Any]:
        details = [{"field": d.field, "message": d.message} for d in self.details]
        return {"index": self.index, "details": details}


@dataclass(frozen=True)
class BulkRequest:
    contacts: tuple[Contact, ...]
    caller_id: str
    campaign: str
    attempts: int = 1
    retry_delay: int | None = None
    dtmf: str | None = None
    start_at: int | None = None
    end_at: int | None = None
    pci: bool | None = None
    skipped: tuple[Skipped, ...] = ()

    def shared(self) -> dict[str, Any]:
        """The settings every contact's call shares, as a call's request shows them."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in PER_LIST}


def parse_bulk_request(
    body: object,
    *,
    default_region: str,
    now: float,
    campaigns: Mapping[str, Campaign],
) -> BulkRequest:
    body = require_object(body)
    errors = unknown_fields(body, BULK_FIELDS)
    campaign = check_campaign(body, campaigns, errors)
    caller_id = check_caller_id(body, campaign, default_region, errors)
    start_at, end_at = check_schedule(body, now, errors)
    attempts, retry_delay = check_attempts(body, errors)
    dtmf, pci = check_dtmf(body, errors), check_pci(body, errors)
    check_idempotency_key(body, errors)
    skip_invalid = body.get("skip_invalid", False)
    if not isinstance(skip_invalid, bool):
        errors.append(FieldError("skip_invalid", "must be true or false"))
    contacts, skipped = check_contacts(body.get("contacts"), default_region, errors)
    if skipped and not skip_invalid:
        errors += [d for s in skipped for d in s.details]
    elif not contacts and not any(e.field == "contacts" for e in errors):
        errors.append(FieldError("contacts", "has no valid contact to call"))
    if errors:
        fields = list(dict.fromkeys(e.field for e in errors))
        shown = ", ".join(fields[:10]) + (
            f" and {len(fields) - 10} more" if len(fields) > 10 else ""
        )
        raise ValidationFailed(f"the request has invalid fields: {shown}", errors)
    return BulkRequest(
        contacts=tuple(contacts),
        caller_id=caller_id or "",
        campaign=campaign.name if campaign else "",
        attempts=attempts,
        retry_delay=retry_delay,
        dtmf=dtmf,
        start_at=start_at,
        end_at=end_at,
        pci=pci,
        skipped=tuple(skipped),
    )


def check_contacts(
    value: object, region: str, errors: list[FieldError]
) -> tuple[list[Contact], list[Skipped]]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_CONTACTS:
        errors.append(FieldError("contacts", f"must be a list of 1 to {MAX_CONTACTS} contacts"))
        return [], []
    contacts: list[Contact] = []
    skipped: list[Skipped] = []
    first_at: dict[str, int] = {}
    for index, item in enumerate(value):
        problems: list[FieldError] = []
        contact = check_contact(item, region, problems)
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
        contacts.append(replace_index(contact, index))
    return contacts, skipped


def replace_index(contact: Contact, index: int) -> Contact:
    return Contact(index, contact.phone, contact.reference, contact.variables)


def check_contact(item: object, region: str, problems: list[FieldError]) -> Contact | None:
    if not isinstance(item, dict):
        problems.append(FieldError("(contact)", "must be an object with a phone"))
        return None
    problems += unknown_fields(item, CONTACT_FIELDS)
    phone = check_phone(item, "phone", region, problems)
    if item.get("phone") is None:
        problems.append(FieldError("phone", "is required"))
    variables = check_variables(item, problems)
    for name in variables:
        if name.lower() == DESTINATION:
            problems.append(FieldError(f"variables.{name}", "is Fuse's name for the phone column"))
    reference = check_reference(item, problems)
    if problems or phone is None:
        return None
    return Contact(0, phone, reference, variables)


def variable_names(contacts: tuple[Contact, ...]) -> list[str]:
    """Every variable name used in the list, in order of first use: one CSV column each."""
    return list(dict.fromkeys(name for c in contacts for name in c.variables))


def csv_cell(value: Scalar) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def contacts_csv(request: BulkRequest) -> bytes:
    """`destination` first (the phone in Fuse's tel: form with ;ani= and ;postd=), then a column
    per variable, empty where a contact lacks it. The csv module quotes commas, quotes and
    newlines; the file is UTF-8."""
    names = variable_names(request.contacts)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([DESTINATION, *names])
    for contact in request.contacts:
        destination = fuse_phone_number(contact.phone, request.caller_id, request.dtmf)
        writer.writerow([destination, *(csv_cell(contact.variables.get(n)) for n in names)])
    return out.getvalue().encode("utf-8")


def bulk_form_fields(request: BulkRequest, result_url: str) -> dict[str, str]:
    """The batch-wide fields sent beside the CSV: as for a single call, with no metadata (Fuse's
    bulk_queue has none; variables travel as CSV columns)."""
    return schedule_fields(request, result_url)

"""The pure translation from a validated list to what Fuse's bulk_queue takes: the list-wide
fields and the CSV of its contacts. Apart from form.py so that a single call, whose cold start a
CRM waits on, loads neither the list's validation nor the csv module.
"""

from __future__ import annotations

import csv
import io

from chalicelib.fuse.form import fuse_phone_number, schedule_fields
from chalicelib.validation.fields import Scalar
from chalicelib.validation.list_request import DESTINATION, Contact, ListRequest


def bulk_form_fields(request: ListRequest, callback_url: str) -> dict[str, str]:
    """The list-wide fields sent beside the CSV: as for a single call, with no metadata (Fuse's
    bulk_queue has none; variables travel as CSV columns)."""
    return schedule_fields(request.settings, callback_url)


def variable_names(contacts: tuple[Contact, ...]) -> list[str]:
    """Every variable name used in the list, in order of first use: one CSV column each."""
    return list(dict.fromkeys(name for c in contacts for name in c.variables))


def csv_cell(value: Scalar) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def contacts_csv(request: ListRequest) -> bytes:
    """`destination` first (the phone in Fuse's tel: form with ;ani= and ;postd=), then a column
    per variable, empty where a contact lacks it. The csv module quotes commas, quotes and
    newlines; the file is UTF-8."""
    settings = request.settings
    names = variable_names(request.contacts)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([DESTINATION, *names])
    for contact in request.contacts:
        destination = fuse_phone_number(contact.phone, settings.caller_id, settings.dtmf)
        writer.writerow([destination, *(csv_cell(contact.variables.get(n)) for n in names)])
    return out.getvalue().encode("utf-8")

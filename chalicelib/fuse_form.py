"""The pure translation from a validated request to what Fuse's queue endpoints take: the form
fields of one call, and the fields and CSV of a whole list.

Fuse's form takes strings; numbers are written as plain decimal strings, exactly as its examples
show, and optional fields are left out rather than sent empty.
"""

from __future__ import annotations

import csv
import io
import json

from chalicelib.call_request import CallRequest
from chalicelib.call_settings import CallSettings
from chalicelib.list_request import DESTINATION, Contact, ListRequest
from chalicelib.phones import fuse_caller_id
from chalicelib.request_fields import Scalar


def fuse_phone_number(phone: str, caller_id: str, dtmf: str | None) -> str:
    """`tel:+16175551234;ani=6175550000;postd=12#`, the documented combined form."""
    value = f"tel:{phone};ani={fuse_caller_id(caller_id)}"
    return f"{value};postd={dtmf}" if dtmf else value


def schedule_fields(settings: CallSettings, result_url: str) -> dict[str, str]:
    """The fields a single call and a whole list share: when, how often, where to report."""
    fields = {"result_url": result_url}
    if settings.start_at is not None:
        fields["start_timestamp"] = str(settings.start_at)
    if settings.end_at is not None:
        fields["end_timestamp"] = str(settings.end_at)
    # Fuse wants reattempt_wait whenever max_attempts is sent; one attempt is its default.
    if settings.attempts > 1 or settings.retry_delay is not None:
        fields["max_attempts"] = str(settings.attempts)
        if settings.retry_delay is not None:
            fields["reattempt_wait"] = str(settings.retry_delay)
    if settings.pci is not None:
        fields["is_pci"] = "1" if settings.pci else "0"
    return fields


def fuse_form_fields(request: CallRequest, result_url: str) -> dict[str, str]:
    settings = request.settings
    fields = {
        "phone_number": fuse_phone_number(request.phone, settings.caller_id, settings.dtmf),
        **schedule_fields(settings, result_url),
    }
    if request.variables:
        fields["metadata"] = json.dumps(dict(request.variables), separators=(",", ":"))
    return fields


def list_form_fields(request: ListRequest, result_url: str) -> dict[str, str]:
    """The list-wide fields sent beside the CSV: as for a single call, with no metadata (Fuse's
    bulk_queue has none; variables travel as CSV columns)."""
    return schedule_fields(request.settings, result_url)


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

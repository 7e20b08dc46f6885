"""The pure translation to what Fuse's bulk_queue takes: the list-wide fields and a CSV of its
rows, for a list's contacts and for a bulk of waiting calls alike. Apart from form.py so that a
single call, whose cold start a CRM waits on, loads neither the list's validation nor the csv
module.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping

from chalicelib.fuse.form import fuse_phone_number, schedule_fields
from chalicelib.validation.fields import DESTINATION, OPT_OUT_URL, Scalar
from chalicelib.validation.list_request import ListRequest


def bulk_form_fields(request: ListRequest, callback_url: str) -> dict[str, str]:
    """The list-wide fields sent beside the CSV: as for a single call, with no metadata (Fuse's
    bulk_queue has none; variables travel as CSV columns)."""
    return schedule_fields(request.settings, callback_url)


def csv_cell(value: Scalar) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def bulk_csv(rows: list[tuple[str, Mapping[str, Scalar]]]) -> bytes:
    """`destination` first (a phone in Fuse's tel: form with its own ;ani= and ;postd=), then a
    column per variable, in order of first use, empty where a row lacks it. The csv module
    quotes commas, quotes and newlines; the file is UTF-8."""
    names = list(dict.fromkeys(name for _, variables in rows for name in variables))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([DESTINATION, *names])
    for destination, variables in rows:
        writer.writerow([destination, *(csv_cell(variables.get(n)) for n in names)])
    return out.getvalue().encode("utf-8")


def contacts_csv(request: ListRequest, opt_out_urls: list[str]) -> bytes:
    """A list's contacts, each with the list's caller id and DTMF, and its own opt-out URL."""
    settings = request.settings
    return bulk_csv(
        [
            (
                fuse_phone_number(c.phone, settings.caller_id, settings.dtmf),
                {**c.variables, OPT_OUT_URL: url},
            )
            for c, url in zip(request.contacts, opt_out_urls, strict=True)
        ]
    )

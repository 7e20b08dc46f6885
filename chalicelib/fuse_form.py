"""The pure translation from a validated CallRequest to Fuse's queue form fields.

Fuse's form takes strings; numbers are written as plain decimal strings, exactly as its examples
show, and optional fields are left out rather than sent empty.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from chalicelib.call_request import CallRequest

if TYPE_CHECKING:  # the bulk module builds on this one
    from chalicelib.bulk_request import BulkRequest
from chalicelib.phones import fuse_caller_id


def fuse_phone_number(phone: str, caller_id: str, dtmf: str | None) -> str:
    """`tel:+16175551234;ani=6175550000;postd=12#`, the documented combined form."""
    value = f"tel:{phone};ani={fuse_caller_id(caller_id)}"
    return f"{value};postd={dtmf}" if dtmf else value


def schedule_fields(request: CallRequest | BulkRequest, result_url: str) -> dict[str, str]:
    """The fields a single call and a whole list share: when, how often, where to report."""
    fields = {"result_url": result_url}
    if request.start_at is not None:
        fields["start_timestamp"] = str(request.start_at)
    if request.end_at is not None:
        fields["end_timestamp"] = str(request.end_at)
    # Fuse wants reattempt_wait whenever max_attempts is sent; one attempt is its default.
    if request.attempts > 1 or request.retry_delay is not None:
        fields["max_attempts"] = str(request.attempts)
        if request.retry_delay is not None:
            fields["reattempt_wait"] = str(request.retry_delay)
    if request.pci is not None:
        fields["is_pci"] = "1" if request.pci else "0"
    return fields


def fuse_form_fields(request: CallRequest, result_url: str) -> dict[str, str]:
    fields = {
        "phone_number": fuse_phone_number(request.phone, request.caller_id, request.dtmf),
        **schedule_fields(request, result_url),
    }
    if request.variables:
        fields["metadata"] = json.dumps(dict(request.variables), separators=(",", ":"))
    return fields

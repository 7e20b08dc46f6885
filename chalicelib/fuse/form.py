"""The pure translation from a validated call to what Fuse's queue endpoint takes: its form
fields, and the phone and schedule fields a whole list shares (bulk_form.py builds the rest).

Fuse's form takes strings; numbers are written as plain decimal strings, exactly as its examples
show, and optional fields are left out rather than sent empty.
"""

from __future__ import annotations

import json

from chalicelib.validation.call_request import CallRequest
from chalicelib.validation.call_settings import CallSettings
from chalicelib.validation.fields import OPT_OUT_URL
from chalicelib.validation.phones import fuse_caller_id


def fuse_phone_number(phone: str, caller_id: str, dtmf: str | None) -> str:
    """`tel:+16175551234;ani=6175550000;postd=12#`, the documented combined form."""
    value = f"tel:{phone};ani={fuse_caller_id(caller_id)}"
    return f"{value};postd={dtmf}" if dtmf else value


def schedule_fields(settings: CallSettings, callback_url: str) -> dict[str, str]:
    """The fields a single call and a whole list share: when, how often, where to report."""
    fields = {"result_url": callback_url}
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


def fuse_form_fields(request: CallRequest, callback_url: str, opt_out_url: str) -> dict[str, str]:
    """The variables go as `metadata`, with the call's own `opt_out_url` beside them (the
    Fuse application posts to it when the callee asks not to be called again)."""
    settings = request.settings
    variables = {**request.variables, OPT_OUT_URL: opt_out_url}
    return {
        "phone_number": fuse_phone_number(request.phone, settings.caller_id, settings.dtmf),
        **schedule_fields(settings, callback_url),
        "metadata": json.dumps(variables, separators=(",", ":")),
    }

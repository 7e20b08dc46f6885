"""The one logger: JSON lines (Powertools Logger) shared with Chalice's own `app.log`.

Log call ids, references, campaigns and outcome codes freely, and never a secret or token: what
holds a phone number is masked by what it is, not by its field's name. Every string a line
carries is masked where it holds a run of digits long enough to be a phone number (a reference
that is a phone, a campaign named by one, Fuse's error quoting the number it refused), but for
the ids the bridge and AWS make themselves (SAFE_KEYS), whose digits are no one's number.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from aws_lambda_powertools import Logger

SERVICE = "fuse-bridge"
# Runs of 7+ digits, with the separators numbers are written with.
DIGIT_RUN = re.compile(r"\+?\d[\d\s()./_-]{5,}\d")
# A date (and its hour) is such a run too, and no one's number: kept readable.
DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2})?")
# A whole number of a phone's length (10 to 15 digits) is logged masked, as text, but under a
# name that says it is a time (epoch seconds and milliseconds are that long too).
PHONE_LENGTH = range(10, 16)
TIMES = ("_at", "_ms", "_s", "_seconds", "_until", "timestamp", "second")
SAFE_KEYS = frozenset(
    {
        "timestamp",
        "lambda_request_id",
        "xray_trace_id",
        "function_request_id",
        "call_id",
        "batch_id",
        "bulk_id",
        "fuse_call_id",
        "source_id",
        "message_id",
        "webhook_id",
    }
)


def mask_digit_runs(text: str) -> str:
    """`call 6175551234 now` -> `call 61…34 now`: enough to tell two apart, not to dial."""
    return DIGIT_RUN.sub(_mask, text)


def _mask(run: re.Match[str]) -> str:
    text = run.group()
    return text if DATE.fullmatch(text) else text[:2] + "…" + text[-2:]


def masked(value: Any, key: str = "") -> Any:
    """Every string (and long number) masked, but the values of SAFE_KEYS, the bridge's and
    AWS's own ids; what is nested under one is masked as anywhere else."""
    if isinstance(value, str):
        if key in SAFE_KEYS:
            return value
        return mask_digit_runs(value) if DIGIT_RUN.search(value) else value
    if isinstance(value, int) and not isinstance(value, bool):
        if (
            len(str(abs(value))) in PHONE_LENGTH
            and key not in SAFE_KEYS
            and not key.endswith(TIMES)
        ):
            return mask_digit_runs(str(value))
        return value
    if isinstance(value, dict):  # its names too: a map of phones to anything
        return {masked(str(k)): masked(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [masked(v) for v in value]
    return value


def serialize(log: dict[str, Any]) -> str:
    """A log line as Powertools writes it, each value masked first."""
    return json.dumps(masked(log), default=str, separators=(",", ":"), ensure_ascii=False)


logger = Logger(
    service=os.environ.get("POWERTOOLS_SERVICE_NAME", SERVICE), json_serializer=serialize
)

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
LONGEST_SAFE_NUMBER = 999_999  # a number of more digits is logged masked, as a string
SAFE_KEYS = frozenset(
    {
        "timestamp",
        "lambda_request_id",
        "xray_trace_id",
        "function_request_id",
        "call_id",
        "batch_id",
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
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > LONGEST_SAFE_NUMBER:
        return value if key in SAFE_KEYS else mask_digit_runs(str(value))
    if isinstance(value, dict):
        return {k: masked(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [masked(v) for v in value]
    return value


def serialize(log: dict[str, Any]) -> str:
    """A log line as Powertools writes it, each value masked first."""
    return json.dumps(masked(log), default=str, separators=(",", ":"), ensure_ascii=False)


logger = Logger(
    service=os.environ.get("POWERTOOLS_SERVICE_NAME", SERVICE), json_serializer=serialize
)

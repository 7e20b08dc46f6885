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
DIGIT_RUN = re.compile(r"\+?\d[\d\s().-]{5,}\d")
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
    return DIGIT_RUN.sub(lambda m: m.group()[:2] + "…" + m.group()[-2:], text)


def masked(value: Any, key: str = "") -> Any:
    if key in SAFE_KEYS:
        return value
    if isinstance(value, str):
        return mask_digit_runs(value) if DIGIT_RUN.search(value) else value
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

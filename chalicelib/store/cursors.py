"""The opaque `next` of a page of calls: DynamoDB's last key, encoded, and checked on return."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from chalicelib.errors import InvalidCursor


def encode_cursor(last_key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(last_key, separators=(",", ":")).encode()).decode()


def decode_cursor(cursor: str, reference: str) -> dict[str, Any]:
    """Back into DynamoDB's key; refused if forged or for another reference's list."""
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        valid = (
            isinstance(key, dict)
            and set(key) == {"pk", "sk", "reference", "created_at"}
            and key["reference"] == {"S": reference}
            and set(key["created_at"]) == {"N"}
            and all(set(key[k]) == {"S"} for k in ("pk", "sk"))
        )
    except (ValueError, binascii.Error, TypeError, KeyError):
        valid = False
    if not valid:
        raise InvalidCursor()
    return key

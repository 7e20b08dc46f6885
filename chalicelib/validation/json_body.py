"""Reading a JSON body someone sent: bounded in size and nesting, UTF-8 text, no lone surrogates.

Every way a body can be wrong is a BridgeError (400 `invalid_json` or 413), never a crash: a
`[` repeated 20,000 times would blow Python's recursion limit inside the parser, and a `\\ud800`
escape parses into a string that cannot be written back out as UTF-8 (to DynamoDB, to a log, to
an answer). The nesting limit is far above any real request (a list is four deep) and far below
the recursion limit, so nothing downstream can recurse too deep either.
"""

from __future__ import annotations

import json
import re
from typing import Any

from chalicelib.errors import InvalidJson, PayloadTooLarge

MAX_DEPTH = 32
STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
BRACKET = re.compile(rb"[\[\]{}]")
# Only an escape can put a surrogate in a parsed string: UTF-8 itself cannot encode one.
SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
SURROGATE = re.compile("[\ud800-\udfff]")
BOM = b"\xef\xbb\xbf"


def nesting_depth(raw: bytes) -> int:
    """How deep the brackets outside strings go (no parsing, so no recursion)."""
    depth = deepest = 0
    for bracket in BRACKET.findall(STRING.sub(b'""', raw)):
        if bracket in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def has_lone_surrogate(value: Any) -> bool:
    """A string (value or key) holding half of a UTF-16 pair, anywhere in a parsed body."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if not item.isascii() and SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            pending += item.keys()
            pending += item.values()
        elif isinstance(item, list):
            pending += item
    return False


def read_json(raw: bytes | None, max_bytes: int) -> Any:
    """The parsed body, or InvalidJson / PayloadTooLarge saying what is wrong with it."""
    raw = raw or b""
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"the body is {len(raw)} bytes; at most {max_bytes} are accepted")
    raw = raw.removeprefix(BOM)
    if not raw.strip():
        raise InvalidJson("the body is empty; send a JSON object")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidJson("the body is not UTF-8 text") from None
    if nesting_depth(raw) > MAX_DEPTH:
        raise InvalidJson(f"the body nests deeper than {MAX_DEPTH} levels")
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as err:
        raise InvalidJson(
            f"the body is not valid JSON: {err.msg} at line {err.lineno} column {err.colno}"
        ) from None
    except (ValueError, RecursionError) as err:
        raise InvalidJson(f"the body is not valid JSON: {err}") from None
    if SURROGATE_ESCAPE.search(raw) and has_lone_surrogate(value):
        raise InvalidJson("the body holds a \\u escape of half a UTF-16 surrogate pair")
    return value


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")

"""Reading a form's fields as PHP does: `events[0][event]=dialing` nests, `a[]=` appends.

Shared by Fuse's form callbacks (results/bodies.py) and CRMs' form webhooks (placing/webhooks.py).
Pure, and bounded: keys at most MAX_KEY_DEPTH deep (deeper ones are kept as flat names), and
repeated `a[]=` keys in linear time, however many.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

PHP_KEY = re.compile(r"([^\[\]]+)((?:\[[^\[\]]*\])*)")
SEGMENT = re.compile(r"\[([^\[\]]*)\]")
DIGITS = re.compile(r"[0-9]{1,9}")  # ASCII only: "²".isdigit() is True, and int("²") fails
MAX_KEY_DEPTH = 8


class OverwrittenField(ValueError):
    """Two keys of a form name one field (`phone` and `phone[x]`, `tags[]` and `tags[0]`)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"form field {key[:64]!r} names a field another key already gave")
        self.key = key


def nest_php_keys(pairs: Iterable[tuple[str, str]], *, strict: bool = False) -> dict[str, Any]:
    """`events[0][event]=dialing` -> {"events": [{"event": "dialing"}]}, as PHP reads forms.

    A key nested deeper than MAX_KEY_DEPTH is kept whole, as a flat name. PHP lets a later key
    overwrite what an earlier one gave (`phone=1&phone[x]=2`, `a[]=x&a[0]=y`); tolerant of
    Fuse, a caller's form is `strict`: such a pair raises OverwrittenField, since which value
    was meant cannot be known."""
    root: dict[str, Any] = {}
    appended: dict[int, int] = {}  # per node: the next number `a[]=` takes (linear, not N^2)
    for key, value in pairs:
        match = PHP_KEY.fullmatch(key)
        path = [match.group(1), *SEGMENT.findall(match.group(2))] if match else [key]
        if len(path) > MAX_KEY_DEPTH:
            path = [key]
        node = root
        for index, segment in enumerate(path):
            name = segment
            if not name:  # `a[]=x` appends: the next free number at this level
                name = str(appended.get(id(node), 0))
            if DIGITS.fullmatch(name):
                appended[id(node)] = max(appended.get(id(node), 0), int(name) + 1)
            if index == len(path) - 1:
                if strict and name in node:
                    raise OverwrittenField(key)
                node[name] = value
            else:
                child = node.get(name)
                if not isinstance(child, dict):
                    if strict and child is not None:
                        raise OverwrittenField(key)
                    child = node[name] = {}
                node = child
    # The top level stays an object whatever its names: only what is under a name can be a list.
    return {name: _lists_from_numbered_dicts(v, MAX_KEY_DEPTH) for name, v in root.items()}


def _lists_from_numbered_dicts(value: Any, depth: int) -> Any:
    if isinstance(value, dict) and depth > 0:
        converted = {k: _lists_from_numbered_dicts(v, depth - 1) for k, v in value.items()}
        if converted and all(DIGITS.fullmatch(k) for k in converted):
            return [converted[k] for k in sorted(converted, key=int)]
        return converted
    return value

"""The published contract: chalicelib/openapi.json, served at GET /openapi.json.

The file is the source (kept in the repo, packaged with the code, tested route by route against
the app); serving only adds `servers`, this deployment's public base URL, so a client generator
or schemathesis pointed at the served document reaches this very API.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

DOCUMENT = Path(__file__).with_name("openapi.json")


@functools.cache
def stored_document() -> dict[str, Any]:
    """Read once per warm container; only GET /openapi.json pays for it."""
    return json.loads(DOCUMENT.read_text(encoding="utf-8"))


def api_document(base_url: str | None) -> dict[str, Any]:
    """The document as served: with `servers` when the public base URL is known."""
    document = stored_document()
    if not base_url:
        return document
    return {**document, "servers": [{"url": base_url}]}

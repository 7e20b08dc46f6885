"""What the bridge remembers about a call, and the answer it gave, as frozen values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# A call's life in the bridge, before Fuse's callback (next issue) adds its outcome.
PENDING = "pending"  # the bridge is asking Fuse now; holds the idempotency key
QUEUED = "queued"  # Fuse gave a call_id
UNKNOWN = "unknown"  # the request reached Fuse, no readable answer came back


@dataclass(frozen=True)
class Reply:
    """An HTTP answer, kept so that a replay with the same idempotency key gets it again."""

    status: int
    body: Mapping[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CallRecord:
    id: str
    status: str
    request_hash: str
    created_at: int
    lock_until: int
    request: Mapping[str, Any] = field(default_factory=dict)
    reference: str | None = None
    campaign: str | None = None
    fuse_call_id: str | None = None
    reply: Reply | None = None

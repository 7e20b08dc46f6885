"""What the bridge remembers about a call or a list, the replies it gave, and what Fuse told it.

Shared by every part: values only, no I/O. Words kept apart on purpose: a *callback* is what Fuse
sends the bridge about a call; a *delivery* is what the bridge sends an integration about it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

# A call's life in the bridge. After these, its status is the outcome Fuse reports
# (completed, failed, canceled, rejected, or Fuse's own word).
PENDING = "pending"  # the bridge is asking Fuse now; holds the idempotency key
WAITING = "waiting"  # accepted and held, waiting for its turn to go to Fuse in a bulk
QUEUED = "queued"  # Fuse gave a call_id
UNKNOWN = "unknown"  # the request reached Fuse, no readable answer came back
REJECTED = "rejected"  # a request from an event that can never be placed: kept, never retried
EXPIRED = "expired"  # it waited past its own end (or the longest wait) and was never sent
CANCEL_REQUESTED = "cancel_requested"  # shown, never stored: its campaign's pending calls were
# canceled after it was queued (a marker per campaign), and its result has not come yet

# Where a callback came from: Fuse posted it to the call's callback URL, or the reconciler read
# it from Fuse's status API (the stored `source` attribute).
SOURCE_CALLBACK = "callback"
SOURCE_POLL = "poll"

DEFAULT_INTEGRATION = "default"  # the integration of `api_tokens`, and of records from before
# A queue message's decision (SQS, EventBridge): it comes back later and is tried again, or it is
# done (deleted from its queue).
RETRY, DONE = "retry", "done"
MAX_ID_LENGTH = 64  # longer than any id the bridge gives: not looked up at all


class Kind(Enum):
    """What a record is. A list's record holds the list's idempotency key; each of its
    contacts is a call of its own."""

    CALL = "call"
    LIST = "list"
    BULK = "bulk"  # a bulk_queue request of waiting calls: which call each phone is


@dataclass(frozen=True)
class Reply:
    """An HTTP answer, kept so that a replay with the same idempotency key gets it again."""

    status: int
    body: Mapping[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Placement:
    """What placing a call or a list came to: its id, its status as the answer states it
    (queued, unknown, rejected), and the answer a caller gets. Event handlers decide on the
    status; HTTP routes return the reply."""

    id: str
    status: str
    reply: Reply


@dataclass(frozen=True)
class CallRecord:
    """One call (or list) as the store keeps it: the lock that makes "never twice", what was
    asked, what Fuse said and the answer a replay gives. Only the store knows its item."""

    id: str
    status: str
    request_hash: str
    created_at: int
    lock_until: int
    kind: Kind = Kind.CALL
    request: Mapping[str, Any] = field(default_factory=dict)
    reference: str | None = None
    campaign: str | None = None
    fuse_call_id: str | None = None
    reply: Reply | None = None
    updated_at: int = 0
    # The newest outcome, as shown by GET /calls/{id}: CallResult JSON plus received_at, source.
    result: Mapping[str, Any] | None = None
    needs_publish: bool = False
    list_id: str | None = None  # a contact's call: the list it came in, and its place there
    list_index: int | None = None
    check_after: int | None = None  # when set, the reconciler looks at the call from then on
    integration: str = DEFAULT_INTEGRATION  # whose it is: only it (or an admin) sees it
    # Its newest outcome's delivery to the integration, as the last attempt left it, if any.
    delivery: Mapping[str, Any] | None = None
    expires_at: int = 0  # when it leaves the table; what is kept beside it leaves with it
    bulk_id: str | None = None  # the bulk it went to Fuse in (or is being sent in)
    members: Mapping[str, str] | None = None  # a bulk's: each phone (E.164) and its call

    @property
    def never_placed(self) -> bool:
        """Settled by the bridge itself, never sent to Fuse: refused (an event's request that
        can never be placed) or expired (it waited past its time). A call Fuse rejected has the
        same status word, and Fuse's result."""
        unsent = self.result is None and self.fuse_call_id is None
        return self.status in (REJECTED, EXPIRED) and unsent


@dataclass(frozen=True)
class Callback:
    """One body Fuse sent about a call: posted to its callback URL, or read from Fuse's status
    API by the reconciler (`source`). Kept as received (bytes and Content-Type) even when it
    could not be read."""

    call_id: str
    source: str
    received_at: int
    content_type: str
    body: bytes
    body_size: int
    digest: str
    parsed: Mapping[str, Any] | None = None
    parse_error: str | None = None

    @property
    def truncated(self) -> bool:
        return self.body_size > len(self.body)

"""Waiting calls on their way to Fuse in a bulk: read many at once, claimed for one bulk (the
conditional write is the lock: a call is in one bulk at most, however many dispatchers see its
message), released when Fuse certainly took nothing, and settled with what Fuse said. Reached
as `CallStore.dispatch`; loaded only by what dispatches."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import Any

from chalicelib.errors import StoreUnavailable
from chalicelib.records import EXPIRED, PENDING, QUEUED, WAITING, CallRecord, Kind, Reply
from chalicelib.store.items import (
    IN_OPEN_CALLS,
    OPEN,
    compact_json,
    key,
    record_from_item,
    reply_to_json,
)
from chalicelib.store.table import ConditionFailed, Table

BATCH_GET = 100  # DynamoDB's most keys per BatchGetItem


class Dispatch:
    def __init__(self, table: Table) -> None:
        self._table = table

    def calls(self, call_ids: list[str]) -> list[CallRecord]:
        """The calls that exist among these, read consistently, a hundred a request."""
        unique = list(dict.fromkeys(call_ids))
        found: list[CallRecord] = []
        for start in range(0, len(unique), BATCH_GET):
            keys = [key(call_id) for call_id in unique[start : start + BATCH_GET]]
            request: dict[str, Any] = {self._table.name: {"Keys": keys, "ConsistentRead": True}}
            for _ in range(5):  # what DynamoDB left unprocessed, asked again
                answer = self._table.request("batch_get_item", RequestItems=request)
                items = answer.get("Responses", {}).get(self._table.name, [])
                found += [record_from_item(i) for i in items]
                request = answer.get("UnprocessedKeys") or {}
                if not request:
                    break
            if request:  # still throttled: the whole batch comes back, none taken for gone
                raise StoreUnavailable("the call store is throttling; retry later")
        return found

    def bulk_queued(
        self, bulk_id: str, fuse_ids: Mapping[str, str] | None, fuse_response: str, now: int
    ) -> None:
        """The bulk went: Fuse's answer, and each call's Fuse id (by call) when it listed them,
        so that a claim its dispatcher never settled is settled with its id."""
        with contextlib.suppress(ConditionFailed):  # settled otherwise meanwhile
            self._table.update(
                key(bulk_id, Kind.BULK),
                {
                    "status": QUEUED,
                    "updated_at": now,
                    "fuse_response": fuse_response,
                    "fuse_ids": compact_json(dict(fuse_ids)) if fuse_ids else None,
                },
                condition="#status = :pending",
                values={":pending": {"S": PENDING}},
            )

    def fuse_id_in_bulk(self, bulk_id: str, call_id: str) -> str | None:
        """The Fuse id a queued bulk's answer gave this call, if it gave one."""
        item = (
            self._table.request(
                "get_item",
                Key=key(bulk_id, Kind.BULK),
                ProjectionExpression="fuse_ids",
                ConsistentRead=True,
            ).get("Item")
            or {}
        )
        found = json.loads(item.get("fuse_ids", {}).get("S", "{}")).get(call_id)
        return found if isinstance(found, str) else None

    def claim(self, call_id: str, bulk_id: str, until: int) -> bool:
        """The call is this bulk's, if it is still waiting and in no other; `until` is when a
        claim whose bulk never reported counts as sent (its dispatcher died)."""
        try:
            self._table.update(
                key(call_id),
                {"bulk_id": bulk_id, "lock_until": until},
                condition="#status = :waiting AND attribute_not_exists(bulk_id)",
                values={":waiting": {"S": WAITING}},
            )
        except ConditionFailed:
            return False
        return True

    def release(self, call_id: str, bulk_id: str, retry_at: int) -> None:
        """Fuse certainly took nothing: the call waits again, free for another bulk, and the
        reconciler hands it to the queue again if no message brings it back by `retry_at`."""
        with contextlib.suppress(ConditionFailed):
            self._table.update(
                key(call_id),
                {"open_shard": OPEN, "check_after": retry_at},
                ("bulk_id",),
                condition="bulk_id = :bulk AND #status = :waiting",
                values={":bulk": {"S": bulk_id}, ":waiting": {"S": WAITING}},
            )

    def expire(self, call_id: str, reply: Reply, now: int, status: str = EXPIRED) -> bool:
        """A waiting call in no bulk, settled as never sent: expired, or rejected (its reply
        says why); False when it left the wait meanwhile."""
        try:
            self._table.update(
                key(call_id),
                {"status": status, "reply": reply_to_json(reply), "updated_at": now},
                IN_OPEN_CALLS,
                condition="#status = :waiting AND attribute_not_exists(bulk_id)",
                values={":waiting": {"S": WAITING}},
            )
        except ConditionFailed:
            return False
        return True

    def settle(
        self,
        call_id: str,
        bulk_id: str,
        status: str,
        now: int,
        *,
        fuse_call_id: str | None = None,
        check_after: int | None = None,
        reply: Reply | None = None,
    ) -> None:
        """What Fuse said of the bulk, on one of its calls (queued, unknown, rejected, with its
        Fuse id when Fuse listed one). A callback that came first keeps its outcome: then only
        Fuse's id is kept (and the call opened to the reconciler)."""
        opened = {"open_shard": OPEN, "check_after": check_after} if check_after else {}
        learnt = {"updated_at": now, "fuse_call_id": fuse_call_id, **opened}
        removed = () if check_after else IN_OPEN_CALLS
        kept = {"reply": reply_to_json(reply)} if reply is not None else {}
        try:
            self._table.update(
                key(call_id),
                {"status": status, **kept, **learnt},
                removed,
                condition="bulk_id = :bulk AND #status = :waiting",
                values={":bulk": {"S": bulk_id}, ":waiting": {"S": WAITING}},
            )
        except ConditionFailed:
            with contextlib.suppress(ConditionFailed):
                self._table.update(
                    key(call_id),
                    learnt,
                    condition="bulk_id = :bulk",
                    values={":bulk": {"S": bulk_id}},
                )

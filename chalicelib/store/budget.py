"""The budgets of a Fuse account, each held in one item for every container and every way in:
when its next single `queue` request may go, and its next `bulk_queue` request (requests are
spaced 1/rate apart, so no second ever holds more than the rate), and until when both are shut
(a breaker, opened when Fuse failed, kept on the single queues' item). A conditional write is
the lock: of two containers asking for the same slot, one gets it. Reached as
`CallStore.budget`; loaded only where calls are paced."""

from __future__ import annotations

import hashlib
import math
from typing import Any

from chalicelib.store.table import ConditionFailed, Table


class Budget:
    def __init__(self, table: Table) -> None:
        self._table = table

    def take(self, account: str, now: float, rate: float, *, bulk: bool = False) -> bool:
        """The next single queue request's slot (or bulk request's), if it has come and the
        breaker is not open: one conditional write, no read. Taking it moves the next slot
        1/rate on."""
        if rate <= 0:
            return False
        now_ms = math.floor(now * 1000)
        try:
            self._table.request(
                "update_item",
                Key=_key(account, "bulk-budget" if bulk else "budget"),
                UpdateExpression="SET next_slot_ms = :next",
                ConditionExpression=(
                    "(attribute_not_exists(next_slot_ms) OR next_slot_ms <= :now)"
                    " AND (attribute_not_exists(shut_until) OR shut_until <= :second)"
                ),
                ExpressionAttributeValues={
                    ":now": {"N": str(now_ms)},
                    ":next": {"N": str(now_ms + math.ceil(1000 / rate))},
                    ":second": {"N": str(math.floor(now))},
                },
            )
        except ConditionFailed:
            return False
        return True

    def shut(self, account: str, until: int) -> None:
        """Fuse failed: no single queue request of this account (and no bulk) until `until`;
        then requests go again at the rate (the first one after it is the probe: a failure
        shuts it again)."""
        try:
            self._table.request(
                "update_item",
                Key=_key(account),
                UpdateExpression="SET shut_until = :until",
                ConditionExpression="attribute_not_exists(shut_until) OR shut_until < :until",
                ExpressionAttributeValues={":until": {"N": str(until)}},
            )
        except ConditionFailed:  # shut until later already
            return

    def shut_until(self, account: str) -> int:
        item = self._table.request("get_item", Key=_key(account), ConsistentRead=True).get("Item")
        return int((item or {}).get("shut_until", {}).get("N", "0"))


def _key(account: str, budget: str = "budget") -> dict[str, Any]:
    """Items per Fuse account, named by a digest (no email in a key)."""
    digest = hashlib.sha256(account.encode()).hexdigest()[:32]
    return {"pk": {"S": f"fuse-budget#{digest}"}, "sk": {"S": budget}}

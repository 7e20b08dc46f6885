"""What the bridge counts of a phone number, under a keyed hash of it (never the number): the
calls that may ring it, each at its moment.

Two items per number (the do-not-call entry is suppressions.py's), so that a list sync of 10,000
opt-outs is batch writes that cannot touch the counters. Taking a call is one transaction: a
check that the number is not suppressed and a conditional append to its calls. Each call is kept
at the moment it may first ring (a call scheduled for tomorrow counts tomorrow), once per
attempt. While the list is shorter than the cap allows, whatever the moments, the append is the
only request; a longer list is read from the failed condition itself, its calls counted within
24 hours either side of the new one, pruned of those past, and written back under its version.
Reached as `CallStore.numbers`.
"""

from __future__ import annotations

import math
import time
from typing import Any

from chalicelib.errors import StoreUnavailable
from chalicelib.store.table import ConditionFailed, Table, TransactionConflict

WINDOW_SECONDS = 86400  # "in any 24 hours"
# A call may be scheduled up to a year ahead: its entry is kept that long (and pruned once past).
KEPT_SECONDS = 368 * 86400
MAX_ENTRIES = 400  # calls counted on one number at once, every future one included
TRIES = 4  # lost races before the store is called unavailable (each is another caller's call)


class Suppressed(Exception):
    """The number is on the do-not-call list."""


class OverCap(Exception):
    """The number has had `cap` calls in the last 24 hours; the next may go at `frees_at`."""

    def __init__(self, frees_at: int) -> None:
        super().__init__(f"over its cap until {frees_at}")
        self.frees_at = frees_at


class Numbers:
    def __init__(self, table: Table) -> None:
        self._table = table

    # --- the cap -------------------------------------------------------------------------------
    def take(
        self,
        key: str,
        call_id: str,
        *,
        now: float,
        ring_at: float,
        weight: int,
        cap: int,
        checked: bool = False,
    ) -> None:
        """Counts `call_id` against the number at `ring_at` (when it may first ring), `weight`
        times (each of its attempts may ring), if the number is not suppressed and no 24 hours
        around that moment would hold more than `cap` (cap 0: no cap, only the list is
        checked). Raises Suppressed or OverCap; StoreUnavailable if races keep being lost.
        `checked`: the list was read already (a list's contacts, in batches)."""
        if cap <= 0:
            if checked:
                return
            listed = self._table.request(
                "get_item", Key=number_item_key(key, "suppressed"), ConsistentRead=True
            )
            if "Item" in listed:
                raise Suppressed()
            return
        at = math.floor(ring_at)
        entries = [{"M": {"t": {"N": str(at)}, "c": {"S": call_id}}}] * weight
        expires = {"N": str(math.floor(now) + KEPT_SECONDS)}
        # Fewer than cap - weight calls of any time at all: under the cap, whenever they ring.
        update: dict[str, Any] = {
            "UpdateExpression": (
                "SET calls = list_append(if_not_exists(calls, :none), :entries),"
                " v = if_not_exists(v, :zero) + :one, expires_at = :expires"
            ),
            "ConditionExpression": "attribute_not_exists(calls) OR size(calls) <= :room",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            "ExpressionAttributeValues": {
                ":none": {"L": []},
                ":entries": {"L": entries},
                ":zero": {"N": "0"},
                ":one": {"N": "1"},
                ":expires": expires,
                ":room": {"N": str(cap - weight)},
            },
        }
        for attempt in range(TRIES):
            try:
                if checked:
                    self._table.request("update_item", Key=number_item_key(key, "calls"), **update)
                else:
                    self._transact(key, update)
            except TransactionConflict:
                import random  # noqa: PLC0415 - only a lost race needs it

                time.sleep(random.uniform(0, 0.02 * 2**attempt))  # noqa: S311 - jitter only
                continue
            except ConditionFailed as lost:
                if not checked and lost.reasons[:1] == ("ConditionalCheckFailed",):
                    raise Suppressed() from None
                update = _pruned(lost.item or {}, entries, now=now, at=at, cap=cap, expires=expires)
            else:
                return
        raise StoreUnavailable("the call store was too busy to count this call; retry later")

    def give_back(self, key: str, call_id: str) -> None:
        """Uncounts a call that was refused or certainly never queued."""
        for _ in range(TRIES):
            answer = self._table.request(
                "get_item", Key=number_item_key(key, "calls"), ConsistentRead=True
            )
            item = answer.get("Item")
            calls = (item or {}).get("calls", {}).get("L", [])
            kept = [c for c in calls if c["M"]["c"]["S"] != call_id]
            if item is None or len(kept) == len(calls):
                return
            try:
                self._table.request(
                    "update_item",
                    Key=number_item_key(key, "calls"),
                    UpdateExpression="SET calls = :kept, v = v + :one",
                    ConditionExpression="v = :v",
                    ExpressionAttributeValues={
                        ":kept": {"L": kept},
                        ":one": {"N": "1"},
                        ":v": item["v"],
                    },
                )
            except ConditionFailed:
                continue
            else:
                return
        raise StoreUnavailable("the call store was too busy to uncount a call; retry later")

    def _transact(self, key: str, update: dict[str, Any]) -> None:
        self._table.request(
            "transact_write_items",
            TransactItems=[
                {
                    "ConditionCheck": {
                        "TableName": self._table.name,
                        "Key": number_item_key(key, "suppressed"),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {
                    "Update": {
                        "TableName": self._table.name,
                        "Key": number_item_key(key, "calls"),
                        **update,
                    }
                },
            ],
        )


def _pruned(
    item: dict[str, Any],
    entries: list[dict[str, Any]],
    *,
    now: float,
    at: int,
    cap: int,
    expires: dict[str, str],
) -> dict[str, Any]:
    """The list's update when it is long: calls already past their 24 hours dropped, this
    one's entries added, under the version read; OverCap when the 24 hours either side of `at`
    (any day holding it) would hold more than `cap`."""
    kept = [c for c in item.get("calls", {}).get("L", []) if _moment(c) > now - WINDOW_SECONDS]
    near = sorted(_moment(c) for c in kept if abs(_moment(c) - at) < WINDOW_SECONDS)
    over = len(near) + len(entries) - cap
    if over > 0 or len(kept) + len(entries) > MAX_ENTRIES:
        frees = near[over - 1] + WINDOW_SECONDS if 0 < over <= len(near) else at + WINDOW_SECONDS
        raise OverCap(frees)
    return {
        "UpdateExpression": "SET calls = :calls, v = v + :one, expires_at = :expires",
        "ConditionExpression": "v = :v",
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        "ExpressionAttributeValues": {
            ":calls": {"L": [*kept, *entries]},
            ":one": {"N": "1"},
            ":expires": expires,
            ":v": item.get("v", {"N": "0"}),
        },
    }


def _moment(entry: dict[str, Any]) -> int:
    return int(entry["M"]["t"]["N"])


def number_item_key(key: str, kind: str) -> dict[str, Any]:
    return {"pk": {"S": f"number#{key}"}, "sk": {"S": kind}}

"""The do-not-call list, one for the deployment: an item per number, under a keyed hash of it
(never the number), beside its counts (numbers.py). Reached as `CallStore.suppressions`; only
the routes of the list, lists of contacts and the dispatcher load it (a call checks the list in
its count's transaction)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.errors import StoreUnavailable
from chalicelib.store.numbers import TRIES, number_item_key
from chalicelib.store.table import ConditionFailed, Table

MAX_REASON = 200
BATCH_READS = 100  # DynamoDB's most per BatchGetItem


@dataclass(frozen=True)
class Suppression:
    """A number on the do-not-call list: since when, who put it there, and why (if said)."""

    at: int
    by: str
    reason: str | None = None


class Suppressions:
    def __init__(self, table: Table) -> None:
        self._table = table

    def suppress(self, key: str, suppression: Suppression) -> Suppression:
        """Puts the number on the list, unless it is on it already: the first who and when
        stay. Returns what the list holds."""
        try:
            self._table.request(
                "put_item",
                Item=_suppression_item(key, suppression),
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ConditionFailed as held:
            return _suppression(held.item) if held.item else suppression
        return suppression

    def suppress_all(self, keys: list[str], suppression: Suppression) -> int:
        """A CRM's list sync: the numbers not on the list yet, in batch writes (read first, so
        the first who and when of one already on it stay, as with `suppress`). Returns how
        many were added."""
        held = self.suppressed_among(set(keys))
        new = [key for key in dict.fromkeys(keys) if key not in held]
        self._table.put_all([_suppression_item(key, suppression) for key in new])
        return len(new)

    def suppression(self, key: str) -> Suppression | None:
        item = self._table.request(
            "get_item", Key=number_item_key(key, "suppressed"), ConsistentRead=True
        )
        return _suppression(item["Item"]) if "Item" in item else None

    def suppressed_among(self, keys: set[str]) -> set[str]:
        """Which of these numbers are on the list (batch reads, 100 a request)."""
        found: set[str] = set()
        pending = sorted(keys)
        for start in range(0, len(pending), BATCH_READS):
            wanted = [
                number_item_key(k, "suppressed") for k in pending[start : start + BATCH_READS]
            ]
            for _ in range(TRIES * 2):
                answer = self._table.request(
                    "batch_get_item",
                    RequestItems={
                        self._table.name: {
                            "Keys": wanted,
                            "ConsistentRead": True,
                            "ProjectionExpression": "pk",
                        }
                    },
                )
                for item in answer.get("Responses", {}).get(self._table.name, []):
                    found.add(item["pk"]["S"].removeprefix("number#"))
                wanted = answer.get("UnprocessedKeys", {}).get(self._table.name, {}).get("Keys")
                if not wanted:
                    break
            else:
                raise StoreUnavailable("the call store is throttling reads; retry later")
        return found

    def unsuppress(self, key: str) -> bool:
        """Takes the number off the list; False if it was not on it."""
        answer = self._table.request(
            "delete_item", Key=number_item_key(key, "suppressed"), ReturnValues="ALL_OLD"
        )
        return "Attributes" in answer


def _suppression_item(key: str, suppression: Suppression) -> dict[str, Any]:
    item = {
        **number_item_key(key, "suppressed"),
        "at": {"N": str(suppression.at)},
        "by": {"S": suppression.by},
    }
    if suppression.reason:
        item["reason"] = {"S": suppression.reason[:MAX_REASON]}
    return item


def _suppression(item: dict[str, Any]) -> Suppression:
    return Suppression(
        at=int(item["at"]["N"]),
        by=item["by"]["S"],
        reason=item.get("reason", {}).get("S"),
    )

"""Callbacks: each body Fuse sent about a call, an item beside it, so the same body twice is
stored once; and a list's results that matched none of its contacts, beside the list. Reached
as `CallStore.callbacks`; loaded only by what receives them."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from chalicelib.records import Callback
from chalicelib.store.items import (
    CALLBACK_PREFIX,
    IN_OPEN_CALLS,
    callback_to_item,
    compact_json,
    key,
)
from chalicelib.store.table import ConditionFailed, Table, update_request


class StoreOutcome(StrEnum):
    """What storing a callback did."""

    STORED = "stored"  # new: kept, and the call's status updated if it is an outcome
    DUPLICATE = "duplicate"  # this very body was stored before; nothing changed
    UNKNOWN_CALL = "unknown_call"  # no such call; nothing stored


class Callbacks:
    def __init__(self, table: Table) -> None:
        self._table = table

    def add(
        self, callback: Callback, outcome: dict[str, Any] | None, now: int, expires_at: int
    ) -> StoreOutcome:
        """One write: the callback beside its call, and the call's status when it is an outcome."""
        put = {
            "TableName": self._table.name,
            "Item": callback_to_item(callback, expires_at),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
        exists = {"ConditionExpression": "attribute_exists(pk)"}
        call = {"TableName": self._table.name, "Key": key(callback.call_id), **exists}
        if outcome is None:
            action = {"ConditionCheck": call}
        else:
            sets = {"status": outcome["status"], "result": compact_json(outcome), "updated_at": now}
            action = {"Update": {**call, **update_request(sets, remove=IN_OPEN_CALLS)}}
        try:
            self._table.request("transact_write_items", TransactItems=[{"Put": put}, action])
        except ConditionFailed as lost:
            if lost.reasons[1:2] == ("ConditionalCheckFailed",):
                return StoreOutcome.UNKNOWN_CALL
            return StoreOutcome.DUPLICATE
        return StoreOutcome.STORED

    def keep_unmatched(self, callback: Callback, expires_at: int) -> StoreOutcome:
        """A callback kept beside its list: a list's result that matches none of its contacts
        (its `call_id` is the list's id)."""
        try:
            self._table.request(
                "put_item",
                Item=callback_to_item(callback, expires_at),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ConditionFailed:
            return StoreOutcome.DUPLICATE
        return StoreOutcome.STORED

    def unmatched(self, owner_id: str) -> list[tuple[bytes, str, int]]:
        """The bodies kept beside a list (results that matched no contact when they came):
        (body, Content-Type, received_at) each."""
        items = self._table.beside(owner_id, CALLBACK_PREFIX)
        return [(i["body"]["B"], i["content_type"]["S"], int(i["received_at"]["N"])) for i in items]

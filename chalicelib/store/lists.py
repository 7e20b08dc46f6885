"""A list's items beside its lock: each contact's call, written all at once, and the list's
reply in parts (too large for one item). Reached as `CallStore.lists`."""

from __future__ import annotations

from chalicelib.records import CallRecord, Reply
from chalicelib.store.items import record_from_item, record_to_item, reply_part_items
from chalicelib.store.table import Table

BY_BATCH = "by_batch"
REPLY_PART_BYTES = 300_000  # a stored reply is cut into items under DynamoDB's 400 KB


class Lists:
    def __init__(self, table: Table) -> None:
        self._table = table

    def put_contacts(self, records: list[CallRecord], expires_at: int) -> None:
        """A list's contacts' calls, all at once (BatchWriteItem)."""
        self._table.put_all([record_to_item(r, expires_at) for r in records])

    def save_reply(self, owner_id: str, reply: Reply, expires_at: int) -> None:
        """A list's reply, cut into parts beside it; CallStore.first_reply joins them."""
        self._table.put_all(reply_part_items(owner_id, reply, REPLY_PART_BYTES, expires_at))

    def contacts(self, list_id: str, since: int) -> list[CallRecord]:
        """Every contact's call of a list created at `since`, in list order. Contacts of an
        earlier list with the same (expired, reused) key are older: left out until TTL."""
        items = self._table.query_all(
            IndexName=BY_BATCH,
            KeyConditionExpression="batch_id = :list",
            FilterExpression="created_at >= :since",
            ExpressionAttributeValues={":list": {"S": list_id}, ":since": {"N": str(since)}},
        )
        return [record_from_item(i) for i in items]

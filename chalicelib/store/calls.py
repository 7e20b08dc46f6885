"""The bridge's table, as a few operations named for what they do. docs/data-model.md has the
table design; items.py has the item shapes.

A call's item is also its idempotency lock: a call placed with an idempotency key gets an id
derived from that key, so the conditional put that creates it cannot succeed twice. Each body
Fuse sent about a call (a callback) is an item beside it, so the same callback twice is stored
once. Two sparse indexes: `by_reference` (calls by the caller's reference, newest first) and
`open_calls` (what the reconciler must look at, by when: calls, lists with early results,
deliveries not yet attempted); `by_batch` lists a list's calls in list order (lists.py).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalicelib.errors import StoreUnavailable
from chalicelib.logs import logger
from chalicelib.records import (
    DEFAULT_INTEGRATION,
    PENDING,
    CallRecord,
    Kind,
    Reply,
)
from chalicelib.store.items import (
    CALLBACK_PREFIX,
    IN_OPEN_CALLS,
    OPEN,
    REPLY_PREFIX,
    is_delivery,
    key,
    record_from_item,
    record_to_item,
    reply_from_parts,
    reply_to_json,
)
from chalicelib.store.table import ConditionFailed, Table

if TYPE_CHECKING:
    from chalicelib.store.budget import Budget
    from chalicelib.store.callbacks import Callbacks
    from chalicelib.store.deliveries import Deliveries, Delivery
    from chalicelib.store.dispatch import Dispatch
    from chalicelib.store.lists import Lists
    from chalicelib.store.markers import Markers
    from chalicelib.store.numbers import Numbers
    from chalicelib.store.suppressions import Suppressions

BY_REFERENCE, OPEN_CALLS = "by_reference", "open_calls"


class RecordExists(Exception):
    """The id is taken: `record` is the one that holds it (as Powertools' idempotency raises
    with the old record)."""

    def __init__(self, record: CallRecord) -> None:
        super().__init__(f"record {record.id} exists")
        self.record = record


class CallStore:
    def __init__(self, table: str, dynamodb_client: Callable[[], Any]) -> None:
        self._table = Table(table, dynamodb_client)

    # Made on first use, like the modules they come from: a cold POST /calls needs none.
    @functools.cached_property
    def markers(self) -> Markers:
        """Items that are not a call's: campaign cancel times, webhook windows."""
        from chalicelib.store.markers import Markers  # noqa: PLC0415

        return Markers(self._table)

    @functools.cached_property
    def deliveries(self) -> Deliveries:
        """Each outcome's delivery beside its call, and the failed ones per integration."""
        from chalicelib.store.deliveries import Deliveries  # noqa: PLC0415

        return Deliveries(self._table)

    @functools.cached_property
    def callbacks(self) -> Callbacks:
        """What Fuse sent about each call, beside it (and a list's unmatched ones)."""
        from chalicelib.store.callbacks import Callbacks  # noqa: PLC0415

        return Callbacks(self._table)

    @functools.cached_property
    def budget(self) -> Budget:
        """Each Fuse account's single-queue budget and breaker."""
        from chalicelib.store.budget import Budget  # noqa: PLC0415

        return Budget(self._table)

    @functools.cached_property
    def dispatch(self) -> Dispatch:
        """Waiting calls claimed for bulks, and settled by them."""
        from chalicelib.store.dispatch import Dispatch  # noqa: PLC0415

        return Dispatch(self._table)

    @functools.cached_property
    def numbers(self) -> Numbers:
        """Each number's counted calls, under a keyed hash of it."""
        from chalicelib.store.numbers import Numbers  # noqa: PLC0415

        return Numbers(self._table)

    @functools.cached_property
    def suppressions(self) -> Suppressions:
        """The do-not-call list, under a keyed hash of each number."""
        from chalicelib.store.suppressions import Suppressions  # noqa: PLC0415

        return Suppressions(self._table)

    @functools.cached_property
    def lists(self) -> Lists:
        """A list's contacts' calls and its reply in parts."""
        from chalicelib.store.lists import Lists  # noqa: PLC0415

        return Lists(self._table)

    @property
    def client(self) -> Any:
        """The DynamoDB client, for counting requests in tests and the bench."""
        return self._table.client()

    # --- the idempotency lock ----------------------------------------------------------------
    def create(self, record: CallRecord, expires_at: int, now: int) -> None:
        """Creates the call or list; raises RecordExists with the holder when its id is taken.

        An item past its expiry counts as free: DynamoDB's TTL deletes lazily, days late. A key
        reused then starts clean: what the earlier life kept beside its record is deleted
        before anything is placed (see `_forget_earlier_life`).
        """
        for _ in range(2):  # a holder deleted between the put and the read frees the id
            try:
                answer = self._table.request(
                    "put_item",
                    Item=record_to_item(record, expires_at),
                    ConditionExpression="attribute_not_exists(pk) OR expires_at < :now",
                    ExpressionAttributeValues={":now": {"N": str(now)}},
                    ReturnValues="ALL_OLD",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except ConditionFailed as lost:
                holder = (
                    record_from_item(lost.item) if lost.item else self.get(record.id, record.kind)
                )
                if holder is not None:
                    raise RecordExists(holder) from None
            else:
                if answer.get("Attributes"):  # an expired record was replaced
                    self._forget_earlier_life(record)
                return
        raise StoreUnavailable("the call store keeps changing under this write; retry later")

    def _forget_earlier_life(self, record: CallRecord) -> None:
        """Deletes the items an expired record left beside its id: a list's reply in parts
        (more parts than the new reply's would corrupt its replay), the callbacks it received
        or kept (a list's kept results would be matched to the new list's contacts), its
        deliveries and their marks for a redrive (the new life's outcome, of the same status,
        would find its delivery "kept already" and never go). A list's earlier contacts are not
        read again either: `list_contacts` takes only those written since the list was created.
        If this fails, the key is freed again and nothing placed."""
        try:
            stale = [
                {"pk": item["pk"], "sk": item["sk"]}
                for prefix in (REPLY_PREFIX, CALLBACK_PREFIX)
                for item in self._table.beside(record.id, prefix)
            ]
            stale += self.deliveries.left_by(record.id)
            self._table.delete_all(stale)
        except StoreUnavailable:
            self.release(record.id, record.kind)
            raise
        logger.info("an expired key was reused", extra={"deleted_items": len(stale)})

    def settle(
        self,
        record_id: str,
        status: str,
        reply: Reply | None,
        *,
        now: int,
        kind: Kind = Kind.CALL,
        fuse_call_id: str | None = None,
        fuse_response: str | None = None,
        check_after: int | None = None,
    ) -> None:
        """Records Fuse's answer on a pending record; `check_after` opens it to the reconciler."""
        kept = reply_to_json(reply) if reply is not None else None
        learnt = {"updated_at": now, "fuse_call_id": fuse_call_id, "fuse_response": fuse_response}
        opened = {"open_shard": OPEN, "check_after": check_after} if check_after is not None else {}
        try:
            self._table.update(
                key(record_id, kind),
                {"status": status, "reply": kept, **learnt, **opened},
                condition="#status = :pending",
                values={":pending": {"S": PENDING}},
            )
        except ConditionFailed:
            # Settled first by another path: Fuse's result came before Fuse's answer did, or a
            # replay found the lock lapsed and answered `unknown`. Its status stands. Fuse's id is
            # kept, and (with check_after) opens the call to the reconciler, so a call learnt
            # late is still polled; our reply is kept only where none was given yet: one key,
            # one reply.
            with contextlib.suppress(ConditionFailed):  # never a half item for a lost record
                self._table.update(
                    key(record_id, kind), {**learnt, **opened}, condition="attribute_exists(pk)"
                )
            if kept is not None:
                with contextlib.suppress(ConditionFailed):
                    self._table.update(
                        key(record_id, kind),
                        {"reply": kept},
                        condition="attribute_not_exists(#reply)",
                    )

    def settle_stale(self, record: CallRecord, status: str, reply: Reply, now: int) -> bool:
        """Marks a record whose placing died mid-way; False when it was settled meanwhile."""
        try:
            self._table.update(
                key(record.id, record.kind),
                {"status": status, "reply": reply_to_json(reply), "updated_at": now},
                condition="#status = :pending AND lock_until < :now",
                values={":pending": {"S": PENDING}, ":now": {"N": str(now)}},
            )
        except ConditionFailed:
            return False
        return True

    def release(self, record_id: str, kind: Kind = Kind.CALL) -> None:
        """Deletes a pending record that Fuse did not queue, so the same key may try again."""
        with contextlib.suppress(ConditionFailed):  # settled meanwhile: no longer ours to free
            self._table.request(
                "delete_item",
                Key=key(record_id, kind),
                ConditionExpression="#status = :pending",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":pending": {"S": PENDING}},
            )

    def first_reply(self, record: CallRecord) -> Reply | None:
        """The reply a record's first request got: on the item itself, or, for a list's (too
        large for one item), in parts beside it."""
        if record.reply is not None:
            return record.reply
        return reply_from_parts(self._table.beside(record.id, REPLY_PREFIX))

    # --- the reconciler ----------------------------------------------------------------------
    def due_for_check(self, now: int, limit: int) -> list[CallRecord | Delivery]:
        """What the reconciler must look at now, oldest first, at most `limit`: open calls (and
        lists), and deliveries not yet attempted in their time."""
        page = self._table.request(
            "query",
            IndexName=OPEN_CALLS,
            KeyConditionExpression="open_shard = :open AND check_after <= :now",
            ExpressionAttributeValues={":open": {"S": OPEN}, ":now": {"N": str(now)}},
            Limit=limit,
        )
        items = page.get("Items", [])
        return [
            self.deliveries.of_item(i) if is_delivery(i) else record_from_item(i) for i in items
        ]

    def check_again_at(self, record_id: str, check_after: int, kind: Kind = Kind.CALL) -> None:
        self._update_existing(record_id, {"check_after": check_after}, kind=kind)

    def open_for_check(self, record_id: str, check_after: int, kind: Kind = Kind.CALL) -> None:
        """The reconciler looks at this call (or list) from `check_after` on."""
        self._update_existing(
            record_id, {"open_shard": OPEN, "check_after": check_after}, kind=kind
        )

    def mark_publish_pending(self, call_id: str, now: int) -> None:
        """A result event could not be sent: the reconciler's next run sends it."""
        self._update_existing(
            call_id, {"needs_publish": True, "open_shard": OPEN, "check_after": now}
        )

    def close(self, record_id: str, kind: Kind = Kind.CALL) -> None:
        """Nothing left for the reconciler to do with this call (or list)."""
        self._update_existing(record_id, {"needs_publish": False}, remove=IN_OPEN_CALLS, kind=kind)

    def _update_existing(
        self,
        record_id: str,
        sets: dict[str, Any],
        remove: tuple[str, ...] = (),
        kind: Kind = Kind.CALL,
    ) -> None:
        """An update of a record that may have expired meanwhile: never a half item."""
        with contextlib.suppress(ConditionFailed):
            self._table.update(key(record_id, kind), sets, remove, condition="attribute_exists(pk)")

    # --- reading -----------------------------------------------------------------------------
    def get(self, record_id: str, kind: Kind = Kind.CALL) -> CallRecord | None:
        item = self._table.request("get_item", Key=key(record_id, kind), ConsistentRead=True)
        return record_from_item(item["Item"]) if "Item" in item else None

    def existing(self, call_ids: list[str]) -> list[str]:
        """Which of these calls exist (a few, in one read), in the order given."""
        keys = [key(call_id) for call_id in dict.fromkeys(call_ids)]
        found: set[str] = set()
        request = {
            self._table.name: {"Keys": keys, "ProjectionExpression": "pk", "ConsistentRead": True}
        }
        for _ in range(3):  # keys DynamoDB left unprocessed, asked again
            answer = self._table.request("batch_get_item", RequestItems=request)
            found |= {i["pk"]["S"] for i in answer.get("Responses", {}).get(self._table.name, [])}
            request = answer.get("UnprocessedKeys") or {}
            if not request:
                return [c for c in call_ids if c in found]
        raise StoreUnavailable("the call store is throttling reads; retry later")

    def by_reference(
        self, reference: str, limit: int, cursor: str | None, integration: str | None = None
    ) -> tuple[list[CallRecord], str | None]:
        """A page of the calls with this reference, newest first, and the cursor to the next;
        with `integration`, only its calls (records from before integrations are `default`'s)."""
        query: dict[str, Any] = {
            "IndexName": BY_REFERENCE,
            "KeyConditionExpression": "reference = :reference",
            "ExpressionAttributeValues": {":reference": {"S": reference}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if integration is not None:
            query["FilterExpression"] = "integration = :integration" + (
                " OR attribute_not_exists(integration)"
                if integration == DEFAULT_INTEGRATION
                else ""
            )
            query["ExpressionAttributeValues"][":integration"] = {"S": integration}
        from chalicelib.store.cursors import decode_cursor, encode_cursor  # noqa: PLC0415 - reads

        if cursor:
            query["ExclusiveStartKey"] = decode_cursor(cursor, reference)
        page = self._table.request("query", **query)
        last = page.get("LastEvaluatedKey")
        records = [record_from_item(i) for i in page.get("Items", [])]
        return records, encode_cursor(last) if last else None

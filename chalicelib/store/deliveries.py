"""The items of deliveries: one beside its call per outcome (its body, fixed when the outcome was
stored, and how its attempts went), the newest one's state on the call itself, and one per
failed delivery under its integration, for an admin's redrive. Reached as
`CallStore.deliveries`; like the rest of store/, the only code that knows their keys and shapes.
All leave the table with their call (its `expires_at`). Loaded only by what delivers: a cold
POST /calls does not import it."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from chalicelib.store.items import DELIVERY_PREFIX, IN_OPEN_CALLS, OPEN, compact_json, key
from chalicelib.store.table import ConditionFailed, Table


@dataclass(frozen=True)
class Delivery:
    """One outcome of a call, as it goes to the call's integration: its body built once, when
    the outcome was stored, so every attempt and every redrive sends the very same bytes under
    the same `webhook_id`; and how its attempts went."""

    call_id: str
    webhook_id: str
    kind: str  # call.result | call.rejected
    integration: str
    body: bytes
    occurred_at: int  # when the bridge learnt the outcome: the body's timestamp
    state: str = "pending"  # pending | delivered | failed
    attempts: int = 0
    last_attempt_at: int | None = None
    last_error: str | None = None
    expires_at: int = 0  # its call's: it leaves the table with it


def key_of_delivery(call_id: str, webhook_id: str) -> dict[str, Any]:
    return {"pk": {"S": call_id}, "sk": {"S": DELIVERY_PREFIX + webhook_id}}


def delivery_to_item(delivery: Delivery, expires_at: int, open_until: int) -> dict[str, Any]:
    """A delivery beside its call; in the open_calls index until `open_until`, by when its
    first attempt should have been made (else the reconciler queues it again)."""
    item: dict[str, Any] = {
        **key_of_delivery(delivery.call_id, delivery.webhook_id),
        "webhook_id": {"S": delivery.webhook_id},
        "kind": {"S": delivery.kind},
        "integration": {"S": delivery.integration},
        "body": {"B": delivery.body},
        "occurred_at": {"N": str(delivery.occurred_at)},
        "state": {"S": delivery.state},
        "attempts": {"N": str(delivery.attempts)},
        "expires_at": {"N": str(expires_at)},
        "open_shard": {"S": OPEN},
        "check_after": {"N": str(open_until)},
    }
    return item


def delivery_from_item(item: dict[str, Any]) -> Delivery:
    return Delivery(
        call_id=item["pk"]["S"],
        webhook_id=item["webhook_id"]["S"],
        kind=item["kind"]["S"],
        integration=item["integration"]["S"],
        body=item["body"]["B"],
        occurred_at=int(item["occurred_at"]["N"]),
        state=item["state"]["S"],
        attempts=int(item.get("attempts", {}).get("N", "0")),
        last_attempt_at=int(item["last_attempt_at"]["N"]) if "last_attempt_at" in item else None,
        last_error=item["last_error"]["S"] if "last_error" in item else None,
        expires_at=int(item.get("expires_at", {}).get("N", "0")),
    )


class Deliveries:
    def __init__(self, table: Table) -> None:
        self._table = table

    def add(self, delivery: Delivery, expires_at: int, open_until: int) -> bool:
        """Keeps a new outcome's delivery; False when this outcome's is kept already (a copy:
        a duplicate callback, a poll after a callback), which then stands as it was."""
        try:
            self._table.request(
                "put_item",
                Item=delivery_to_item(delivery, expires_at, open_until),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ConditionFailed:
            return False
        return True

    def of_item(self, item: dict[str, Any]) -> Delivery:
        """A delivery's item as read elsewhere in the table (the reconciler's index)."""
        return delivery_from_item(item)

    def get(self, call_id: str, webhook_id: str) -> Delivery | None:
        key = key_of_delivery(call_id, webhook_id)
        item = self._table.request("get_item", Key=key, ConsistentRead=True).get("Item")
        return delivery_from_item(item) if item else None

    def of_call(self, call_id: str) -> list[Delivery]:
        return [delivery_from_item(i) for i in self._table.beside(call_id, DELIVERY_PREFIX)]

    def left_by(self, call_id: str) -> list[dict[str, Any]]:
        """The keys of what an earlier life of this call id left: its deliveries, and their
        marks for a redrive."""
        keys = []
        for item in self._table.beside(call_id, DELIVERY_PREFIX):
            keys.append({"pk": item["pk"], "sk": item["sk"]})
            if "integration" in item and "webhook_id" in item:
                integration = item["integration"]["S"]
                keys.append(_failed_key(integration, item["webhook_id"]["S"]))
                keys.append(_failed_key(integration, call_id))  # a mark from before, by call
        return list({(k["pk"]["S"], k["sk"]["S"]): k for k in keys}.values())

    def record_attempt(self, delivery: Delivery) -> bool:
        """An attempt's result (its state, attempts, time, error): the delivery was handed to
        the queue and tried, so it leaves the reconciler's index. Never over a delivered one (a
        copy of its message delivered it meanwhile): False then."""
        sets: dict[str, Any] = {
            "state": delivery.state,
            "attempts": delivery.attempts,
            "last_attempt_at": delivery.last_attempt_at,
            "last_error": delivery.last_error,
        }
        cleared = ("last_error",) if delivery.last_error is None else ()
        return self._update(delivery, sets, (*IN_OPEN_CALLS, *cleared), unless="delivered")

    def reopen(self, delivery: Delivery, was: str, open_until: int) -> bool:
        """Pending, in the reconciler's index until its next attempt, if it is still `was`
        (a redriven failure, or a pending one handed to the queue again); False otherwise."""
        sets = {"state": "pending", "open_shard": OPEN, "check_after": open_until}
        return self._update(delivery, sets, (), was)

    def fail_again(self, delivery: Delivery) -> None:
        """A redrive the queue did not take: failed again, as it was."""
        self._update(delivery, {"state": "failed"}, IN_OPEN_CALLS, "pending")

    def _update(
        self,
        delivery: Delivery,
        sets: dict[str, Any],
        remove: tuple[str, ...],
        was: str | None = None,
        unless: str | None = None,
    ) -> bool:
        condition, values = "attribute_exists(pk)", {}
        if was is not None:
            condition += " AND #state = :was"
            values[":was"] = {"S": was}
        if unless is not None:
            condition += " AND #state <> :unless"
            values[":unless"] = {"S": unless}
        try:
            self._table.update(
                key_of_delivery(delivery.call_id, delivery.webhook_id),
                sets,
                remove,
                condition=condition,
                values=values or None,
            )
        except ConditionFailed:  # gone with its call, or changed meanwhile
            return False
        return True

    def show_on_call(self, call_id: str, view: dict[str, Any], occurred_at: int) -> None:
        """The state of the delivery of the outcome that happened at `occurred_at`, on the call
        as GET /calls/{id} shows it; never over that of a newer outcome."""
        sets = {"delivery": compact_json(view), "delivery_of": occurred_at}
        with contextlib.suppress(ConditionFailed):
            self._table.update(
                key(call_id),
                sets,
                condition="attribute_exists(pk) AND "
                "(attribute_not_exists(delivery_of) OR delivery_of <= :occurred)",
                values={":occurred": {"N": str(occurred_at)}},
            )

    # --- failed deliveries, for a redrive -----------------------------------------------------
    def mark_failed(self, delivery: Delivery, now: int, expires_at: int) -> None:
        item = {
            **_failed_key(delivery.integration, delivery.webhook_id),
            "call_id": {"S": delivery.call_id},
            "failed_at": {"N": str(now)},
            "expires_at": {"N": str(expires_at)},
        }
        self._table.request("put_item", Item=item)

    def failed(self, integration: str, now: int) -> list[tuple[str, str | None]]:
        """(call id, webhook id) of each failed delivery of the integration, its call not gone
        (DynamoDB's TTL deletes days late). A marker from before deliveries were kept per
        outcome names only its call: its webhook id is None."""
        items = self._table.query_all(
            KeyConditionExpression="pk = :pk",
            FilterExpression="attribute_not_exists(expires_at) OR expires_at > :now",
            ExpressionAttributeValues={
                ":pk": _failed_key(integration, "")["pk"],
                ":now": {"N": str(now)},
            },
            ConsistentRead=True,
        )
        return [
            (i["call_id"]["S"], i["sk"]["S"]) if "call_id" in i else (i["sk"]["S"], None)
            for i in items
        ]

    def forget_failed(self, integration: str, marker: str) -> None:
        """`marker`: the webhook id (or, for a marker from before, the call id)."""
        self._table.request("delete_item", Key=_failed_key(integration, marker))


def _failed_key(integration: str, webhook_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"failed-deliveries#{integration}"}, "sk": {"S": webhook_id}}

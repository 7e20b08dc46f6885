"""The small items of the calls table that are no call's: each campaign's cancel time, each
integration's failed deliveries (for a redrive), and when a keyless webhook's body was first
seen. Reached as `CallStore.markers`; like the rest of store/, the only code that knows their
keys and shapes."""

from __future__ import annotations

from typing import Any

from chalicelib.errors import StoreUnavailable
from chalicelib.store.table import ConditionFailed, Table


class Markers:
    def __init__(self, table: Table) -> None:
        self._table = table

    # --- failed deliveries -------------------------------------------------------------------
    def mark_delivery_failed(self, integration: str, call_id: str, now: int) -> None:
        """One item per failed delivery, under its integration, for the admin's redrive."""
        item = {**_failed_delivery_key(integration, call_id), "failed_at": {"N": str(now)}}
        self._table.request("put_item", Item=item)

    def failed_deliveries(self, integration: str) -> list[str]:
        items = self._table.query_all(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": _failed_delivery_key(integration, "")["pk"]},
            ConsistentRead=True,
        )
        return [item["sk"]["S"] for item in items]

    def forget_failed_delivery(self, integration: str, call_id: str) -> None:
        self._table.request("delete_item", Key=_failed_delivery_key(integration, call_id))

    # --- native webhooks without a key ------------------------------------------------------
    def dedup_window_start(self, digest: str, now: int, window: int) -> int:
        """When a body with this digest was first seen, if within `window`; else now, which
        starts a new window (one item per digest, replaced once its window has passed)."""
        item = {
            **_dedup_key(digest),
            "first_seen": {"N": str(now)},
            "expires_at": {"N": str(now + window)},
        }
        for _ in range(2):  # an expired item deleted between the put and the read
            try:
                self._table.request(
                    "put_item",
                    Item=item,
                    ConditionExpression="attribute_not_exists(pk) OR expires_at < :now",
                    ExpressionAttributeValues={":now": {"N": str(now)}},
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except ConditionFailed as lost:
                seen = lost.item or self._table.request(
                    "get_item", Key=_dedup_key(digest), ConsistentRead=True
                ).get("Item")
                if seen:
                    return int(seen["first_seen"]["N"])
            else:
                return now
        raise StoreUnavailable("the call store keeps changing under this write; retry later")

    # --- campaigns ---------------------------------------------------------------------------
    def mark_cancel_requested(self, campaign: str, now: int) -> None:
        """One item per campaign: its calls queued before `now` read as cancel_requested until
        their results arrive (one write, however many calls the campaign has)."""
        item = {**_campaign_key(campaign), "requested_at": {"N": str(now)}}
        self._table.request("put_item", Item=item)

    def cancel_requested_at(self, campaign: str) -> int | None:
        item = self._table.request("get_item", Key=_campaign_key(campaign)).get("Item")
        return int(item["requested_at"]["N"]) if item else None


def _failed_delivery_key(integration: str, call_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"failed-deliveries#{integration}"}, "sk": {"S": call_id}}


def _dedup_key(digest: str) -> dict[str, Any]:
    return {"pk": {"S": f"dedup#{digest}"}, "sk": {"S": "dedup"}}


def _campaign_key(campaign: str) -> dict[str, Any]:
    return {"pk": {"S": f"campaign#{campaign}"}, "sk": {"S": "cancel"}}

"""The small items of the calls table that are no call's: each campaign's cancel time, and when
a keyless webhook's body was first seen. Reached as `CallStore.markers`; like the rest of
store/, the only code that knows their keys and shapes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.errors import StoreUnavailable
from chalicelib.store.table import ConditionFailed, Table


class Markers:
    def __init__(self, table: Table) -> None:
        self._table = table

    # --- native webhooks without a key ------------------------------------------------------
    def dedup_window_start(
        self,
        digest: str,
        now: int,
        window: int,
        still_open: Callable[[int], bool],
        expires_at: int,
    ) -> int:
        """When a body with this digest was first seen, if within `window`, or if the call that
        sighting named is still open (`still_open(first_seen)`: pending or unknown, and so not
        to be placed again); else now, which starts a new window. One item per digest, kept as
        long as the call it names (`expires_at`), so no TTL deletes it while that call is open
        (settings.py keeps a call at least as long as the window)."""
        item = {
            **_dedup_key(digest),
            "first_seen": {"N": str(now)},
            "window_until": {"N": str(now + window)},
            "expires_at": {"N": str(expires_at)},
        }
        for _ in range(3):  # a marker replaced or deleted between our reads and writes
            try:
                self._table.request(
                    "put_item",
                    Item=item,
                    ConditionExpression="attribute_not_exists(pk)",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except ConditionFailed as lost:
                seen = lost.item or self._table.request(
                    "get_item", Key=_dedup_key(digest), ConsistentRead=True
                ).get("Item")
                if not seen:
                    continue
                first_seen = int(seen["first_seen"]["N"])
                until = int((seen.get("window_until") or seen["expires_at"])["N"])  # or older
                if until >= now:
                    return first_seen
                # Its window has passed: the same window again while its call is open, else a
                # new one; either way only if nobody moved it meanwhile.
                kept = first_seen if still_open(first_seen) else now
                if self._move_window(digest, first_seen, kept, now + window, expires_at):
                    return kept
            else:
                return now
        raise StoreUnavailable("the call store keeps changing under this write; retry later")

    def _move_window(
        self, digest: str, was: int, first_seen: int, until: int, expires_at: int
    ) -> bool:
        try:
            self._table.update(
                _dedup_key(digest),
                {"first_seen": first_seen, "window_until": until, "expires_at": expires_at},
                condition="#first_seen = :was",
                values={":was": {"N": str(was)}},
            )
        except ConditionFailed:
            return False
        return True

    # --- campaigns ---------------------------------------------------------------------------
    def mark_cancel_requested(self, campaign: str, now: int) -> None:
        """One item per campaign: its calls queued before `now` read as cancel_requested until
        their results arrive (one write, however many calls the campaign has)."""
        item = {**_campaign_key(campaign), "requested_at": {"N": str(now)}}
        self._table.request("put_item", Item=item)

    def cancel_requested_at(self, campaign: str) -> int | None:
        item = self._table.request("get_item", Key=_campaign_key(campaign)).get("Item")
        return int(item["requested_at"]["N"]) if item else None


def _dedup_key(digest: str) -> dict[str, Any]:
    return {"pk": {"S": f"dedup#{digest}"}, "sk": {"S": "dedup"}}


def _campaign_key(campaign: str) -> dict[str, Any]:
    return {"pk": {"S": f"campaign#{campaign}"}, "sk": {"S": "cancel"}}

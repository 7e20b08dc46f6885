"""The one door to DynamoDB: every request goes through `Table.request`, which turns AWS's
failures into the bridge's (StoreUnavailable) and a lost conditional write into one named error,
ConditionFailed, that carries the item as it stood."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.errors import StoreUnavailable
from chalicelib.logs import logger
from chalicelib.store.items import attribute_value

ALIASED = re.compile(r"#(\w+)")  # a name a condition writes as #name (reserved words)
WRITERS = 4  # BatchWriteItem requests in flight at once (boto3 clients are thread-safe)
BATCH_ITEMS = 25  # DynamoDB's most per BatchWriteItem


class ConditionFailed(Exception):
    """A conditional write lost. `item` is the existing item when DynamoDB returned it (asked
    for with ReturnValuesOnConditionCheckFailure), else None; `reasons` are a transaction's
    cancellation codes, one per action."""

    def __init__(self, item: dict[str, Any] | None = None, reasons: tuple[str, ...] = ()) -> None:
        super().__init__("conditional write failed")
        self.item = item
        self.reasons = reasons


class TransactionConflict(StoreUnavailable):
    """Another transaction held an item this one writes: a lost race, to try again (or, to a
    caller that does not, the store being unavailable)."""

    def __init__(self) -> None:
        super().__init__("the call store was busy with the same item; retry shortly")


def unavailable() -> StoreUnavailable:
    return StoreUnavailable("the bridge cannot reach its call store; retry later")


class Table:
    def __init__(self, name: str, client: Callable[[], Any]) -> None:
        self.name = name
        self.client = client  # made on first use: see dependencies.py

    def request(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        """One DynamoDB request on this table."""
        if operation not in ("transact_write_items", "batch_write_item", "batch_get_item"):
            kwargs["TableName"] = self.name
        try:
            return getattr(self.client(), operation)(**kwargs)
        except ClientError as err:
            code = str(err.response.get("Error", {}).get("Code", ""))
            if code == "ConditionalCheckFailedException":
                raise ConditionFailed(err.response.get("Item")) from None
            cancelled = err.response.get("CancellationReasons", [])
            reasons = tuple(r.get("Code") or "" for r in cancelled)
            if code == "TransactionCanceledException" and "ConditionalCheckFailed" in reasons:
                item = next((r["Item"] for r in cancelled if r.get("Item")), None)
                raise ConditionFailed(item, reasons) from None
            if code == "TransactionConflictException" or (
                code == "TransactionCanceledException" and "TransactionConflict" in reasons
            ):  # the first: a plain write to an item a transaction holds
                raise TransactionConflict() from None
            logger.error(
                "DynamoDB request failed",
                extra={"operation": operation, "aws_code": code, "reasons": reasons or None},
            )
            raise unavailable() from None
        except BotoCoreError as err:
            logger.error(
                "DynamoDB request failed",
                extra={"operation": operation, "error_type": type(err).__name__},
            )
            raise unavailable() from None

    def update(
        self,
        key: dict[str, Any],
        sets: dict[str, Any],
        remove: tuple[str, ...] = (),
        *,
        condition: str | None = None,
        values: dict[str, Any] | None = None,
    ) -> None:
        """UpdateItem: SET `sets` (a None value is left out), REMOVE `remove`, if `condition`."""
        self.request("update_item", Key=key, **update_request(sets, remove, condition, values))

    def query_all(self, **query: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            page = self.request("query", **query)
            items += page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return items
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def beside(self, owner_id: str, prefix: str) -> list[dict[str, Any]]:
        """The items kept beside a call or list under one sort-key prefix, in order."""
        return self.query_all(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": {"S": owner_id}, ":prefix": {"S": prefix}},
            ConsistentRead=True,
        )

    def put_all(self, items: list[dict[str, Any]]) -> None:
        """BatchWriteItem, 25 items a request and a few requests at once (a list of 10,000
        contacts is 400 requests, which must fit well inside API Gateway's 29 s)."""
        self._write_all([{"PutRequest": {"Item": i}} for i in items])

    def delete_all(self, keys: list[dict[str, Any]]) -> None:
        self._write_all([{"DeleteRequest": {"Key": k}} for k in keys])

    def _write_all(self, writes: list[dict[str, Any]]) -> None:
        chunks = [writes[i : i + BATCH_ITEMS] for i in range(0, len(writes), BATCH_ITEMS)]
        if len(chunks) <= 1:
            for chunk in chunks:
                self._write_chunk(chunk)
            return
        with ThreadPoolExecutor(max_workers=WRITERS) as pool:
            list(pool.map(self._write_chunk, chunks))  # list(): re-raises the first failure

    def _write_chunk(self, pending: list[dict[str, Any]]) -> None:
        """One request, sent again with backoff for what DynamoDB left unprocessed."""
        for attempt in range(8):
            answer = self.request("batch_write_item", RequestItems={self.name: pending})
            pending = answer.get("UnprocessedItems", {}).get(self.name, [])
            if not pending:
                return
            time.sleep(min(0.05 * 2**attempt, 1.0))
        raise StoreUnavailable("the call store is throttling writes; retry later")


def update_request(
    sets: dict[str, Any],
    remove: tuple[str, ...] = (),
    condition: str | None = None,
    values: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """UpdateExpression and its names and values, every name aliased (`status` and `result` are
    DynamoDB reserved words); a None value in `sets` is left out rather than written."""
    names: dict[str, str] = {}
    all_values: dict[str, Any] = {}
    assignments = []
    for name, value in sets.items():
        if value is None:
            continue
        names[f"#{name}"] = name
        all_values[f":{name}"] = attribute_value(value)
        assignments.append(f"#{name} = :{name}")
    expression = "SET " + ", ".join(assignments)
    if remove:
        names.update({f"#{name}": name for name in remove})
        expression += " REMOVE " + ", ".join(f"#{name}" for name in remove)
    request: dict[str, Any] = {"UpdateExpression": expression, "ExpressionAttributeNames": names}
    if condition is not None:
        request["ConditionExpression"] = condition
        names.update({f"#{name}": name for name in ALIASED.findall(condition)})
        all_values.update(values or {})
    if all_values:
        request["ExpressionAttributeValues"] = all_values
    return request

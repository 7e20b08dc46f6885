"""The only module that speaks DynamoDB. README "Data" has the table design.

One item per call (`pk` = call id, `sk` = "call"), which is also its idempotency lock: a call
placed with an idempotency key gets an id derived from that key, so the conditional put that
creates it cannot succeed twice. Each body received about a call is an item beside it
(`sk` = "result#<digest>"), so the same delivery twice is stored once. Two sparse indexes:
`by_reference` (calls by the caller's reference, newest first) and `open_calls` (calls the
reconciler must look at, by when).
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.errors import InvalidCursor, StoreUnavailable
from chalicelib.logs import logger
from chalicelib.records import PENDING, CallRecord, Delivery, Reply

CALL_SORT_KEY = "call"
BATCH_SORT_KEY = "batch"
REPLY_PREFIX = "reply#"
REPLY_PART_BYTES = 300_000  # a stored answer is cut into items under DynamoDB's 400 KB
WRITERS = 4  # BatchWriteItem requests in flight at once (boto3 clients are thread-safe)
BY_BATCH = "by_batch"
RESULT_PREFIX = "result#"
BY_REFERENCE = "by_reference"
OPEN_CALLS = "open_calls"
OPEN = "open"  # the one partition of open_calls: the reconciler reads it by check_after
STORED, DUPLICATE, UNKNOWN_CALL = "stored", "duplicate", "unknown_call"


def reply_to_json(reply: Reply) -> str:
    return json.dumps({"status": reply.status, "body": reply.body, "headers": dict(reply.headers)})


def reply_from_json(text: str) -> Reply:
    data = json.loads(text)
    return Reply(status=data["status"], body=data["body"], headers=data.get("headers", {}))


def record_to_item(record: CallRecord, expires_at: int) -> dict[str, Any]:
    item: dict[str, Any] = {
        "pk": {"S": record.id},
        "sk": {"S": CALL_SORT_KEY},
        "status": {"S": record.status},
        "request_hash": {"S": record.request_hash},
        "request": {"S": json.dumps(record.request, separators=(",", ":"))},
        "created_at": {"N": str(record.created_at)},
        "updated_at": {"N": str(record.created_at)},
        "lock_until": {"N": str(record.lock_until)},
        "expires_at": {"N": str(expires_at)},
    }
    if record.reference is not None:
        item["reference"] = {"S": record.reference}
    if record.campaign is not None:
        item["campaign"] = {"S": record.campaign}
    if record.reply is not None:
        item["reply"] = {"S": reply_to_json(record.reply)}
    if record.fuse_call_id is not None:
        item["fuse_call_id"] = {"S": record.fuse_call_id}
    if record.batch_id is not None:
        item["batch_id"] = {"S": record.batch_id}
        item["batch_index"] = {"N": str(record.batch_index or 0)}
    if record.check_after is not None:
        item["open_shard"] = {"S": OPEN}
        item["check_after"] = {"N": str(record.check_after)}
    return item


def record_from_item(item: dict[str, Any]) -> CallRecord:
    def text(name: str) -> str | None:
        return item[name]["S"] if name in item else None

    def number(name: str) -> int:
        return int(item[name]["N"]) if name in item else 0

    reply, result = text("reply"), text("result")
    return CallRecord(
        id=item["pk"]["S"],
        status=item["status"]["S"],
        request_hash=text("request_hash") or "",
        created_at=number("created_at"),
        updated_at=number("updated_at"),
        lock_until=number("lock_until"),
        request=json.loads(text("request") or "{}"),
        reference=text("reference"),
        campaign=text("campaign"),
        fuse_call_id=text("fuse_call_id"),
        reply=reply_from_json(reply) if reply else None,
        result=json.loads(result) if result else None,
        needs_publish=item.get("needs_publish", {}).get("BOOL", False),
        batch_id=text("batch_id"),
        batch_index=number("batch_index") if "batch_index" in item else None,
    )


def delivery_to_item(delivery: Delivery, expires_at: int) -> dict[str, Any]:
    item: dict[str, Any] = {
        "pk": {"S": delivery.call_id},
        "sk": {"S": RESULT_PREFIX + delivery.digest},
        "source": {"S": delivery.source},
        "received_at": {"N": str(delivery.received_at)},
        "content_type": {"S": delivery.content_type},
        "body": {"B": delivery.body},
        "body_size": {"N": str(delivery.body_size)},
        "truncated": {"BOOL": delivery.truncated},
        "expires_at": {"N": str(expires_at)},
    }
    if delivery.parsed is not None:
        item["parsed"] = {"S": json.dumps(delivery.parsed, separators=(",", ":"))}
    if delivery.parse_error is not None:
        item["parse_error"] = {"S": delivery.parse_error}
    return item


def error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def is_conditional_failure(err: ClientError) -> bool:
    return error_code(err) == "ConditionalCheckFailedException"


def encode_cursor(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode()


def decode_cursor(cursor: str, reference: str) -> dict[str, Any]:
    """The opaque `next` of a page back into DynamoDB's key; refused if forged or for another
    list."""
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        valid = (
            isinstance(key, dict)
            and set(key) == {"pk", "sk", "reference", "created_at"}
            and key["reference"] == {"S": reference}
            and set(key["created_at"]) == {"N"}
            and all(set(key[k]) == {"S"} for k in ("pk", "sk"))
        )
    except (ValueError, binascii.Error, TypeError, KeyError):
        valid = False
    if not valid:
        raise InvalidCursor("the cursor is not one this list gave out; start again without it")
    return key


class CallStore:
    def __init__(self, table: str, dynamodb_client: Callable[[], Any]) -> None:
        self._table = table
        self._client = dynamodb_client

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        """One DynamoDB request; conditional failures are the caller's, the rest are faults."""
        if operation not in ("transact_write_items", "batch_write_item"):
            kwargs["TableName"] = self._table
        try:
            return getattr(self._client(), operation)(**kwargs)
        except ClientError as err:
            if is_conditional_failure(err) or error_code(err) == "TransactionCanceledException":
                raise
            logger.error(
                "DynamoDB request failed",
                extra={"operation": operation, "aws_code": error_code(err)},
            )
            raise StoreUnavailable("the bridge cannot reach its call store; retry later") from None
        except BotoCoreError as err:
            logger.error(
                "DynamoDB request failed",
                extra={"operation": operation, "error_type": type(err).__name__},
            )
            raise StoreUnavailable("the bridge cannot reach its call store; retry later") from None

    # --- placing a call --------------------------------------------------------------------
    def begin(
        self, record: CallRecord, expires_at: int, now: int, sort_key: str = CALL_SORT_KEY
    ) -> CallRecord | None:
        """Creates the call (or batch); returns the existing record instead when its id is taken.

        An item past its expiry counts as free: DynamoDB's TTL deletes lazily, days late.
        """
        item = record_to_item(record, expires_at)
        item["sk"] = {"S": sort_key}
        try:
            self._call(
                "put_item",
                Item=item,
                ConditionExpression="attribute_not_exists(pk) OR expires_at < :now",
                ExpressionAttributeValues={":now": {"N": str(now)}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as err:
            if not is_conditional_failure(err):
                raise
            old = err.response.get("Item")
            return record_from_item(old) if old else self.get(record.id, sort_key)
        return None

    def settle(
        self,
        call_id: str,
        status: str,
        reply: Reply | None,
        *,
        now: int,
        fuse_call_id: str | None,
        check_after: int | None = None,
        sort_key: str = CALL_SORT_KEY,
    ) -> None:
        """Records Fuse's answer on a pending call; `check_after` opens it to the reconciler."""
        sets = {
            "reply": reply_to_json(reply) if reply is not None else None,
            "updated_at": now,
            "fuse_call_id": fuse_call_id,
        }
        if check_after is not None:
            sets.update(open_shard=OPEN, check_after=check_after)
        try:
            self._update(
                call_id,
                {"status": status, **sets},
                condition="#status = :pending",
                values={":pending": {"S": PENDING}},
                sort_key=sort_key,
            )
        except ClientError as err:
            if not is_conditional_failure(err):
                raise
            # Settled first by another path (a stale-lock replay, or Fuse's result arrived before
            # Fuse's answer did): keep its status; the reply and Fuse's id are still ours to keep.
            kept = {k: sets[k] for k in ("reply", "updated_at", "fuse_call_id")}
            self._update(call_id, kept, sort_key=sort_key)

    def settle_stale(
        self, call_id: str, status: str, reply: Reply, now: int, sort_key: str = CALL_SORT_KEY
    ) -> bool:
        """Marks a call whose placing died mid-way; False when it was settled meanwhile."""
        try:
            self._update(
                call_id,
                {"status": status, "reply": reply_to_json(reply), "updated_at": now},
                condition="#status = :pending AND lock_until < :now",
                values={":pending": {"S": PENDING}, ":now": {"N": str(now)}},
                sort_key=sort_key,
            )
        except ClientError as err:
            if not is_conditional_failure(err):
                raise
            return False
        return True

    def release(self, call_id: str, sort_key: str = CALL_SORT_KEY) -> None:
        """Deletes a pending call that Fuse did not queue, so the same key may try again."""
        try:
            self._call(
                "delete_item",
                Key=self._key(call_id, sort_key),
                ConditionExpression="#status = :pending",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":pending": {"S": PENDING}},
            )
        except ClientError as err:
            if not is_conditional_failure(err):
                raise

    # --- outcomes ----------------------------------------------------------------------------
    def store_result(
        self,
        delivery: Delivery,
        outcome: dict[str, Any] | None,
        now: int,
        expires_at: int,
    ) -> str:
        """One write: the delivery beside its call, and the call's status when it is an outcome.

        Returns STORED, DUPLICATE (this very body was stored before; nothing changes) or
        UNKNOWN_CALL (no such call; nothing is stored).
        """
        put = {
            "Put": {
                "TableName": self._table,
                "Item": delivery_to_item(delivery, expires_at),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
        if outcome is not None:
            sets = {
                "status": outcome["status"],
                "result": json.dumps(outcome, separators=(",", ":")),
                "updated_at": now,
            }
            expression, names, values = update_expression(
                sets, remove=("open_shard", "check_after")
            )
            call: dict[str, Any] = {
                "Update": {
                    "TableName": self._table,
                    "Key": self._key(delivery.call_id),
                    "UpdateExpression": expression,
                    "ConditionExpression": "attribute_exists(pk)",
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": values,
                }
            }
        else:
            call = {
                "ConditionCheck": {
                    "TableName": self._table,
                    "Key": self._key(delivery.call_id),
                    "ConditionExpression": "attribute_exists(pk)",
                }
            }
        try:
            self._call("transact_write_items", TransactItems=[put, call])
        except ClientError as err:
            reasons = [r.get("Code") for r in err.response.get("CancellationReasons", [])]
            if len(reasons) == 2 and reasons[1] == "ConditionalCheckFailed":
                return UNKNOWN_CALL
            if len(reasons) == 2 and reasons[0] == "ConditionalCheckFailed":
                return DUPLICATE
            logger.error("DynamoDB transaction cancelled", extra={"reasons": reasons})
            raise StoreUnavailable("the bridge cannot reach its call store; retry later") from None
        return STORED

    def mark_publish_pending(self, call_id: str, now: int) -> None:
        """A result event could not be sent: the reconciler's next run sends it."""
        self._update(call_id, {"needs_publish": True, "open_shard": OPEN, "check_after": now})

    def close(self, call_id: str) -> None:
        """Nothing left for the reconciler to do with this call."""
        self._update(call_id, {"needs_publish": False}, remove=("open_shard", "check_after"))

    def annotate(self, owner_id: str, sort_key: str, **values: str | int) -> None:
        self._update(owner_id, dict(values), sort_key=sort_key)

    def check_again_at(self, call_id: str, check_after: int) -> None:
        self._update(call_id, {"check_after": check_after})

    # --- lists -------------------------------------------------------------------------------
    def put_items(self, items: list[dict[str, Any]]) -> None:
        """BatchWriteItem, 25 items a request and a few requests at once (a list of 10,000
        contacts is 400 requests, which must fit well inside API Gateway's 29 s)."""
        chunks = [items[start : start + 25] for start in range(0, len(items), 25)]
        if len(chunks) <= 1:
            for chunk in chunks:
                self._write_chunk(chunk)
            return
        with ThreadPoolExecutor(max_workers=WRITERS) as pool:
            list(pool.map(self._write_chunk, chunks))  # list(): re-raises the first failure

    def _write_chunk(self, chunk: list[dict[str, Any]]) -> None:
        """One request, sent again with backoff for what DynamoDB left unprocessed."""
        pending = [{"PutRequest": {"Item": i}} for i in chunk]
        for attempt in range(8):
            answer = self._call("batch_write_item", RequestItems={self._table: pending})
            pending = answer.get("UnprocessedItems", {}).get(self._table, [])
            if not pending:
                return
            time.sleep(min(0.05 * 2**attempt, 1.0))
        raise StoreUnavailable("the call store is throttling writes; retry later")

    def put_calls(self, records: list[CallRecord], expires_at: int) -> None:
        self.put_items([record_to_item(r, expires_at) for r in records])

    def save_reply(self, owner_id: str, reply: Reply, expires_at: int) -> None:
        """A large answer (a list's), cut into parts beside its owner; `saved_reply` joins them."""
        text = reply_to_json(reply).encode()
        parts = [text[i : i + REPLY_PART_BYTES] for i in range(0, len(text), REPLY_PART_BYTES)]
        self.put_items(
            [
                {
                    "pk": {"S": owner_id},
                    "sk": {"S": f"{REPLY_PREFIX}{number:04d}"},
                    "part": {"B": part},
                    "expires_at": {"N": str(expires_at)},
                }
                for number, part in enumerate(parts)
            ]
        )

    def first_answer(self, record: CallRecord) -> Reply | None:
        """The answer a record's first request got: on the item itself, or, for a list's
        (too large for one item), in parts beside it."""
        return record.reply if record.reply is not None else self.saved_reply(record.id)

    def saved_reply(self, owner_id: str) -> Reply | None:
        parts = self._query_all(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :reply)",
            ExpressionAttributeValues={":pk": {"S": owner_id}, ":reply": {"S": REPLY_PREFIX}},
            ConsistentRead=True,
        )
        if not parts:
            return None
        return reply_from_json(b"".join(p["part"]["B"] for p in parts).decode())

    def kept_deliveries(self, owner_id: str) -> list[tuple[bytes, str, int]]:
        """The bodies kept beside a list (results that matched no contact when they came):
        (body, Content-Type, received_at) each."""
        items = self._query_all(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :result)",
            ExpressionAttributeValues={":pk": {"S": owner_id}, ":result": {"S": RESULT_PREFIX}},
            ConsistentRead=True,
        )
        return [(i["body"]["B"], i["content_type"]["S"], int(i["received_at"]["N"])) for i in items]

    def batch_calls(self, batch_id: str) -> list[CallRecord]:
        """Every contact's call of a list, in list order (the by_batch index)."""
        items = self._query_all(
            IndexName=BY_BATCH,
            KeyConditionExpression="batch_id = :batch",
            ExpressionAttributeValues={":batch": {"S": batch_id}},
        )
        return [record_from_item(i) for i in items]

    def put_delivery(self, delivery: Delivery, expires_at: int) -> bool:
        """A delivery kept on its own (a list's result that matches none of its contacts);
        False when this very body was kept before."""
        try:
            self._call(
                "put_item",
                Item=delivery_to_item(delivery, expires_at),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as err:
            if not is_conditional_failure(err):
                raise
            return False
        return True

    def _query_all(self, **query: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            page = self._call("query", **query)
            items += page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return items
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # --- campaigns ---------------------------------------------------------------------------
    def mark_cancel_requested(self, campaign: str, now: int) -> None:
        """One item per campaign: its calls queued before `now` read as cancel_requested until
        their results arrive (one write, however many calls the campaign has)."""
        self._call(
            "put_item",
            Item={
                "pk": {"S": f"campaign#{campaign}"},
                "sk": {"S": "cancel"},
                "requested_at": {"N": str(now)},
            },
        )

    def cancel_requested_at(self, campaign: str) -> int | None:
        key = {"pk": {"S": f"campaign#{campaign}"}, "sk": {"S": "cancel"}}
        item = self._call("get_item", Key=key).get("Item")
        return int(item["requested_at"]["N"]) if item else None

    # --- reading -----------------------------------------------------------------------------
    def get(self, call_id: str, sort_key: str = CALL_SORT_KEY) -> CallRecord | None:
        key = self._key(call_id, sort_key)
        item = self._call("get_item", Key=key, ConsistentRead=True).get("Item")
        return record_from_item(item) if item else None

    def by_reference(
        self, reference: str, limit: int, cursor: str | None
    ) -> tuple[list[CallRecord], str | None]:
        """A page of the calls with this reference, newest first, and the cursor to the next."""
        query: dict[str, Any] = {
            "IndexName": BY_REFERENCE,
            "KeyConditionExpression": "reference = :reference",
            "ExpressionAttributeValues": {":reference": {"S": reference}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if cursor:
            query["ExclusiveStartKey"] = decode_cursor(cursor, reference)
        page = self._call("query", **query)
        last = page.get("LastEvaluatedKey")
        return [record_from_item(i) for i in page.get("Items", [])], encode_cursor(
            last
        ) if last else None

    def due_for_check(self, now: int, limit: int) -> list[CallRecord]:
        """Open calls whose time to look has come, oldest first, at most `limit`."""
        page = self._call(
            "query",
            IndexName=OPEN_CALLS,
            KeyConditionExpression="open_shard = :open AND check_after <= :now",
            ExpressionAttributeValues={":open": {"S": OPEN}, ":now": {"N": str(now)}},
            Limit=limit,
        )
        return [record_from_item(i) for i in page.get("Items", [])]

    # --- helpers -----------------------------------------------------------------------------
    def _update(
        self,
        call_id: str,
        sets: dict[str, Any],
        remove: tuple[str, ...] = (),
        *,
        condition: str | None = None,
        values: dict[str, Any] | None = None,
        sort_key: str = CALL_SORT_KEY,
    ) -> None:
        expression, names, all_values = update_expression(sets, remove)
        request: dict[str, Any] = {
            "Key": self._key(call_id, sort_key),
            "UpdateExpression": expression,
            "ExpressionAttributeNames": names,
        }
        if condition is not None:
            request["ConditionExpression"] = condition
            all_values.update(values or {})
        if all_values:
            request["ExpressionAttributeValues"] = all_values
        self._call("update_item", **request)

    @staticmethod
    def _key(call_id: str, sort_key: str = CALL_SORT_KEY) -> dict[str, Any]:
        return {"pk": {"S": call_id}, "sk": {"S": sort_key}}


def attribute_value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    return {"S": str(value)}


def update_expression(
    sets: dict[str, Any], remove: tuple[str, ...] = ()
) -> tuple[str, dict[str, str], dict[str, Any]]:
    """SET/REMOVE with every name aliased (`status`, `result` are DynamoDB reserved words).

    A None value in `sets` is left out rather than written.
    """
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    assignments = []
    for name, value in sets.items():
        if value is None:
            continue
        names[f"#{name}"] = name
        values[f":{name}"] = attribute_value(value)
        assignments.append(f"#{name} = :{name}")
    expression = "SET " + ", ".join(assignments)
    if remove:
        names.update({f"#{name}": name for name in remove})
        expression += " REMOVE " + ", ".join(f"#{name}" for name in remove)
    return expression, names, values

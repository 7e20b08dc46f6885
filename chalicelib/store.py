"""The only module that speaks DynamoDB: one item per call, which is also its idempotency lock.

Table design (README "Data"): partition key `pk` = call id, sort key `sk` = "call". A call placed
with an idempotency key gets an id derived from that key, so the conditional put that creates the
call is the lock: two requests with one key cannot both create it, whatever their timing.
A POST /calls costs two writes: that put, then the update that records Fuse's answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.errors import StoreUnavailable
from chalicelib.logs import logger
from chalicelib.records import PENDING, CallRecord, Reply

CALL_SORT_KEY = "call"


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
    return item


def record_from_item(item: dict[str, Any]) -> CallRecord:
    def text(name: str) -> str | None:
        return item[name]["S"] if name in item else None

    def number(name: str) -> int:
        return int(item[name]["N"]) if name in item else 0

    reply = text("reply")
    return CallRecord(
        id=item["pk"]["S"],
        status=item["status"]["S"],
        request_hash=text("request_hash") or "",
        created_at=number("created_at"),
        lock_until=number("lock_until"),
        request=json.loads(text("request") or "{}"),
        reference=text("reference"),
        campaign=text("campaign"),
        fuse_call_id=text("fuse_call_id"),
        reply=reply_from_json(reply) if reply else None,
    )


def is_conditional_failure(err: ClientError) -> bool:
    return err.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class CallStore:
    def __init__(self, table: str, dynamodb_client: Callable[[], Any]) -> None:
        self._table = table
        self._client = dynamodb_client

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        """One DynamoDB request; conditional failures are the caller's, the rest are faults."""
        try:
            return getattr(self._client(), operation)(TableName=self._table, **kwargs)
        except ClientError as err:
            if is_conditional_failure(err):
                raise
            code = err.response.get("Error", {}).get("Code")
            logger.error(
                "DynamoDB request failed", extra={"operation": operation, "aws_code": code}
            )
            raise StoreUnavailable("the bridge cannot reach its call store; retry later") from None
        except BotoCoreError as err:
            logger.error(
                "DynamoDB request failed",
                extra={"operation": operation, "error_type": type(err).__name__},
            )
            raise StoreUnavailable("the bridge cannot reach its call store; retry later") from None

    def begin(self, record: CallRecord, expires_at: int, now: int) -> CallRecord | None:
        """Creates the call; returns the existing record instead when its id is taken.

        An item past its expiry counts as free: DynamoDB's TTL deletes lazily, days late.
        """
        try:
            self._call(
                "put_item",
                Item=record_to_item(record, expires_at),
                ConditionExpression="attribute_not_exists(pk) OR expires_at < :now",
                ExpressionAttributeValues={":now": {"N": str(now)}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as err:
            if not is_conditional_failure(err):
                raise
            item = err.response.get("Item")
            return record_from_item(item) if item else self.get(record.id)
        return None

    def settle(
        self, call_id: str, status: str, reply: Reply, now: int, fuse_call_id: str | None
    ) -> None:
        """Records Fuse's answer on a pending call."""
        names = {"#status": "status"}
        values: dict[str, Any] = {
            ":status": {"S": status},
            ":reply": {"S": reply_to_json(reply)},
            ":now": {"N": str(now)},
            ":pending": {"S": PENDING},
        }
        update = "SET #status = :status, reply = :reply, updated_at = :now"
        if fuse_call_id is not None:
            update += ", fuse_call_id = :fuse_call_id"
            values[":fuse_call_id"] = {"S": fuse_call_id}
        try:
            self._call(
                "update_item",
                Key=self._key(call_id),
                UpdateExpression=update,
                ConditionExpression="#status = :pending",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as err:
            if not is_conditional_failure(err):
                raise
            # Someone settled it first (a stale-lock replay marked it unknown, or a result
            # arrived): keep their status, but the reply and Fuse's id are still ours to record.
            values.pop(":status")
            values.pop(":pending")
            self._call(
                "update_item",
                Key=self._key(call_id),
                UpdateExpression=update.replace("#status = :status, ", ""),
                ExpressionAttributeValues=values,
            )

    def settle_stale(self, call_id: str, status: str, reply: Reply, now: int) -> bool:
        """Marks a call whose placing died mid-way; False when it was settled meanwhile."""
        try:
            self._call(
                "update_item",
                Key=self._key(call_id),
                UpdateExpression="SET #status = :status, reply = :reply, updated_at = :now",
                ConditionExpression="#status = :pending AND lock_until < :now",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":status": {"S": status},
                    ":reply": {"S": reply_to_json(reply)},
                    ":now": {"N": str(now)},
                    ":pending": {"S": PENDING},
                },
            )
        except ClientError as err:
            if not is_conditional_failure(err):
                raise
            return False
        return True

    def release(self, call_id: str) -> None:
        """Deletes a pending call that Fuse did not queue, so the same key may try again."""
        try:
            self._call(
                "delete_item",
                Key=self._key(call_id),
                ConditionExpression="#status = :pending",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":pending": {"S": PENDING}},
            )
        except ClientError as err:
            if not is_conditional_failure(err):
                raise

    def get(self, call_id: str) -> CallRecord | None:
        item = self._call("get_item", Key=self._key(call_id), ConsistentRead=True).get("Item")
        return record_from_item(item) if item else None

    @staticmethod
    def _key(call_id: str) -> dict[str, Any]:
        return {"pk": {"S": call_id}, "sk": {"S": CALL_SORT_KEY}}

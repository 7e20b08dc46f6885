"""Creates the bridge's AWS resources and demo parameters in moto, for `make local` and the tests.

The table's key schema here is the one the store expects (docs/data-model.md); the deployed table
is declared by the deployment templates.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from typing import Any

from moto.dynamodb.models import DynamoDBBackend


def create_calls_table(dynamodb: Any, name: str) -> None:
    dynamodb.create_table(
        TableName=name,
        AttributeDefinitions=[
            {"AttributeName": name, "AttributeType": kind}
            for name, kind in (
                ("pk", "S"),
                ("sk", "S"),
                ("reference", "S"),
                ("created_at", "N"),
                ("open_shard", "S"),
                ("check_after", "N"),
                ("batch_id", "S"),
                ("batch_index", "N"),
            )
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        GlobalSecondaryIndexes=[
            index("by_reference", "reference", "created_at"),
            index("open_calls", "open_shard", "check_after"),
            index("by_batch", "batch_id", "batch_index"),
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(
        TableName=name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
    )


def index(name: str, partition: str, sort: str) -> dict[str, Any]:
    """A sparse index: only items that have `partition` appear in it."""
    return {
        "IndexName": name,
        "KeySchema": [
            {"AttributeName": partition, "KeyType": "HASH"},
            {"AttributeName": sort, "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "ALL"},
    }


def create_call_requests_queue(sqs: Any, name: str, visibility_timeout: int = 30) -> str:
    """The queue CRMs drop call requests on, with its dead-letter queue after 5 receipts (the
    deployed ones are declared by the deployment templates); returns the queue's URL."""
    return create_queue_with_dlq(sqs, name, 5, visibility_timeout)


def create_delivery_queue(sqs: Any, name: str, max_attempts: int = 37) -> str:
    """The queue of result deliveries, its dead-letter queue after `max_attempts` receipts."""
    return create_queue_with_dlq(sqs, name, max_attempts, 30)


def create_dispatch_queue(sqs: Any, name: str, receives: int = 100) -> str:
    """The queue waiting calls wait in for the dispatcher, its dead-letter queue after
    `receives` receipts (each back off longer)."""
    return create_queue_with_dlq(sqs, name, receives, 30)


def create_queue_with_dlq(sqs: Any, name: str, receives: int, visibility_timeout: int) -> str:
    dead = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dead_arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])
    redrive = {
        "deadLetterTargetArn": dead_arn["Attributes"]["QueueArn"],
        "maxReceiveCount": str(receives),
    }
    return sqs.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": str(visibility_timeout),
            "RedrivePolicy": json.dumps(redrive),
        },
    )["QueueUrl"]


@contextlib.contextmanager
def atomic_moto_writes() -> Iterator[None]:
    """Makes moto's conditional writes atomic, as DynamoDB's are.

    moto checks a condition and then writes without a lock, so two threads can both pass the
    check; real DynamoDB serialises writes to an item. A burst from many threads (the tests'
    containers, the bench, `make local`) needs the real guarantee. Reads take the lock too: a
    transaction deep-copies every table first, and moto's reads can add an empty entry to a
    table's items as they look (a defaultdict), which breaks a copy under way."""
    lock = threading.RLock()  # a transaction's own writes take it again
    originals = {name: getattr(DynamoDBBackend, name) for name in LOCKED}

    def locked(original: Any) -> Any:
        def write(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return original(*args, **kwargs)

        return write

    for name, original in originals.items():
        setattr(DynamoDBBackend, name, locked(original))
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(DynamoDBBackend, name, original)


LOCKED = (
    "put_item",
    "update_item",
    "delete_item",
    "transact_write_items",
    "batch_write_item",
    "get_item",
    "query",
    "scan",
)

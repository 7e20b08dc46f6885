"""What Lambda's SQS event source does, for `make local`: `chalice local` has no event sources.

It long-polls a local queue in moto, gathers a batch as the event source does (up to its batch
size, for up to its batching window), hands it to the same handler Lambda would call
(`call_requests`, `deliver_results` or `dispatch_calls`, in-process), and then does what Lambda
does with a partial batch response: deletes every message but those the handler returned in
`batchItemFailures`, and leaves the whole batch to come back after the visibility timeout when
the handler raises (a handler may also move a message's return, as deliveries' backoff does).
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

from chalice.local import LambdaContext

BATCH_SIZE = 10  # SQS's most per receive, and the event sources' default batch here
LAMBDA_TIMEOUT_MS = 30_000  # .chalice/config.json's lambda_timeout: the handler watches it


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda builds from received messages."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": m.get("MessageAttributes", {}),
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


def receive_batch(sqs: Any, queue_url: str, batch_size: int, window: float) -> list[Any]:
    """Messages until `batch_size`, or until `window` seconds have passed since the first (the
    event source's MaximumBatchingWindowInSeconds); with no window, what the queue has now. A
    receive brings ten at most."""

    def receive(wait: int) -> list[Any]:
        answer = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=min(BATCH_SIZE, batch_size - len(messages)),
            WaitTimeSeconds=wait,
            AttributeNames=["All"],
        )
        return answer.get("Messages", [])

    messages: list[Any] = []
    messages += receive(1)
    deadline = time.monotonic() + window
    while messages and len(messages) < batch_size:
        left = deadline - time.monotonic()
        got = receive(min(1, math.ceil(left)) if left > 0 else 0)
        messages += got
        if time.monotonic() >= deadline and (window > 0 or not got):
            break
    return messages


def poll_once(
    sqs: Any,
    queue_url: str,
    queue_arn: str,
    handler: Any,
    region: str,
    *,
    batch_size: int = BATCH_SIZE,
    window: float = 0,
) -> int:
    """One batch and one handler run; returns how many messages it took."""
    messages = receive_batch(sqs, queue_url, batch_size, window)
    if not messages:
        return 0
    try:
        context = LambdaContext("call_requests", 512, max_runtime_ms=LAMBDA_TIMEOUT_MS)
        answer = handler(sqs_event(messages, queue_arn, region), context)
    except Exception as err:
        print(f"a batch failed, SQS will redeliver it: {err}", flush=True)
        return len(messages)
    delete_all_but_failures(sqs, queue_url, messages, answer)
    return len(messages)


def delete_all_but_failures(
    sqs: Any, queue_url: str, messages: list[dict[str, Any]], answer: Any
) -> None:
    """As Lambda does with ReportBatchItemFailures: the messages the handler names in
    `batchItemFailures` stay (they come back after the visibility timeout); the rest are
    deleted. An answer that is not a valid partial batch response fails the whole batch."""
    try:
        failed = {f["itemIdentifier"] for f in answer["batchItemFailures"]}
    except (KeyError, TypeError):
        print("no valid batch response; SQS will redeliver the batch", flush=True)
        return
    done = [m for m in messages if m["MessageId"] not in failed]
    for start in range(0, len(done), BATCH_SIZE):
        entries = [
            {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
            for n, m in enumerate(done[start : start + BATCH_SIZE])
        ]
        sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries)


def poll_forever(
    sqs: Any,
    queue_url: str,
    handler: Any,
    region: str,
    stop: threading.Event,
    *,
    batch_size: int = BATCH_SIZE,
    window: float = 0,
) -> None:
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    queue_arn = arn["Attributes"]["QueueArn"]
    while not stop.is_set():
        try:
            poll_once(
                sqs, queue_url, queue_arn, handler, region, batch_size=batch_size, window=window
            )
        except Exception as err:
            if stop.wait(1):
                return
            print(f"SQS poll failed: {err}", flush=True)

"""What Lambda's SQS event source does, for `make local`: `chalice local` has no event sources.

It long-polls a local queue in moto, hands each batch to the same handler Lambda would call
(`call_requests` or `deliver_results`, in-process), and then does what Lambda does with a
partial batch response: deletes every message but those the handler returned in
`batchItemFailures`, and leaves the whole batch to come back after the visibility timeout when
the handler raises (a handler may also move a message's return, as deliveries' backoff does).
"""

from __future__ import annotations

import threading
from typing import Any

from chalice.local import LambdaContext

BATCH_SIZE = 10
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


def poll_once(sqs: Any, queue_url: str, queue_arn: str, handler: Any, region: str) -> int:
    """One receive and one handler run; returns how many messages it took."""
    answer = sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=BATCH_SIZE,
        WaitTimeSeconds=1,
        AttributeNames=["All"],
    )
    messages = answer.get("Messages", [])
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
    sqs: Any, queue_url: str, handler: Any, region: str, stop: threading.Event
) -> None:
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    queue_arn = arn["Attributes"]["QueueArn"]
    while not stop.is_set():
        try:
            poll_once(sqs, queue_url, queue_arn, handler, region)
        except Exception as err:
            if stop.wait(1):
                return
            print(f"SQS poll failed: {err}", flush=True)

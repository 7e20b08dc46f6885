"""What Lambda's SQS event source does, for `make local`: `chalice local` has no event sources.

It long-polls the local call-request queue in moto, hands each batch to the same handler Lambda
would call (`call_requests`, in-process), deletes the batch when the handler returns, and leaves
it to come back after the visibility timeout when the handler raises, exactly as Lambda does.
"""

from __future__ import annotations

import threading
from typing import Any

from chalice.local import LambdaContext

BATCH_SIZE = 10


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
        handler(sqs_event(messages, queue_arn, region), LambdaContext("call_requests", 512))
    except Exception as err:
        print(f"call_requests batch failed, SQS will redeliver it: {err}", flush=True)
        return len(messages)
    sqs.delete_message_batch(
        QueueUrl=queue_url,
        Entries=[
            {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)
        ],
    )
    return len(messages)


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

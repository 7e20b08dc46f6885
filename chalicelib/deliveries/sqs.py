"""The queue of result deliveries (SQS): storing an outcome only enqueues its delivery, so
Fuse's callback is answered as fast as before; the delivery function sends it and retries."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.logs import logger

MAX_VISIBILITY_SECONDS = 12 * 3600  # SQS's most


class DeliveryNotQueued(Exception):
    """SQS did not take the message; the reconciler's next run queues it again."""


class DeliveryQueue:
    def __init__(self, queue_name: str | None, sqs_client: Callable[[], Any]) -> None:
        self.queue_name = queue_name
        self._client = sqs_client

    @property
    def client(self) -> Any:
        """The SQS client, for counting requests in tests and the bench."""
        return self._client()

    @property
    def enabled(self) -> bool:
        return bool(self.queue_name)

    @functools.cached_property
    def url(self) -> str:
        return self._client().get_queue_url(QueueName=self.queue_name)["QueueUrl"]

    def send(self, message: Mapping[str, Any]) -> None:
        try:
            self._client().send_message(QueueUrl=self.url, MessageBody=json.dumps(message))
        except (BotoCoreError, ClientError) as err:
            logger.warning(
                "delivery not queued",
                extra={"call_id": message.get("call_id"), "error_type": type(err).__name__},
            )
            raise DeliveryNotQueued from None

    def retry_in(self, receipt_handle: str, seconds: int) -> None:
        """The message comes back after `seconds` (its retry's backoff), not the queue's
        visibility timeout. If SQS cannot be told, it comes back after that timeout anyway."""
        try:
            self._client().change_message_visibility(
                QueueUrl=self.url,
                ReceiptHandle=receipt_handle,
                VisibilityTimeout=max(0, min(seconds, MAX_VISIBILITY_SECONDS)),
            )
        except (BotoCoreError, ClientError) as err:
            logger.warning("delivery backoff not set", extra={"error_type": type(err).__name__})

"""The bridge's SQS queues as it sends to them: the delivery queue (storing an outcome only
enqueues its delivery) and the dispatch queue (a call that cannot go to Fuse now waits there).
Lambda's event sources consume them; a consumer sets a message's return (its backoff) here."""

from __future__ import annotations

import functools
import json
import math
import random
from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.logs import logger

MAX_VISIBILITY_SECONDS = 12 * 3600  # SQS's most
JITTER = (0.8, 1.2)


def backoff(attempt: int, base: float, cap: float, at_least: float = 0) -> int:
    """Seconds before a message's attempt `attempt + 1`: base * 2^(attempt-1), at most `cap`,
    jittered by a fifth either way (so retries of many do not come back together), and no
    sooner than `at_least` (a receiver's Retry-After, a breaker's end)."""
    delay = min(base * 2 ** (attempt - 1), cap) * random.uniform(*JITTER)  # noqa: S311 - jitter, not a secret
    return math.ceil(max(delay, at_least, 1))


class NotQueued(Exception):
    """SQS did not take the message; the reconciler hands what it carried to the queue again."""


class SqsQueue:
    """One queue, by name (None: the queue is off); `purpose` names it in logs."""

    def __init__(
        self, queue_name: str | None, sqs_client: Callable[[], Any], purpose: str = "delivery"
    ) -> None:
        self.queue_name = queue_name
        self._client = sqs_client
        self._purpose = purpose

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

    def send(self, message: Mapping[str, Any], delay_seconds: int = 0) -> None:
        try:
            self._client().send_message(
                QueueUrl=self.url,
                MessageBody=json.dumps(message),
                **({"DelaySeconds": min(delay_seconds, 900)} if delay_seconds else {}),
            )
        except (BotoCoreError, ClientError) as err:
            logger.warning(
                f"{self._purpose} not queued",
                extra={"call_id": message.get("call_id"), "error_type": type(err).__name__},
            )
            raise NotQueued from None

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
            logger.warning(
                f"{self._purpose} backoff not set", extra={"error_type": type(err).__name__}
            )

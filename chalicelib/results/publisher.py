"""Telling others: each newly stored outcome as a `Fuse Call Result` event on EventBridge.

A CRM reacts through an EventBridge API destination, any AWS consumer through a rule. The event
carries what a delivery's data does (deliveries/messages.py: the call's id, reference, campaign,
status and result), never the phone number.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.logs import logger

EVENT_SOURCE = "fuse-bridge"
DETAIL_TYPE = "Fuse Call Result"


class ResultNotPublished(Exception):
    """EventBridge did not take the event; the reconciler's next run sends it again."""


class ResultPublisher:
    def __init__(self, bus_name: str | None, events_client: Callable[[], Any]) -> None:
        self.bus_name = bus_name
        self._client = events_client

    @property
    def enabled(self) -> bool:
        return self.bus_name is not None

    def publish(self, call_id: str, detail: Mapping[str, Any]) -> None:
        """`detail` is what a delivery's data holds (deliveries/messages.py, outcome_detail)."""
        entry = {
            "Source": EVENT_SOURCE,
            "DetailType": DETAIL_TYPE,
            "Detail": json.dumps(detail),
            "EventBusName": self.bus_name,
        }
        try:
            answer = self._client().put_events(Entries=[entry])
        except (BotoCoreError, ClientError) as err:
            logger.warning(
                "result event not sent",
                extra={"call_id": call_id, "error_type": type(err).__name__},
            )
            raise ResultNotPublished(call_id) from None
        if answer.get("FailedEntryCount"):
            code = answer["Entries"][0].get("ErrorCode")
            logger.warning("result event refused", extra={"call_id": call_id, "aws_code": code})
            raise ResultNotPublished(call_id)

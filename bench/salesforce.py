"""A Salesforce outbound message of 100 notifications (issue 22) through the deployed handler,
on moto and the simulator, paced as deployed: how long the bridge takes to acknowledge it (the
time Salesforce waits, at most 60 s; API Gateway's own limit is 29 s), what it costs in AWS
calls a notification, and what reaches Fuse once the dispatcher has run. Figures only: nothing
here asserts.
"""

from __future__ import annotations

import os
import statistics
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import boto3
from moto import mock_aws

from app import app
from bench.harness import PARAMETERS, PREFIX, TABLE, LambdaContext, bridge_environment, proxy_event
from chalicelib.config.dependencies import build_dependencies, set_dependencies
from chalicelib.config.settings import load_settings
from infra.parameters import put_parameters
from local.aws_setup import create_calls_table, create_dispatch_queue
from local.fuse_sim import FuseSimulator
from local.salesforce_demo import SALESFORCE_DEMO_PARAMETERS, SALESFORCE_TOKEN, salesforce_message
from local.sqs_poller import poll_once

NOTIFICATIONS = 100
RUNS = 3


def message_event(run: int) -> dict[str, Any]:
    """POST /hooks/salesforce-demo of 100 Contacts, each its own notification and phone."""
    notifications = [
        (
            f"04l5e0000{run:01d}Kc{n:04d}AV",
            "Contact",
            {"Id": f"0035e0000{run}B1{n:04d}AJ", "Phone": f"+1617555{n:04d}"},
        )
        for n in range(NOTIFICATIONS)
    ]
    event = proxy_event(
        "/hooks/{integration}",
        {},
        {"content-type": "text/xml; charset=utf-8", "soapaction": '""'},
        {"integration": "salesforce-demo"},
        {"api_key": SALESFORCE_TOKEN},
    )
    return {**event, "body": salesforce_message(notifications).decode()}


def salesforce_message_cost(fuse: FuseSimulator, report: Callable[[str], None]) -> None:
    environment = {**bridge_environment(fuse.url), "FUSE_QUEUE_RATE": "2"}  # as deployed
    os.environ.update(environment)
    with mock_aws():
        sqs = boto3.client("sqs")
        create_calls_table(boto3.client("dynamodb"), TABLE)
        put_parameters(boto3.client("ssm"), PREFIX, {**PARAMETERS, **SALESFORCE_DEMO_PARAMETERS})
        queue_url = create_dispatch_queue(sqs, environment["DISPATCH_QUEUE"])
        arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        deps = build_dependencies(load_settings(dict(os.environ)))
        set_dependencies(deps)
        calls: Counter[str] = Counter()
        for service, client in (("dynamodb", deps.store.client), ("sqs", deps.dispatch.client)):
            client.meta.events.register(
                f"before-call.{service}.*",
                lambda service=service, **_: calls.update([service]),
            )
        timings, answers = [], []
        try:
            fuse.reset()
            for run in range(RUNS):
                started = time.perf_counter()
                answer = app(message_event(run), LambdaContext())
                timings.append(time.perf_counter() - started)
                answers.append(answer["statusCode"])
            answering = Counter(calls)  # what acknowledging took; the rest is the dispatcher's
            dispatched = 0
            while taken := poll_once(
                sqs,
                queue_url,
                arn["Attributes"]["QueueArn"],
                app.handler_map["dispatch_calls"],
                "us-east-1",
                batch_size=100,
            ):
                dispatched += taken
        finally:
            set_dependencies(None)
    bulks = [r for r in fuse.received if r.path.endswith("/bulk_queue")]
    per = RUNS * NOTIFICATIONS
    report(
        f"11. A Salesforce message of {NOTIFICATIONS} notifications: acknowledged in "
        f"{statistics.median(timings):.2f} s (median of {RUNS}, moto in this process; "
        f"answers {sorted(set(answers))}); DynamoDB {answering['dynamodb'] / per:.2f} and SQS "
        f"{answering['sqs'] / per:.2f} requests a notification to answer, DynamoDB "
        f"{(calls['dynamodb'] - answering['dynamodb']) / per:.2f} to dispatch; then "
        f"{dispatched} dispatched in {len(bulks)} bulk requests, "
        f"{len(fuse.queue_requests())} single queues"
    )
    fuse.reset()

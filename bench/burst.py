"""A burst as CRMs make one: 200 POST /calls from 8 threads and 200 messages on the request
queue, at once, against a Fuse that refuses single queues past 3 a second (as Plum warns a loop
of them does). The bridge is paced as deployed (FUSE_QUEUE_RATE 2, a dispatch queue, its event
sources' batches and windows, FUSE_BULK_CONCURRENCY dispatchers); AWS is moto, in this process,
its conditional writes made atomic as DynamoDB's are.

Each thread places its calls as a container would (placing itself: one Chalice app object
serves one request at a time, as one Lambda container does). The queues' consumers are
local/sqs_poller.py, which plays Lambda's event sources. Figures only: nothing here asserts.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
from moto import mock_aws

from app import app
from bench.harness import PARAMETERS, PREFIX, TABLE, bridge_environment
from chalicelib.config.dependencies import build_dependencies, set_dependencies
from chalicelib.config.settings import load_settings
from chalicelib.errors import BridgeError
from chalicelib.placing.calls import place_call
from infra.parameters import put_parameters
from local.aws_setup import (
    atomic_moto_writes,
    create_call_requests_queue,
    create_calls_table,
    create_dispatch_queue,
)
from local.fuse_sim import FuseSimulator
from local.sqs_poller import poll_forever

ROOT = Path(__file__).resolve().parent.parent
HTTP_CALLS, QUEUED_CALLS, THREADS = 200, 200, 8
FUSE_LIMIT = 3  # single queues a second the simulated Fuse takes before failing them
REQUESTS, DISPATCH = "fuse-bridge-bench-call-requests", "fuse-bridge-bench-dispatch"
# As .chalice/config.json deploys it: the rate, and each event source's batch size, batching
# window and how many run at once.
DEPLOYED = json.loads((ROOT / ".chalice" / "config.json").read_text())["environment_variables"]
WIRING = {
    "DISPATCH_QUEUE": DISPATCH,
    "CALL_REQUESTS_QUEUE": REQUESTS,
    "FUSE_QUEUE_RATE": DEPLOYED["FUSE_QUEUE_RATE"],
}
CONSUMERS = {
    "call_requests": (
        REQUESTS,
        int(DEPLOYED["SQS_BATCH_SIZE"]),
        float(DEPLOYED["SQS_BATCH_WINDOW_SECONDS"]),
        int(DEPLOYED["SQS_MAXIMUM_CONCURRENCY"]),
    ),
    "dispatch_calls": (
        DISPATCH,
        int(DEPLOYED["DISPATCH_BATCH_SIZE"]),
        float(DEPLOYED["DISPATCH_WINDOW_SECONDS"]),
        int(DEPLOYED["FUSE_BULK_CONCURRENCY"]),
    ),
}
GIVE_UP_SECONDS = 120


def phone(n: int) -> str:
    return f"+1617555{n:04d}"


def queue_depth(sqs: object, url: str) -> int:
    """Messages on a queue, in sight or being handled."""
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    found = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]  # type: ignore[attr-defined]
    return sum(int(found[name]) for name in names)


def burst(fuse: FuseSimulator, report: Callable[[str], None]) -> None:
    environment = {**bridge_environment(fuse.url), **WIRING}
    os.environ.update(environment)
    with mock_aws(), atomic_moto_writes():
        create_calls_table(boto3.client("dynamodb"), TABLE)
        put_parameters(boto3.client("ssm"), PREFIX, PARAMETERS)
        sqs = boto3.client("sqs")
        urls = {
            REQUESTS: create_call_requests_queue(sqs, REQUESTS),
            DISPATCH: create_dispatch_queue(sqs, DISPATCH),
        }
        deps = build_dependencies(load_settings(environment))
        set_dependencies(deps)
        parameters = deps.parameters.get()  # warm, as the containers of a burst mostly are
        fuse.reset()
        fuse.queue_rate_limit = FUSE_LIMIT
        fuse.callback_delay = 3600
        stop = threading.Event()
        for handler, (queue, batch, window, concurrency) in CONSUMERS.items():
            for _ in range(concurrency):
                threading.Thread(
                    target=poll_forever,
                    args=(sqs, urls[queue], app.handler_map[handler], "us-east-1", stop),
                    kwargs={"batch_size": batch, "window": window},
                    daemon=True,
                ).start()

        def caller(n: int) -> int:
            raw = json.dumps({"phone": phone(n), "reference": f"http-{n}"}).encode()
            try:
                return place_call(
                    raw, f"http-{n}", deps.settings.public_base_url, parameters, deps
                ).reply.status
            except BridgeError as err:
                return err.status

        started = time.monotonic()
        messages = [
            {"Id": str(n), "MessageBody": json.dumps({"phone": phone(HTTP_CALLS + n)})}
            for n in range(QUEUED_CALLS)
        ]
        with ThreadPoolExecutor(max_workers=THREADS + 1) as pool:
            sent = [
                pool.submit(
                    sqs.send_message_batch, QueueUrl=urls[REQUESTS], Entries=messages[i : i + 10]
                )
                for i in range(0, QUEUED_CALLS, 10)
            ]
            codes = list(pool.map(caller, range(HTTP_CALLS)))
            for future in sent:
                future.result()
        answered = time.monotonic() - started
        total = HTTP_CALLS + QUEUED_CALLS
        accepted = None  # when the request queue was empty: every call accepted and held
        while len(fuse.queued) < total and time.monotonic() - started < GIVE_UP_SECONDS:
            if accepted is None and not queue_depth(sqs, urls[REQUESTS]):
                accepted = time.monotonic() - started
            time.sleep(0.05)
        last_queued = time.monotonic() - started
        time.sleep(1)  # anything sent twice would show by now
        stop.set()
        set_dependencies(None)
    stats = fuse.stats()
    per_phone = Counter(p.split(";")[0] for p in (f["phone_number"] for f in fuse.queued.values()))
    wanted = {f"tel:{phone(n)}" for n in range(total)}
    not_once = sum(1 for p in wanted if per_phone.get(p, 0) != 1) + len(set(per_phone) - wanted)
    requests = stats["single_queues"] + stats["bulk_queues"]
    first_try = sum(1 for c in codes if 200 <= c < 300)
    report(
        f"9. A burst of {total} calls ({HTTP_CALLS} POST /calls from {THREADS} threads, "
        f"{QUEUED_CALLS} SQS messages) against a Fuse failing single queues past {FUSE_LIMIT}/s, "
        f"FUSE_QUEUE_RATE 2:"
    )
    report(
        f"   Fuse requests: {requests} ({stats['single_queues']} single, "
        f"{stats['bulk_queues']} bulk; at most {stats['most_bulks_in_flight']} bulk at once) = "
        f"{requests / total:.3f} per call (target <= 0.1); the most single queues in a second: "
        f"{stats['most_single_queues_in_a_second']}; refused: {stats['single_queues_refused']} "
        f"single, {stats['bulk_queues_refused']} bulk (target 0)"
    )
    window = CONSUMERS["dispatch_calls"][2]
    report(
        f"   Callers answered 2xx on the first try: {first_try}/{HTTP_CALLS} HTTP "
        f"({Counter(codes).most_common()}), all answered in {answered:.1f} s; all {total} "
        f"accepted by {accepted or float('nan'):.1f} s; the last queued at Fuse at "
        f"{last_queued:.1f} s, {last_queued - (accepted or 0):.1f} s after the last was accepted "
        f"(the dispatcher's window is {window:g} s; the rest is moto in this process); calls at "
        f"Fuse more or less than once: {not_once} (target 0)"
    )

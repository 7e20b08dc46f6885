"""What the tests share: the test stage's names and demo values, and the few requests every
area makes (place a call, a list, Fuse's callback with a result, read a call back). Fixtures are in
conftest.py; test modules import from here, never from one another."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import boto3
from botocore.config import Config
from chalice.local import LambdaContext
from chalice.test import Client
from hypothesis import strategies as st

from chalicelib.config.dependencies import Dependencies
from chalicelib.consent.hours import ALL_DAYS, CallingHours
from chalicelib.fuse.callback_urls import callback_token
from local.demo import (
    ADMIN_TOKEN,
    API_TOKEN,
    CALLBACK_SECRET,
    CALLER_ID,
    DEVELOPER_KEY,
    FUSE_EMAIL,
    ID_SECRET,
    demo_parameters,
)
from local.fuse_sim import FuseSimulator
from local.sqs_poller import poll_once

# The demo values tests use, re-exported so a test imports its helpers from one place.
__all__ = [
    "ADMIN_TOKEN",
    "API_TOKEN",
    "CALLBACK_SECRET",
    "CALLER_ID",
    "DEVELOPER_KEY",
    "FUSE_EMAIL",
    "ID_SECRET",
]

ROOT = Path(__file__).resolve().parent.parent  # the repository
PREFIX = "/fuse-bridge/test"
TABLE = "fuse-bridge-test-calls"
PUBLIC_BASE_URL = "https://bridge.example.test/api"
OTHER_TOKEN = "local-dev-token-other"  # a second API token, as during a rotation
PHONE = "+16175551234"
PARAMETERS = demo_parameters(api_tokens=f"{API_TOKEN}, {OTHER_TOKEN}")
AUTH = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"}
# Integrations of the test stage beyond the demo's (the `crm` fixture writes them).
A, B = "crm-a-token", "crm-b-token"
CRM_PARAMETERS = {
    "integrations/crm-a/token": A,
    "integrations/crm-a/campaigns": "default",
    "integrations/crm-b/token": B,
    "integrations/form-tool/auth": "query",
    "integrations/form-tool/token": "form-tool-token",
    "integrations/broken/auth": "carrier-pigeon",
}
# HubSpot's workflow "Send a webhook" action posts the enrolled record: its id and properties.
HUBSPOT_BODY = {
    "objectId": 1501,
    "properties": {"phone": "+16175551234", "firstname": "Ada", "email": "ada@example.com"},
}

# Fuse's own example (docs/fuse-contract.md, "Result callbacks"): digit strings, numbers, a
# quoted phone.
FUSE_EXAMPLE = {
    "status": "completed",
    "attempts": "1",
    "max_attempts": "1",
    "queued_timestamp": "1475095892",
    "start_timestamp": "1475095900",
    "end_timestamp": "1475095931",
    "reattempt_wait": "0",
    "events": [
        {"event": "queued", "timestamp": 1475095892},
        {"event": "dialing", "timestamp": 1475095900},
        {"event": "connected", "timestamp": 1475095907},
        {"event": "disconnected", "timestamp": 1475095931},
    ],
    "duration": 24,
    "phone_number": "'6173720293'",
}
CONTACTS = [
    {"phone": "+16175551234", "reference": "lead-1", "variables": {"name": 'Zoë, "the" boss'}},
    {"phone": "617-555-1235", "reference": "lead-2", "variables": {"slot": "10:00\nsharp"}},
    {"phone": "+16175551236", "variables": {"name": "Ada", "vip": True}},
]


@dataclass
class Aws:
    ssm: Any
    dynamodb: Any


def bridge_environment(fuse_url: str, **overrides: str) -> dict[str, str]:
    """The test stage's environment variables, Fuse being the simulator at `fuse_url`."""
    return {
        "BRIDGE_SSM_PREFIX": PREFIX,
        "CALLS_TABLE": TABLE,
        "FUSE_BASE_URL": fuse_url,
        "FUSE_TIMEOUT_SECONDS": "1",
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "DEFAULT_PHONE_REGION": "US",
        "SECRETS_TTL_SECONDS": "300",
        # Consent has its own tests (tests/consent/): here every hour is a calling hour and the
        # cap is far off, so the rest runs whatever the clock says, through the same writes.
        "CALLING_HOURS": "00:00-24:00",
        "MAX_CALLS_PER_NUMBER": "1000",
        **overrides,
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def get(client: Client, path: str, token: str) -> Any:
    return client.http.get(path, headers=bearer(token))


def post_call(
    client: Client,
    body: Any,
    *,
    key: str | None = None,
    token: str | None = API_TOKEN,
    raw: bytes | None = None,
    content_type: str = "application/json",
) -> Any:
    headers = {"Content-Type": content_type}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if key is not None:
        headers["Idempotency-Key"] = key
    return client.http.post(
        "/calls", headers=headers, body=raw if raw is not None else json.dumps(body)
    )


def queue(client: Client, **fields: Any) -> str:
    """Places a call (PHONE, unless fields say otherwise) and returns its id."""
    response = post_call(client, {"phone": PHONE, "reference": "lead-9", **fields})
    assert response.status_code == 202, response.body
    return json.loads(response.body)["id"]


def post_list(client: Client, body: dict[str, Any], key: str | None = None) -> Any:
    headers = {**AUTH, **({"Idempotency-Key": key} if key else {})}
    return client.http.post("/calls/bulk", headers=headers, body=json.dumps(body))


def error_of(response: Any) -> dict[str, Any]:
    body = json.loads(response.body)
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]


def post_callback(
    client: Client,
    call_id: str,
    body: bytes | str | dict,
    content_type: str = "application/json",
    token: str | None = "valid",  # noqa: S107 - a marker: make the right token
) -> Any:
    """Fuse POSTing a result to a call's result URL."""
    if isinstance(body, dict):
        body = json.dumps(body)
    raw = body.encode() if isinstance(body, str) else body
    query = ""
    if token == "valid":
        query = f"?token={callback_token(call_id, CALLBACK_SECRET)}"
    elif token is not None:
        query = f"?token={token}"
    return client.http.post(
        f"/fuse/results/{call_id}{query}", headers={"Content-Type": content_type}, body=raw
    )


def read_call(client: Client, call_id: str) -> dict[str, Any]:
    response = client.http.get(
        f"/calls/{call_id}", headers={"Authorization": f"Bearer {API_TOKEN}"}
    )
    assert response.status_code == 200, response.body
    return json.loads(response.body)


def run_reconciler(client: Client) -> dict[str, Any]:
    event = client.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
    )
    return client.lambda_.invoke("reconcile_calls", event).payload


def sqs_event(client: Client, messages: list[tuple[str, Any]]) -> dict[str, Any]:
    event = client.events.generate_sqs_event(
        [m if isinstance(m, str) else json.dumps(m) for _, m in messages],
        queue_name="fuse-bridge-test-call-requests",
    )
    for record, (message_id, _) in zip(event["Records"], messages, strict=True):
        record["messageId"] = message_id
    return event


def run_batch(
    client: Client, messages: list[tuple[str, Any]], runtime_ms: int = 30_000
) -> list[str]:
    """Invokes call_requests as Lambda would, with a 30 s invocation; returns the message ids
    it asks to get back (its batchItemFailures)."""
    from app import app  # the Chalice app of the test's client, imported once the env is set

    context = LambdaContext("call_requests", 512, max_runtime_ms=runtime_ms)
    answer = app.handler_map["call_requests"](sqs_event(client, messages), context)
    return [failure["itemIdentifier"] for failure in answer["batchItemFailures"]]


def emitted(out: str) -> list[dict[str, Any]]:
    """Every EMF metric line printed: {"name", "value", and its dimensions}."""
    metrics = []
    for line in out.splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        record = json.loads(line)
        for directive in record["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == "FuseBridge"
            for metric in directive["Metrics"]:
                dimensions = {d: record[d] for group in directive["Dimensions"] for d in group}
                metrics.append(
                    {"name": metric["Name"], "value": record[metric["Name"]], **dimensions}
                )
    return metrics


def later(deps: Dependencies, seconds: float) -> None:
    """The bridge's clock, `seconds` from now."""
    now = time.time() + seconds
    deps.clock = lambda: now


def list_requests(fuse: FuseSimulator) -> list[Any]:
    return [r for r in fuse.received if r.path.endswith("/bulk_queue")]


def calls_by_phone(fuse: FuseSimulator) -> Counter[str]:
    """How many calls Fuse has for each phone, whether they came alone or in a bulk."""
    return Counter(form["phone_number"].split(";")[0] for form in fuse.queued.values())


def chalice_package(stage: str, out: Path, *extra: str) -> None:
    """`chalice package` of a stage into `out` (its dependencies cached after the first)."""
    subprocess.run(
        [Path(sys.executable).parent / "chalice", "package", "--stage", stage, *extra, str(out)],
        cwd=ROOT,
        env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1"},
        check=True,
        capture_output=True,
        timeout=600,
    )


def broken_client(service: str) -> Any:
    """A real boto3 client aimed at a closed port: every request fails to connect."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
    return boto3.client(
        service,
        endpoint_url=f"http://127.0.0.1:{port}",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )


def consume(queue_name: str, handler_name: str, batch_size: int = 10) -> int:
    """One batch of a queue through its deployed handler, as Lambda's event source would
    (messages to retry stay, the rest are deleted); returns how many it took."""
    from app import app  # the test's app, imported once the env is set

    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    handler = app.handler_map[handler_name]
    return poll_once(
        sqs, url, arn["Attributes"]["QueueArn"], handler, "us-east-1", batch_size=batch_size
    )


@dataclass
class Clock:
    """A stopped clock for the bridge (its `clock` and its `sleep`): time moves only when the
    test says, or when the bridge pauses (the dispatcher waiting for a bulk's slot)."""

    now: float

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def stop_clock(deps: Dependencies, at: float) -> Clock:
    clock = Clock(at)
    deps.clock, deps.sleep = clock, clock.sleep
    return clock


# Calling hours' test oracle and strategies (tests/consent/): zones with every kind of clock
# change, the wall clock read directly, hours on a quarter-hour grid.
CLOCK_ZONES = (
    "America/New_York",
    "America/Los_Angeles",
    "America/Boise",
    "Pacific/Honolulu",
    "Europe/London",
    "Australia/Lord_Howe",  # a 30-minute clock change
    "Asia/Kolkata",
    "Pacific/Chatham",  # +12:45 / +13:45
    "America/St_Johns",  # -3:30 / -2:30
)
FROM, TO = (int(datetime(y, 1, 1, tzinfo=UTC).timestamp()) for y in (2024, 2028))
DAY = 86400


def open_by_clock(hours: CallingHours, zone: str, moment: int) -> bool:
    """The oracle: the zone's wall clock at `moment` is within hours."""
    clock = datetime.fromtimestamp(moment, ZoneInfo(zone))
    minute = clock.hour * 60 + clock.minute
    return clock.weekday() in hours.days and hours.opens <= minute < hours.closes


def open_everywhere(hours: CallingHours, zones: tuple[str, ...], moment: int) -> bool:
    return all(open_by_clock(hours, zone, moment) for zone in zones)


def near_clock_change(zones: tuple[str, ...], moment: int, margin: int = 2 * 3600) -> bool:
    """Where the conservative reading of a skipped or repeated hour may keep a call out although
    the clock reads open: within an hour (the largest change here) of a zone's clock change."""
    for zone in zones:
        tz = ZoneInfo(zone)
        before = datetime.fromtimestamp(moment - margin, tz).utcoffset()
        if before != datetime.fromtimestamp(moment + margin, tz).utcoffset():
            return True
    return False


zone_sets = st.lists(st.sampled_from(CLOCK_ZONES), min_size=1, max_size=3, unique=True).map(tuple)


@st.composite
def calling_hours(draw: st.DrawFn) -> CallingHours:
    """On a quarter-hour grid, which reaches into the skipped and repeated hours."""
    opens = draw(st.integers(0, 95))
    closes = draw(st.integers(opens + 1, 96))
    days = draw(st.frozensets(st.integers(0, 6), min_size=1) | st.just(ALL_DAYS))
    return CallingHours(opens * 15, closes * 15, days)

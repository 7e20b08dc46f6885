"""`make bench`, issue 9's figures: hostile inputs tried per route with the 5xx count (target 0),
and the parse time of the worst 256 KiB result body. Figures only: nothing here asserts."""

from __future__ import annotations

import base64
import contextlib
import json
import random
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

from app import app
from bench.harness import TOKEN, LambdaContext, api_event
from chalicelib.fuse.callback_urls import callback_token
from chalicelib.results.bodies import UnreadableResult
from chalicelib.results.call_result import read_result
from local.demo import CALLBACK_SECRET

SEED = 20261123  # the same random bodies every run
CALLBACK_BODY_BYTES = 256 * 1024


def raw_event(
    method: str, path: str, raw: bytes, content_type: str, query: dict[str, str] | None = None
) -> dict[str, Any]:
    """Any bytes as API Gateway hands them over (base64), to whatever route `path` names."""
    resource, parameters = path, None
    if path.startswith("/fuse/results/"):
        resource, parameters = "/fuse/results/{target_id}", {"target_id": path.rsplit("/", 1)[1]}
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": {"content-type": content_type, "authorization": f"Bearer {TOKEN}"},
        "multiValueHeaders": {},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": parameters,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "stage": "api",
            "domainName": "bridge.example.test",
            "requestId": str(uuid.uuid4()),
        },
        "body": base64.b64encode(raw).decode(),
        "isBase64Encoded": True,
    }


def hostile_bodies() -> list[tuple[str, bytes, str]]:
    """(name, body, Content-Type): the reproduced cases, then seeded random bytes."""
    rng = random.Random(SEED)
    cases = [
        (
            "lone surrogate",
            b'{"phone": "+16175551234", "reference": "\\ud800"}',
            "application/json",
        ),
        ("nested 20,000 deep", b"[" * 20_000, "application/json"),
        ("UTF-16", json.dumps({"phone": "+16175551234"}).encode("utf-16"), "application/json"),
        ("1e999", b'{"status": "completed", "duration": 1e999}', "application/json"),
        (
            "5,000 digits",
            b'{"status": "completed", "attempts": "' + b"9" * 5000 + b'"}',
            "application/json",
        ),
        (
            "superscript key",
            "status=completed&events[²][event]=x".encode(),
            "application/x-www-form-urlencoded",
        ),
        (
            "deep form key",
            b"status=completed&a" + b"[b]" * 5000 + b"=1",
            "application/x-www-form-urlencoded",
        ),
        ("non-Latin-1 boundary", b"--x--", "multipart/form-data; boundary=\u20ac"),
        (
            "XML entities",
            b'<!DOCTYPE r [<!ENTITY a "aa">]><result><status>&a;</status></result>',
            "application/xml",
        ),
        ("trailing newline", b'{"phone": "+16175551234", "dtmf": "1\\n"}', "application/json"),
        ("premium rate", b'{"phone": "+19005551234"}', "application/json"),
    ]
    for number in range(40):
        size = rng.choice((0, 1, 16, 512, 4096))
        content_type = rng.choice(("application/json", "application/x-www-form-urlencoded", ""))
        cases.append((f"random {number}", rng.randbytes(size), content_type))
    return cases


def hostile_inputs(call_id: str, report: Callable[[str], None]) -> None:
    """Every hostile body on every route that reads a body, and a few hostile queries."""
    token = callback_token(call_id, CALLBACK_SECRET)
    routes = {
        "POST /calls": lambda raw, ct: raw_event("POST", "/calls", raw, ct),
        "POST /calls/bulk": lambda raw, ct: raw_event("POST", "/calls/bulk", raw, ct),
        "POST /fuse/results/{id}": lambda raw, ct: raw_event(
            "POST", f"/fuse/results/{call_id}", raw, ct, {"token": token}
        ),
    }
    for route, event_for in routes.items():
        statuses = [
            app(event_for(raw, content_type or "application/json"), LambdaContext())["statusCode"]
            for _, raw, content_type in hostile_bodies()
        ]
        failed = sum(1 for s in statuses if s >= 500)
        report(f"8a. Hostile bodies on {route}: {len(statuses)} tried, 5xx: {failed} (target 0)")
    queries = [{"reference": "r", "limit": value} for value in ("²", "1" * 5000, "-1", "٣")]
    queries += [{"reference": "r", "cursor": "bm9wZQ"}, {"reference": "x" * 5000}]
    statuses = []
    for query in queries:
        event = api_event({}, path="/calls")
        event.update(httpMethod="GET", body=None, queryStringParameters=query)
        event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()}
        event["requestContext"]["httpMethod"] = "GET"
        statuses.append(app(event, LambdaContext())["statusCode"])
    failed = sum(1 for s in statuses if s >= 500)
    report(f"8a. Hostile queries on GET /calls: {len(statuses)} tried, 5xx: {failed} (target 0)")


def worst_callback_parse(report: Callable[[str], None]) -> None:
    """The slowest 256 KiB result body of a few shapes built to be slow, median of 5 each."""
    size = CALLBACK_BODY_BYTES
    shapes = {
        "form of repeated a[]=": (b"status=completed&" + b"a[]=1&" * (size // 6))[:size],
        "JSON at the nesting limit, wide": json.dumps(
            {"status": "completed", "x": [[[[[["y" * 10] * 10] * 10] * 10] * 5]]}
        ).encode()[:size],
        "JSON of 20,000 fields": json.dumps(
            {"status": "completed", **{f"k{i}": i for i in range(20_000)}}
        ).encode()[:size],
        "XML of many items": (
            b"<result><call_details><status>completed</status><events>"
            + b"<item><event>e</event><timestamp>1</timestamp></item>" * (size // 60)
            + b"</events></call_details></result>"
        ),
    }
    content_types = {
        "form of repeated a[]=": "application/x-www-form-urlencoded",
        "XML of many items": "application/xml",
    }
    worst = (0.0, "")
    for name, body in shapes.items():
        timings = []
        for _ in range(5):
            started = time.perf_counter()
            with contextlib.suppress(UnreadableResult):
                read_result(body, content_types.get(name, "application/json"))
            timings.append(time.perf_counter() - started)
        worst = max(worst, (statistics.median(timings), name))
    report(
        f"8b. Slowest 256 KiB result body to read: {worst[0] * 1000:.0f} ms ({worst[1]}; "
        "median of 5; 200 KB of a[]= took 19.5 s before)"
    )

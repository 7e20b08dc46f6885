"""End to end through the real local stack processes: make local's runner, queued over HTTP."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.helpers import ROOT

TOKEN = "e2e-token"
ADMIN = "local-admin-token"  # local/demo.py's
PHONE = "+16175551234"
# A user's own integration, tried offline through LOCAL_PARAMETERS.
OWN_INTEGRATION = {
    "integrations/my-crm/token": "my-crm-token",
    "integrations/my-crm/mapping": '{"phone": "lead.mobile", "reference": "lead.id"}',
}

pytestmark = pytest.mark.slow  # starts moto, the simulator and chalice local


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def local_stack(tmp_path: Path) -> Iterator[dict[str, str]]:
    ports = {
        "MOTO_PORT": free_port(),
        "FUSE_SIM_PORT": free_port(),
        "BRIDGE_PORT": free_port(),
        "DEMO_RECEIVER_PORT": free_port(),
    }
    own = tmp_path / "my-parameters.json"
    own.write_text(json.dumps(OWN_INTEGRATION))
    env = {
        **os.environ,
        **{k: str(v) for k, v in ports.items()},
        "LOCAL_API_TOKEN": TOKEN,
        "LOCAL_PARAMETERS": str(own),
    }
    env.pop("FUSE_BASE_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "local.run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    bridge = f"http://127.0.0.1:{ports['BRIDGE_PORT']}"
    urls = {
        "bridge": bridge,
        "fuse": f"http://127.0.0.1:{ports['FUSE_SIM_PORT']}",
        "moto_port": str(ports["MOTO_PORT"]),
    }
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            assert time.monotonic() < deadline, "the local stack did not start in 60 s"
            try:
                if requests.get(f"{bridge}/health", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.3)
        yield urls
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            output, _ = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
            pytest.fail(f"the local stack ignored SIGTERM:\n{output}")
    assert process.returncode == 0, output
    assert "fuse-bridge local stack stopped" in output
    assert "curl -i -X POST" in output  # the banner showed a ready-to-paste request
    assert "/calls?reference=lead-42" in output  # and how to read it back
    assert "X-HubSpot-Signature-v3" in output  # and a signed native webhook
    assert "/hooks/salesforce-demo?api_key=" in output  # and a Salesforce outbound message
    assert re.search(r"token=(?!<redacted>)", output) is None  # result URL tokens are masked
    for port in ports.values():  # everything it started has stopped listening
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.timeout(120)
def test_queue_a_call_through_the_local_stack(local_stack: dict[str, str]) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": "e2e-1"}
    body = {"phone": "+16175551234", "reference": "lead-42", "variables": {"name": "Ada"}}
    first = requests.post(f"{local_stack['bridge']}/calls", json=body, headers=headers, timeout=15)
    assert first.status_code == 202, first.text
    call = first.json()
    assert call["status"] == "queued"
    assert first.headers["Location"] == f"{local_stack['bridge']}/calls/{call['id']}"
    again = requests.post(f"{local_stack['bridge']}/calls", json=body, headers=headers, timeout=15)
    assert again.json() == call
    received = requests.get(f"{local_stack['fuse']}/_sim/requests", timeout=5).json()
    [queued] = [r for r in received if r["path"] == "/api/apps/101/201/queue"]
    assert queued["form"]["phone_number"] == "tel:+16175551234;ani=6175550100"
    metadata = json.loads(queued["form"]["metadata"])
    assert metadata["name"] == "Ada"
    assert metadata["opt_out_url"].startswith(
        f"{local_stack['bridge']}/fuse/opt-out/{call['id']}?n="
    )
    assert set(metadata) == {"name", "opt_out_url"}
    assert queued["form"]["result_url"].startswith(
        f"{local_stack['bridge']}/fuse/results/{call['id']}?token="
    )
    refused = requests.post(f"{local_stack['bridge']}/calls", json=body, timeout=15)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"

    # The simulator completes the call and POSTs its result back to the bridge.
    auth = {"Authorization": f"Bearer {TOKEN}"}
    deadline = time.monotonic() + 20
    while True:
        state = requests.get(f"{local_stack['bridge']}/calls/{call['id']}", headers=auth, timeout=5)
        assert state.status_code == 200, state.text
        if state.json()["status"] != "queued" or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    result = state.json()
    assert result["status"] == "completed"
    [posted] = requests.get(f"{local_stack['fuse']}/_sim/callbacks", timeout=5).json()
    assert posted["status"] == 200
    assert result["result"]["source"] == "callback"
    assert [e["event"] for e in result["result"]["events"]] == [
        "queued",
        "dialing",
        "connected",
        "disconnected",
    ]
    assert isinstance(result["result"]["duration"], int)
    listed = requests.get(
        f"{local_stack['bridge']}/calls?reference=lead-42", headers=auth, timeout=5
    ).json()
    assert [c["id"] for c in listed["calls"]] == [call["id"]]


@pytest.mark.timeout(120)
def test_a_message_on_the_local_queue_places_a_call(local_stack: dict[str, str]) -> None:
    sent = subprocess.run(
        [
            sys.executable,
            "-m",
            "local.send_request",
            json.dumps({"phone": PHONE, "reference": "sqs-1"}),
        ],
        cwd=ROOT,
        env={**os.environ, "MOTO_PORT": local_stack["moto_port"]},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert "sent as message" in sent.stdout
    auth = {"Authorization": f"Bearer {TOKEN}"}
    deadline = time.monotonic() + 30
    calls: list = []
    # Pending while it is placed (or waiting, should the budget's slot be taken: the local
    # dispatcher then sends it within its window), then queued.
    while time.monotonic() < deadline:
        listed = requests.get(
            f"{local_stack['bridge']}/calls?reference=sqs-1", headers=auth, timeout=5
        ).json()
        calls = listed["calls"]
        if calls and calls[0]["status"] in ("queued", "completed"):
            break
        time.sleep(0.3)
    [call] = calls
    assert call["request"]["phone"] == PHONE
    assert call["status"] in ("queued", "completed")


def send_hook(name: str, env: dict[str, str]) -> str:
    """`local.send_hook name`, as a user runs it: what it printed (the status, the answer)."""
    return subprocess.run(
        [sys.executable, "-m", "local.send_hook", name],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout


@pytest.mark.timeout(120)
def test_native_webhooks_through_the_local_stack(local_stack: dict[str, str]) -> None:
    """A demo integration's signed webhook, sent twice (one call), and the user's own
    integration from LOCAL_PARAMETERS."""
    env = {**os.environ, "BRIDGE_PORT": local_stack["bridge"].rsplit(":", 1)[1]}
    answers = [send_hook("hubspot-demo", env) for _ in range(2)]
    assert all(a.startswith("202 ") for a in answers), answers
    first, second = (json.loads(a.split(" ", 1)[1]) for a in answers)
    assert first["id"] == second["id"]
    mine = requests.post(
        f"{local_stack['bridge']}/hooks/my-crm",
        headers={"Authorization": "Bearer my-crm-token"},
        json={"lead": {"mobile": PHONE, "id": "L-1"}},
        timeout=10,
    )
    assert mine.status_code == 202, mine.text
    assert mine.json()["reference"] == "L-1"
    # The demo integration's result comes back to the demo receiver, signed, once.
    auth = {"Authorization": f"Bearer {ADMIN}"}
    deadline = time.monotonic() + 30
    delivery: dict = {}
    while delivery.get("status") != "delivered" and time.monotonic() < deadline:
        time.sleep(0.5)
        call = requests.get(f"{local_stack['bridge']}/calls/{first['id']}", headers=auth, timeout=5)
        delivery = call.json().get("delivery") or {}
    assert delivery.get("status") == "delivered", delivery
    # A Salesforce outbound message of two, sent twice: acknowledged each time, and its two calls
    # (no more) queued through the local dispatcher.
    for _ in range(2):
        sent = send_hook("salesforce-demo", env)
        assert sent.startswith("200 "), sent
        assert "<Ack>true</Ack>" in sent, sent
    deadline = time.monotonic() + 30
    statuses: list[str] = []
    while time.monotonic() < deadline:
        statuses = [
            call["status"]
            for reference in ("0035e00000B1xYzAAJ", "00Q5e00000C2wXyEAK")
            for call in requests.get(
                f"{local_stack['bridge']}/calls?reference={reference}", headers=auth, timeout=5
            ).json()["calls"]
        ]
        if len(statuses) == 2 and set(statuses) <= {"queued", "completed"}:
            break
        time.sleep(0.5)
    assert len(statuses) == 2, statuses
    assert set(statuses) <= {"queued", "completed"}, statuses

"""`make local`: the whole bridge on 127.0.0.1, offline, until Ctrl-C or SIGTERM.

Starts moto in server mode (SSM and DynamoDB, created and seeded with demo values), the Fuse
simulator (unless FUSE_BASE_URL names a real or other Fuse), and `chalice local` pointed at both.
Everything it starts, it stops.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import boto3
from moto.server import ThreadedMotoServer

from infra.parameters import put_parameters
from local.aws_setup import (
    atomic_moto_writes,
    create_call_requests_queue,
    create_calls_table,
    create_delivery_queue,
    create_dispatch_queue,
)
from local.demo import ADMIN_TOKEN, API_TOKEN, RESULTS_SECRET, demo_parameters, demo_results
from local.fuse_sim import FuseSimulator
from local.receiver import DemoReceiver
from local.salesforce_demo import SALESFORCE_DEMO_PARAMETERS
from local.sqs_poller import poll_forever

ROOT = Path(__file__).resolve().parent.parent
STAGE = "local"
HOST = "127.0.0.1"
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}
START_TIMEOUT_SECONDS = 60
# Every query value of a request line (an api_key in any spelling, a callback URL's token):
# masked by being a query value, not by the name it comes under.
QUERY_VALUE = re.compile(r"([?&][^=&\s\"']*=)[^&\s\"']+")
RECONCILE_EVERY_SECONDS = float(os.environ.get("LOCAL_RECONCILE_SECONDS", "30"))
LOCAL_FUSE_RATE_LIMIT = 5  # single queues a second the local simulator takes (FUSE_QUEUE_RATE: 2)


def stage_environment() -> dict[str, str]:
    """The local stage's variables, from the same config.json that `chalice local` reads."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    return {**config["environment_variables"], **config["stages"][STAGE]["environment_variables"]}


def require_free_port(port: int, variable: str) -> None:
    with socket.socket() as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            sys.exit(f"port {port} on {HOST} is in use; set {variable} to another port")


def wait_until_healthy(url: str, bridge: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if bridge.poll() is not None:
            sys.exit(f"chalice local exited with code {bridge.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - loopback URL
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"the bridge did not answer {url} within {START_TIMEOUT_SECONDS} s")


def run_reconciler_every(seconds: float, stop: threading.Event) -> None:
    """`chalice local` runs no schedules: this invokes the same handler Lambda would, in-process
    (the environment already points at moto and the simulator)."""
    from chalice.local import LambdaContext  # noqa: PLC0415 - only once the environment is set

    from app import app  # noqa: PLC0415

    handler = app.handler_map["reconcile_calls"]
    event = {
        "version": "0",
        "id": "local",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": "1970-01-01T00:00:00Z",
        "region": FAKE_AWS["AWS_REGION"],
        "resources": [],
        "detail": {},
    }
    while not stop.wait(seconds):
        try:
            handler(
                event,
                LambdaContext(
                    "reconcile_calls", memory_size=512, max_runtime_ms=int(seconds * 1000)
                ),
            )
        except Exception as err:
            print(f"reconciler run failed: {type(err).__name__}: {err}", flush=True)


def consume(
    queue_url: str, handler_name: str, stop: threading.Event, batch: int, window: float
) -> None:
    """Lambda's SQS event source, played in-process: see local/sqs_poller.py."""
    from app import app  # noqa: PLC0415 - only once the environment is set

    sqs = boto3.client("sqs")
    handler = app.handler_map[handler_name]
    region = FAKE_AWS["AWS_REGION"]
    poll_forever(sqs, queue_url, handler, region, stop, batch_size=batch, window=window)


def local_parameters() -> dict[str, str]:
    """LOCAL_PARAMETERS: a JSON file of more parameters (name under the stage prefix -> value),
    to try one's own integrations offline; they win over the demo's."""
    path = os.environ.get("LOCAL_PARAMETERS")
    if not path:
        return {}
    try:
        values = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        sys.exit(f"LOCAL_PARAMETERS: cannot read {path}: {err}")
    if not isinstance(values, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in values.items()
    ):
        sys.exit(f"LOCAL_PARAMETERS: {path} must hold a JSON object of strings")
    return values


def seed_aws(
    endpoint: str, stage: dict[str, str], token: str, receiver_url: str
) -> tuple[str, str, str]:
    """Creates and fills what the stage names; returns the call-request, delivery and dispatch
    queues' URLs."""
    create_calls_table(boto3.client("dynamodb", endpoint_url=endpoint), stage["CALLS_TABLE"])
    put_parameters(
        boto3.client("ssm", endpoint_url=endpoint),
        stage["BRIDGE_SSM_PREFIX"],
        {
            **demo_parameters(api_tokens=token),
            **SALESFORCE_DEMO_PARAMETERS,
            **demo_results(receiver_url),
            **local_parameters(),
        },
    )
    sqs = boto3.client("sqs", endpoint_url=endpoint)
    requests_url = create_call_requests_queue(sqs, stage["CALL_REQUESTS_QUEUE"])
    deliveries_url = create_delivery_queue(sqs, stage["DELIVERY_QUEUE"])
    return requests_url, deliveries_url, create_dispatch_queue(sqs, stage["DISPATCH_QUEUE"])


def start_bridge(port: int, env: dict[str, str]) -> subprocess.Popen[str]:
    """`chalice local`, its output passed on with query values masked: its access log prints
    each request line, and neither a callback URL's token nor an api_key may reach a log."""
    chalice = Path(sys.executable).parent / "chalice"
    command = [chalice, "local", "--host", HOST, "--port", str(port), "--stage", STAGE]
    bridge = subprocess.Popen(
        [*command, "--no-autoreload"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    threading.Thread(target=pass_on_masked, args=(bridge,), daemon=True).start()
    return bridge


def masked_line(line: str) -> str:
    return QUERY_VALUE.sub(r"\1<redacted>", line)


def pass_on_masked(bridge: subprocess.Popen[str]) -> None:
    for line in bridge.stdout or ():
        print(masked_line(line), end="", flush=True)


def stop_bridge(bridge: subprocess.Popen[str] | None) -> None:
    if bridge is None or bridge.poll() is not None:
        return
    bridge.terminate()
    try:
        bridge.wait(timeout=10)
    except subprocess.TimeoutExpired:
        bridge.kill()
        bridge.wait()


def main() -> None:
    moto_port = int(os.environ.get("MOTO_PORT", "5000"))
    sim_port = int(os.environ.get("FUSE_SIM_PORT", "8089"))
    bridge_port = int(os.environ.get("BRIDGE_PORT", "8000"))
    receiver_port = int(os.environ.get("DEMO_RECEIVER_PORT", "8090"))
    token = os.environ.get("LOCAL_API_TOKEN", API_TOKEN)
    external_fuse = os.environ.get("FUSE_BASE_URL")
    require_free_port(moto_port, "MOTO_PORT")
    require_free_port(bridge_port, "BRIDGE_PORT")
    require_free_port(receiver_port, "DEMO_RECEIVER_PORT")
    if not external_fuse:
        require_free_port(sim_port, "FUSE_SIM_PORT")

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's and the simulator's access logs
    logging.getLogger("botocore").setLevel(logging.WARNING)
    os.environ.update(FAKE_AWS)
    stage = stage_environment()
    aws_endpoint = f"http://{HOST}:{moto_port}"
    moto = ThreadedMotoServer(ip_address=HOST, port=moto_port, verbose=False)
    atomic = contextlib.ExitStack()
    atomic.enter_context(atomic_moto_writes())  # a burst's containers race as in DynamoDB
    moto.start()
    simulator = bridge = None
    receiver = DemoReceiver(RESULTS_SECRET, receiver_port, echo=True).start()
    try:
        queue_url, delivery_url, dispatch_url = seed_aws(aws_endpoint, stage, token, receiver.url)
        if not external_fuse:
            # As Plum warns, a Fuse that fails single queues sent too fast: the bridge's budget
            # (FUSE_QUEUE_RATE) keeps it from ever tripping this.
            simulator = FuseSimulator(port=sim_port, queue_rate_limit=LOCAL_FUSE_RATE_LIMIT).start()
        bridge_url = f"http://{HOST}:{bridge_port}"
        wiring = {
            "AWS_ENDPOINT_URL": aws_endpoint,
            "FUSE_BASE_URL": external_fuse or simulator.url,
            "PUBLIC_BASE_URL": bridge_url,
            "DELIVERY_PRIVATE_ADDRESSES": "true",  # the demo receiver is on 127.0.0.1
        }
        bridge = start_bridge(bridge_port, {**os.environ, **wiring})
        wait_until_healthy(f"{bridge_url}/health", bridge)
        # The reconciler runs in this process, configured as the bridge is.
        os.environ.update({**stage, **wiring})
        threading.Thread(
            target=run_reconciler_every, args=(RECONCILE_EVERY_SECONDS, stop), daemon=True
        ).start()
        # Lambda's event sources, played here: each queue's consumer with its batch size and
        # batching window, as the stage's configuration gives them.
        consumers = [
            (
                queue_url,
                "call_requests",
                int(stage["SQS_BATCH_SIZE"]),
                float(stage["SQS_BATCH_WINDOW_SECONDS"]),
            ),
            (delivery_url, "deliver_results", 10, 0),
            (
                dispatch_url,
                "dispatch_calls",
                int(stage["DISPATCH_BATCH_SIZE"]),
                float(stage["DISPATCH_WINDOW_SECONDS"]),
            ),
        ]
        for url, handler, batch, window in consumers:
            threading.Thread(
                target=consume, args=(url, handler, stop, batch, window), daemon=True
            ).start()
        print_banner(
            bridge_url,
            aws_endpoint,
            wiring["FUSE_BASE_URL"],
            token,
            queue_url,
            simulated=simulator is not None,
        )
        while not stop.is_set() and bridge.poll() is None:
            stop.wait(0.5)
    finally:
        stop.set()
        stop_bridge(bridge)
        if simulator is not None:
            simulator.stop()
        receiver.stop()
        moto.stop()
        atomic.close()
        print("fuse-bridge local stack stopped", flush=True)


def print_banner(
    bridge: str, aws: str, fuse: str, token: str, queue_url: str, *, simulated: bool
) -> None:
    fuse_note = "Fuse simulator" if simulated else "Fuse (FUSE_BASE_URL)"
    from local.send_hook import signed_request  # noqa: PLC0415 - it imports this module

    hook_url, hook_body, hook_headers = signed_request("hubspot-demo", bridge, time.time())
    signed = " ".join(f"-H '{name}: {value}'" for name, value in hook_headers.items())
    soap_url, soap_body, soap_headers = signed_request("salesforce-demo", bridge, time.time())
    soap = " ".join(f"-H '{name}: {value}'" for name, value in soap_headers.items())
    print(
        f"""
fuse-bridge is running locally (Ctrl-C stops everything):
  bridge          {bridge}
  moto (SSM, DynamoDB)  {aws}
  {fuse_note:<15} {fuse}
  API token       {token}

Queue a call:
  curl -i -X POST {bridge}/calls \\
    -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' \\
    -H 'Idempotency-Key: demo-1' \\
    -d '{{"phone": "+16175551234", "reference": "lead-42", "variables": {{"name": "Ada"}}}}'

Read it back by its reference, or at the Location the answer gave (a simulated call completes
a few seconds after it is queued):
  curl -s '{bridge}/calls?reference=lead-42' -H 'Authorization: Bearer {token}'

Or drop it on the local SQS queue, consumed here as Lambda's event source would:
  .venv/bin/python -m local.send_request '{{"phone": "+16175551234", "reference": "lead-43"}}'
  (the queue: {queue_url})

A CRM's own webhook (docs/integrations.md): the demo integration hubspot-demo takes HubSpot's
workflow shape with its v3 signature (this one was signed now, and is refused after 5 minutes):
  curl -i -X POST {hook_url} {signed} \
    -d '{hook_body.decode()}'
or, signed afresh each time (hubspot-demo, or webhooks-demo for Standard Webhooks):
  .venv/bin/python -m local.send_hook hubspot-demo
A Salesforce outbound message (salesforce-demo: a Contact and a Lead, two calls in one bulk;
answered <Ack>true</Ack>, and again, with no new call, when Salesforce sends it again):
  curl -i -X POST '{soap_url}' {soap} \
    --data-binary '{soap_body.decode().replace(chr(10), "")}'
Your own integrations: LOCAL_PARAMETERS=my-params.json make local (names under the prefix).
The demo integrations' results are delivered, signed, to a demo receiver here, which checks each
signature and prints what it gets (lines starting "receiver:").

The reconciler (lost callbacks) runs every {RECONCILE_EVERY_SECONDS:g} s.
The admin token (DELETE /campaigns/{{name}}/pending) is {ADMIN_TOKEN}.
""",
        flush=True,
    )


if __name__ == "__main__":
    main()

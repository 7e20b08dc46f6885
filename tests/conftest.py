"""Shared fixtures: moto for AWS, the Fuse simulator on 127.0.0.1, and the bridge wired to both."""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.config import Config
from chalice.test import Client
from moto import mock_aws
from moto.dynamodb.models import DynamoDBBackend

# Never reach real AWS, whatever the developer's shell has configured.
for variable in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
    os.environ.pop(variable, None)
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }
)

from app import app  # noqa: E402 - after the environment above
from chalicelib.dependencies import Dependencies, build_dependencies, set_dependencies  # noqa: E402
from chalicelib.logs import SERVICE, logger  # noqa: E402
from chalicelib.settings import load_settings  # noqa: E402
from infra.parameters import put_parameters  # noqa: E402
from local.aws_setup import create_calls_table  # noqa: E402
from local.fuse_simulator import FuseSimulator  # noqa: E402

PREFIX = "/fuse-bridge/test"
TABLE = "fuse-bridge-test-calls"
PUBLIC_BASE_URL = "https://bridge.example.test/api"
# Distinctive values, so a test can prove that none of them ever shows up in a log or answer.
FUSE_EMAIL = "bridge@example.test"
DEVELOPER_KEY = "dk-SECRET-7f3a9c"
CALLBACK_SECRET = "cb-SECRET-55aa01"
API_TOKEN = "tok-SECRET-91b2e4"
OTHER_TOKEN = "tok-SECRET-other"
ADMIN_TOKEN = "adm-SECRET-42c7"
CALLER_ID = "+16175550100"
PHONE = "+16175551234"
PARAMETERS = {
    "fuse/email": FUSE_EMAIL,
    "fuse/developer_key": DEVELOPER_KEY,
    "campaigns/default/application_id": "101",
    "campaigns/default/deployment_id": "201",
    "campaigns/default/caller_id": CALLER_ID,
    "campaigns/nocaller/application_id": "102",
    "campaigns/nocaller/deployment_id": "202",
    "campaigns/ghost/application_id": "999",
    "campaigns/ghost/deployment_id": "999",
    "campaigns/ghost/caller_id": CALLER_ID,
    "callback_secret": CALLBACK_SECRET,
    "api_tokens": f"{API_TOKEN}, {OTHER_TOKEN}",
    "admin_tokens": ADMIN_TOKEN,
}


@pytest.fixture(scope="session")
def fuse_server() -> Iterator[FuseSimulator]:
    with FuseSimulator(email=FUSE_EMAIL, developer_key=DEVELOPER_KEY, hang_seconds=3) as sim:
        yield sim


@pytest.fixture
def fuse(fuse_server: FuseSimulator) -> Iterator[FuseSimulator]:
    fuse_server.reset()
    yield fuse_server
    fuse_server.reset()


@dataclass
class Aws:
    ssm: Any
    dynamodb: Any


@pytest.fixture
def aws() -> Iterator[Aws]:
    with mock_aws():
        ssm = boto3.client("ssm")
        dynamodb = boto3.client("dynamodb")
        create_calls_table(dynamodb, TABLE)
        put_parameters(ssm, PREFIX, PARAMETERS)
        yield Aws(ssm=ssm, dynamodb=dynamodb)


def test_environment(fuse_url: str, **overrides: str) -> dict[str, str]:
    return {
        "BRIDGE_SSM_PREFIX": PREFIX,
        "CALLS_TABLE": TABLE,
        "FUSE_BASE_URL": fuse_url,
        "FUSE_TIMEOUT_SECONDS": "1",
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "DEFAULT_PHONE_REGION": "US",
        "SECRETS_TTL_SECONDS": "300",
        **overrides,
    }


@pytest.fixture
def deps(aws: Aws, fuse: FuseSimulator) -> Iterator[Dependencies]:
    """The bridge's collaborators as production builds them, against moto and the simulator."""
    dependencies = build_dependencies(load_settings(test_environment(fuse.url)))
    set_dependencies(dependencies)
    yield dependencies
    set_dependencies(None)


@pytest.fixture
def client(deps: Dependencies) -> Iterator[Client]:
    with Client(app) as test_client:
        yield test_client


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


def error_of(response: Any) -> dict[str, Any]:
    body = json.loads(response.body)
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]


@pytest.fixture
def bridge_logs() -> Iterator[io.StringIO]:
    """Every line the bridge logs, formatted exactly as in Lambda (Powertools JSON)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    bridge_logger = logging.getLogger(SERVICE)  # the logger under Powertools' and Chalice's
    bridge_logger.addHandler(handler)
    yield stream
    bridge_logger.removeHandler(handler)


@pytest.fixture
def atomic_dynamodb(monkeypatch: pytest.MonkeyPatch) -> None:
    """Makes moto's conditional writes atomic, as DynamoDB's are.

    moto checks a condition and then writes without a lock, so two threads can both pass the
    check; real DynamoDB serialises writes to an item. Concurrency tests need the real guarantee.
    """
    lock = threading.Lock()
    for name in ("put_item", "update_item", "delete_item"):
        original = getattr(DynamoDBBackend, name)

        def locked(*args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return __original(*args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, locked)


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

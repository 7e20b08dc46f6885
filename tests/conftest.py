"""Fixtures: moto for AWS, the Fuse simulator on 127.0.0.1, the bridge wired to both, and the
bridge's log lines. Shared values and helpers are in tests/helpers.py."""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator

import boto3
import pytest
from chalice.test import Client
from moto import mock_aws

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
from chalicelib.config.dependencies import Dependencies, build_dependencies, set_dependencies  # noqa: E402
from chalicelib.config.settings import load_settings  # noqa: E402
from chalicelib.logs import SERVICE, logger  # noqa: E402
from infra.parameters import put_parameters  # noqa: E402
from local.aws_setup import atomic_moto_writes, create_calls_table  # noqa: E402
from local.fuse_sim import FuseSimulator  # noqa: E402
from tests.helpers import (  # noqa: E402
    CRM_PARAMETERS,
    DEVELOPER_KEY,
    FUSE_EMAIL,
    PARAMETERS,
    PREFIX,
    TABLE,
    Aws,
    bridge_environment,
)


@pytest.fixture(scope="session")
def fuse_server() -> Iterator[FuseSimulator]:
    with FuseSimulator(email=FUSE_EMAIL, developer_key=DEVELOPER_KEY, hang_seconds=3) as sim:
        yield sim


@pytest.fixture
def fuse(fuse_server: FuseSimulator) -> Iterator[FuseSimulator]:
    fuse_server.reset()
    yield fuse_server
    fuse_server.reset()


@pytest.fixture
def aws() -> Iterator[Aws]:
    with mock_aws():
        ssm = boto3.client("ssm")
        dynamodb = boto3.client("dynamodb")
        create_calls_table(dynamodb, TABLE)
        put_parameters(ssm, PREFIX, PARAMETERS)
        yield Aws(ssm=ssm, dynamodb=dynamodb)


@pytest.fixture
def crm(aws: Aws) -> None:
    """The test stage's own integrations (tests.helpers.CRM_PARAMETERS) beside the demo's."""
    put_parameters(aws.ssm, PREFIX, CRM_PARAMETERS)


@pytest.fixture
def deps(aws: Aws, fuse: FuseSimulator) -> Iterator[Dependencies]:
    """The bridge's collaborators as production builds them, against moto and the simulator."""
    dependencies = build_dependencies(load_settings(bridge_environment(fuse.url)))
    set_dependencies(dependencies)
    yield dependencies
    set_dependencies(None)


@pytest.fixture
def client(deps: Dependencies) -> Iterator[Client]:
    with Client(app) as test_client:
        yield test_client


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
def atomic_dynamodb() -> Iterator[None]:
    """moto's conditional writes made atomic, as DynamoDB's are (local/aws_setup.py)."""
    with atomic_moto_writes():
        yield

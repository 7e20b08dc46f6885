"""The one place where the bridge's collaborators are built: lazily, once per warm container.

Nothing touches AWS or Fuse at import, so a cold start pays only for what a request uses, and a
test can install its own Dependencies (moto-backed clients, a simulator URL) before the first call.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import botocore
import botocore.session
from botocore.config import Config

from chalicelib.config.parameters import ParameterStore
from chalicelib.config.settings import Settings, load_settings
from chalicelib.fuse.client import FuseClient
from chalicelib.queues import SqsQueue
from chalicelib.results.publisher import ResultPublisher
from chalicelib.store.calls import CallStore

if TYPE_CHECKING:
    from chalicelib.deliveries.sender import DeliverySender

# Bounded and retried a little: a slow AWS answer must not hold a request past its Lambda timeout.
# Parameter validation is off: the bridge's few request shapes are fixed and tested against moto,
# and validating them again costs about 0.2 ms per AWS call on the warm path (measured in bench/).
# A User-Agent of our own names the bridge in CloudTrail, and spares botocore rebuilding its own
# (a dozen sanitised parts, twice per call): about 0.1 ms of every AWS call (measured, stubbed).
AWS_CONFIG = Config(
    connect_timeout=2,
    read_timeout=5,
    retries={"mode": "standard", "max_attempts": 3},
    parameter_validation=False,
    user_agent=f"fuse-bridge botocore/{botocore.__version__}",
)


@dataclass
class Dependencies:
    """Everything a request reaches outside the process, in one value a test can replace.
    Not frozen: a warm container keeps one, and tests swap its parts."""

    settings: Settings
    parameters: ParameterStore
    fuse: FuseClient
    store: CallStore
    publisher: ResultPublisher
    deliveries: SqsQueue = field(default_factory=lambda: SqsQueue(None, lambda: None))
    dispatch: SqsQueue = field(default_factory=lambda: SqsQueue(None, lambda: None, "call"))
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep  # the dispatcher's pause for a bulk's slot

    @functools.cached_property
    def sender(self) -> DeliverySender:
        """The POST to receivers, built on first use: only the delivery function sends one, so
        no other function's cold start imports it or opens its pool."""
        from chalicelib.deliveries.sender import DeliverySender  # noqa: PLC0415

        return DeliverySender(
            self.settings.delivery_timeout_seconds,
            private_allowed=self.settings.delivery_private_addresses,
        )


@functools.cache
def aws_session() -> botocore.session.Session:
    """One botocore session per container. botocore, not boto3: boto3's import brings in
    s3transfer, about a tenth of a cold start, for clients botocore makes the same."""
    return botocore.session.get_session()


def lazy_aws_client(service: str) -> Callable[[], Any]:
    """A client made on first use; botocore honours AWS_ENDPOINT_URL (how local/ points at
    moto) and AWS_REGION."""
    return functools.cache(lambda: aws_session().create_client(service, config=AWS_CONFIG))


def build_dependencies(settings: Settings) -> Dependencies:
    return Dependencies(
        settings=settings,
        parameters=ParameterStore(
            settings.ssm_prefix, settings.parameters_ttl_seconds, lazy_aws_client("ssm")
        ),
        fuse=FuseClient(settings.fuse_base_url, settings.fuse_timeout_seconds),
        store=CallStore(settings.calls_table, lazy_aws_client("dynamodb")),
        publisher=ResultPublisher(settings.results_event_bus, lazy_aws_client("events")),
        deliveries=SqsQueue(settings.delivery_queue, lazy_aws_client("sqs")),
        dispatch=SqsQueue(settings.dispatch_queue, lazy_aws_client("sqs"), "call"),
    )


_current: Dependencies | None = None


def get_dependencies() -> Dependencies:
    global _current  # noqa: PLW0603 - one set of collaborators per container, by design
    if _current is None:
        _current = build_dependencies(load_settings())
    return _current


def set_dependencies(dependencies: Dependencies | None) -> None:
    """For tests and tools: install collaborators, or None to rebuild from the environment."""
    global _current  # noqa: PLW0603
    _current = dependencies

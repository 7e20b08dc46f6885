"""Run-time settings, read once per container from environment variables (set per stage)."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from chalicelib.consent.hours import CallingHours, parse_calling_hours
from chalicelib.errors import ConfigurationIncomplete
from chalicelib.validation.phones import DEFAULT_NUMBER_TYPES, NUMBER_TYPES, DialPolicy

DEFAULT_FUSE_BASE_URL = "https://fuse.plumvoice.com/api"
COUNTRY = re.compile(r"[A-Z]{2}|001")
# What a handler keeps in hand beyond one outbound request's deadline before it starts it: the
# AWS writes around the request (its record, its outcome) must fit in the invocation too.
START_MARGIN_SECONDS = 3
DEFAULT_CALLING_HOURS = "08:00-21:00"  # 47 CFR 64.1200(c)(1), in the callee's local time


@dataclass(frozen=True)
class Settings:
    """The environment, read once per container: what a stage configures and no secret (those
    are in SSM)."""

    ssm_prefix: str
    calls_table: str
    fuse_base_url: str
    fuse_timeout_seconds: float
    public_base_url: str  # empty: derived per request from API Gateway's own domain and stage
    default_phone_region: str
    parameters_ttl_seconds: float
    retention_days: int
    results_event_bus: str | None  # EventBridge bus for result events; None: none are sent
    reconcile_after_seconds: int  # how long after its last possible attempt a call is polled
    reconcile_per_run: int  # calls the reconciler looks at per run, at most
    dial_policy: DialPolicy = field(default_factory=lambda: DialPolicy.for_region("US"))
    # How long a native webhook without any key is recognised by its body: past the retries of
    # the senders docs/integrations.md names (HubSpot's three days, Salesforce's day, Standard
    # Webhooks senders' days), and longer while the call it named is still open.
    dedup_window_seconds: int = 7 * 86400
    # Result deliveries (issue 11): the queue (None: none are sent), the first retry's delay,
    # each POST's total deadline, and the attempts before the dead-letter queue.
    delivery_queue: str | None = None
    delivery_retry_base_seconds: float = 30
    delivery_timeout_seconds: float = 10
    delivery_max_attempts: int = 37
    # The local stage's own receiver: loopback and plain http allowed (never in a deployed one).
    delivery_private_addresses: bool = False
    # Dispatch (issue 20): the queue calls wait in when Fuse's single queue must not take them
    # now (None: no waiting, every call is sent at once, unpaced); how many single queue
    # requests a second the Fuse account takes; how long a call may wait at most; how long
    # the budget stays shut after Fuse failed.
    dispatch_queue: str | None = None
    fuse_queue_rate: int = 2
    fuse_bulk_rate: float = 1.0  # bulk_queue requests a second per Fuse account
    dispatch_max_wait_seconds: int = 6 * 3600
    breaker_open_seconds: int = 30
    # Consent (issue 21): the deployment's calling hours in the callee's local time (a
    # campaign's own and the calling rules narrow them), and the most calls one number gets in
    # any 24 hours (0: no cap).
    calling_hours: CallingHours = field(
        default_factory=lambda: parse_calling_hours(DEFAULT_CALLING_HOURS)
    )
    max_calls_per_number: int = 3

    @property
    def fuse_request_seconds(self) -> float:
        """The invocation time one more Fuse request needs, with what surrounds it."""
        return self.fuse_timeout_seconds + START_MARGIN_SECONDS

    @property
    def dispatching(self) -> bool:
        """Whether calls are paced: sent alone within the budget, else waiting for a bulk."""
        return self.dispatch_queue is not None

    @property
    def delivery_request_seconds(self) -> float:
        """The invocation time one more delivery POST needs, with what surrounds it."""
        return self.delivery_timeout_seconds + START_MARGIN_SECONDS

    def expires_at(self, now: float) -> int:
        """When a record written now leaves the table (DynamoDB TTL): RETENTION_DAYS later."""
        return math.floor(now) + self.retention_days * 86400

    @property
    def in_flight_seconds(self) -> float:
        """How long a call being placed holds its idempotency key before replays call it unknown.

        Longer than any one Fuse request (timeout plus margin for the rest of the invocation), so
        a live request is never mistaken for a dead one.
        """
        return self.fuse_timeout_seconds + 20


@dataclass(frozen=True)
class EventWiring:
    """What Chalice must know when it loads the app (to build the schedule and the event
    sources), so it is read at import, apart from Settings, which is read on first use."""

    reconcile_rate_minutes: int
    call_requests_queue: str
    sqs_batch_size: int
    sqs_batch_window_seconds: int  # AWS wants one of at least 1 s for a batch of more than 10
    sqs_maximum_concurrency: int
    call_request_source: str
    delivery_queue: str
    # The dispatcher's event source: its queue, batch (one bulk per group of a batch), batching
    # window, and how many run at once (so at most that many bulk_queue requests in flight).
    dispatch_queue: str
    dispatch_batch_size: int
    dispatch_window_seconds: int
    fuse_bulk_concurrency: int


def _reader(environ: Mapping[str, str] | None) -> tuple[Callable[..., str], Callable[..., float]]:
    """`required(name)` and `number(name, default, low, high)` over the environment; a missing
    or malformed value names its variable."""
    env = os.environ if environ is None else environ

    def required(name: str) -> str:
        value = env.get(name, "").strip()
        if not value:
            raise ConfigurationIncomplete(f"environment variable {name} is not set")
        return value

    def number(name: str, default: float, low: float, high: float) -> float:
        raw = env.get(name, "").strip()
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigurationIncomplete(f"environment variable {name} must be a number") from None
        if not low <= value <= high:
            raise ConfigurationIncomplete(
                f"environment variable {name} must be between {low:g} and {high:g}"
            )
        return value

    return required, number


def load_event_wiring(environ: Mapping[str, str] | None = None) -> EventWiring:
    env = os.environ if environ is None else environ
    _, number = _reader(env)
    return EventWiring(
        reconcile_rate_minutes=int(number("RECONCILE_RATE_MINUTES", 15, 1, 1440)),
        call_requests_queue=env.get("CALL_REQUESTS_QUEUE", "").strip()
        or "fuse-bridge-call-requests",
        sqs_batch_size=int(number("SQS_BATCH_SIZE", 100, 1, 1000)),
        sqs_batch_window_seconds=int(number("SQS_BATCH_WINDOW_SECONDS", 1, 1, 300)),
        sqs_maximum_concurrency=int(number("SQS_MAXIMUM_CONCURRENCY", 2, 2, 1000)),
        call_request_source=env.get("CALL_REQUEST_SOURCE", "").strip() or "crm",
        delivery_queue=env.get("DELIVERY_QUEUE", "").strip() or "fuse-bridge-deliveries",
        dispatch_queue=env.get("DISPATCH_QUEUE", "").strip() or "fuse-bridge-dispatch",
        dispatch_batch_size=int(number("DISPATCH_BATCH_SIZE", 100, 1, 500)),
        # AWS wants a window of at least 1 s for a batch of more than 10.
        dispatch_window_seconds=int(number("DISPATCH_WINDOW_SECONDS", 5, 1, 300)),
        fuse_bulk_concurrency=int(number("FUSE_BULK_CONCURRENCY", 2, 2, 1000)),
    )


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Reads and checks the environment; a missing or malformed value names its variable."""
    env = os.environ if environ is None else environ
    required, number = _reader(env)
    prefix = "/" + required("BRIDGE_SSM_PREFIX").strip("/")
    region = (env.get("DEFAULT_PHONE_REGION") or "US").strip().upper()
    dedup_window = int(number("DEDUP_WINDOW_SECONDS", 7 * 86400, 60, 30 * 86400))
    # A record kept less long than the dedup window would let a keyless webhook's retry within
    # the window find its call gone and place it again: retention is at least the window.
    retention_days = max(int(number("RETENTION_DAYS", 90, 1, 3650)), -(-dedup_window // 86400))
    return Settings(
        ssm_prefix=prefix,
        calls_table=required("CALLS_TABLE"),
        fuse_base_url=(env.get("FUSE_BASE_URL") or DEFAULT_FUSE_BASE_URL).rstrip("/"),
        fuse_timeout_seconds=number("FUSE_TIMEOUT_SECONDS", 10, 0.1, 60),
        public_base_url=env.get("PUBLIC_BASE_URL", "").strip().rstrip("/"),
        default_phone_region=region,
        parameters_ttl_seconds=number("SECRETS_TTL_SECONDS", 300, 0, 86400),
        retention_days=retention_days,
        results_event_bus=env.get("RESULTS_EVENT_BUS", "").strip() or None,
        reconcile_after_seconds=int(number("RECONCILE_AFTER_SECONDS", 3600, 60, 7 * 86400)),
        reconcile_per_run=int(number("RECONCILE_BATCH", 50, 1, 1000)),
        dial_policy=dial_policy(env, region),
        dedup_window_seconds=dedup_window,
        delivery_queue=env.get("DELIVERY_QUEUE", "").strip() or None,
        delivery_retry_base_seconds=number("DELIVERY_RETRY_BASE_SECONDS", 30, 1, 3600),
        delivery_timeout_seconds=number("DELIVERY_TIMEOUT_SECONDS", 10, 0.1, 60),
        delivery_max_attempts=int(number("DELIVERY_MAX_ATTEMPTS", 37, 1, 100)),
        delivery_private_addresses=env.get("DELIVERY_PRIVATE_ADDRESSES", "").strip() == "true",
        dispatch_queue=env.get("DISPATCH_QUEUE", "").strip() or None,
        fuse_queue_rate=int(number("FUSE_QUEUE_RATE", 2, 0, 1000)),
        fuse_bulk_rate=number("FUSE_BULK_RATE", 1, 0.1, 100),
        # At most 3 days: the dispatch queue keeps a message 4 (then it is gone, not dead-lettered).
        dispatch_max_wait_seconds=int(number("DISPATCH_MAX_WAIT_SECONDS", 6 * 3600, 60, 3 * 86400)),
        breaker_open_seconds=int(number("FUSE_BREAKER_SECONDS", 30, 1, 3600)),
        calling_hours=calling_hours(env),
        max_calls_per_number=int(number("MAX_CALLS_PER_NUMBER", 3, 0, 1000)),
    )


def calling_hours(env: Mapping[str, str]) -> CallingHours:
    """CALLING_HOURS (default 08:00-21:00, 47 CFR 64.1200(c)(1)) and CALLING_DAYS (default
    every day), in the callee's local time."""
    try:
        return parse_calling_hours(
            env.get("CALLING_HOURS", "").strip() or DEFAULT_CALLING_HOURS,
            env.get("CALLING_DAYS", "").strip() or None,
        )
    except ValueError as err:
        raise ConfigurationIncomplete(
            f"environment variable CALLING_HOURS or CALLING_DAYS {err}"
        ) from None


def dial_policy(env: Mapping[str, str], region: str) -> DialPolicy:
    """ALLOWED_COUNTRIES (ISO regions, `001` for non-geographic numbers; default: the default
    phone region) and ALLOWED_NUMBER_TYPES (default: the ordinary ones), both comma-separated."""
    countries = {c.strip().upper() for c in env.get("ALLOWED_COUNTRIES", "").split(",")} - {""}
    for country in countries:
        if not COUNTRY.fullmatch(country):
            raise ConfigurationIncomplete(
                "environment variable ALLOWED_COUNTRIES must list ISO regions such as US,CA "
                "(or 001 for non-geographic numbers)"
            )
    types = {t.strip().lower() for t in env.get("ALLOWED_NUMBER_TYPES", "").split(",")} - {""}
    if unknown := types - set(NUMBER_TYPES):
        raise ConfigurationIncomplete(
            f"environment variable ALLOWED_NUMBER_TYPES names unknown types {sorted(unknown)}; "
            f"known: {', '.join(sorted(NUMBER_TYPES))}"
        )
    return DialPolicy(
        countries=frozenset(countries or {region}),
        number_types=frozenset(types) or DEFAULT_NUMBER_TYPES,
    )

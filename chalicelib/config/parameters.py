"""The bridge's SSM parameters (Fuse's credentials, the secrets, campaigns and integrations),
read in one walk and cached per container.

All parameters under the stage prefix come in one GetParametersByPath walk (10 a page, the most SSM
allows), so a cold start costs one or two SSM calls and a warm request none. The cache expires after
SECRETS_TTL_SECONDS, so a rotated developer key or API token takes effect without a deploy.

When SSM cannot be reached at refresh time, the values already held are kept for up to an hour
more (and the refresh is tried again on every request): a blip of SSM must not stop calls that
the bridge knows how to place. Only a container with nothing cached answers secrets_unavailable.

This is a few lines of our own rather than Powertools Parameters: that module alone adds about
30 ms to every cold start (measured with `python -X importtime`), for a paginator and a timestamp.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.campaigns import Campaign
from chalicelib.config.integrations import Integration, comma_list, parse_integrations
from chalicelib.consent.hours import ANY_HOUR, parse_calling_hours
from chalicelib.consent.zones import known_zone
from chalicelib.errors import ConfigurationIncomplete, SecretsUnavailable
from chalicelib.fuse.client import FuseCredentials
from chalicelib.logs import logger

if TYPE_CHECKING:
    from chalicelib.consent.rules import CallingRule

STALE_IF_ERROR_SECONDS = 3600
CAMPAIGN_PARAMETER = re.compile(
    r"campaigns/([A-Za-z0-9_-]{1,64})/"
    r"(application_id|deployment_id|caller_ids|caller_id|calling_hours|calling_days|timezone)"
)


@dataclass(frozen=True, repr=False)
class Parameters:
    """Everything under the stage's SSM prefix, read. Never printed: repr hides every value, so
    a stray log of this object leaks nothing."""

    fuse_email: str
    developer_key: str
    callback_secret: str
    campaigns: Mapping[str, Campaign] = field(default_factory=dict)
    admin_tokens: tuple[str, ...] = ()  # may use every caller route, and cancel campaigns
    # What is missing (parameter name -> message): only what needs it fails, and only once the
    # caller is authenticated, so a stranger learns nothing about the configuration.
    missing: Mapping[str, str] = field(default_factory=dict)
    # Keys the HMAC of ids derived from idempotency keys: set once, never rotated (a new one
    # would make every key in flight new, and a retry could dial again).
    id_secret: str = ""
    # Every named caller, `default` (the api_tokens) included: see config/integrations.py.
    integrations: Mapping[str, Integration] = field(default_factory=dict)
    # Narrower calling hours and lower caps by number prefix (docs/consent.md).
    calling_rules: tuple[CallingRule, ...] = ()

    @property
    def fuse_credentials(self) -> FuseCredentials:
        self.require("fuse/email", "fuse/developer_key")
        return FuseCredentials(self.fuse_email, self.developer_key)

    @property
    def delivering(self) -> frozenset[str]:
        """The integrations whose outcomes are delivered to them."""
        return frozenset(name for name, i in self.integrations.items() if i.delivery_target)

    def require(self, *names: str) -> None:
        for name in names:
            if name in self.missing:
                raise ConfigurationIncomplete(self.missing[name])

    def __repr__(self) -> str:
        return f"Parameters(campaigns={sorted(self.campaigns)}, values=<redacted>)"


def parse_parameters(values: Mapping[str, str], prefix: str) -> Parameters:
    """Builds Parameters from parameter names relative to the prefix. Nothing missing raises here:
    each problem is recorded (and logged by the store) for the one thing that needs it."""
    missing: dict[str, str] = {}

    def required(name: str) -> str:
        value = values.get(name, "").strip()
        if not value:
            missing[name] = f"SSM parameter {prefix}/{name} is missing or empty"
        return value

    fields: dict[str, dict[str, str]] = {}
    for name, value in values.items():
        if match := CAMPAIGN_PARAMETER.fullmatch(name):
            fields.setdefault(match.group(1), {})[match.group(2)] = value.strip()
    campaigns = {}
    for name, parts in fields.items():
        absent = [p for p in ("application_id", "deployment_id") if not parts.get(p)]
        problem = (
            f"campaign {name!r} is not fully configured: SSM parameter "
            f"{prefix}/campaigns/{name}/{absent[0]} is missing or empty"
            if absent
            else consent_problem(parts, f"{prefix}/campaigns/{name}")
        )
        campaigns[name] = Campaign(
            name=name,
            application_id=parts.get("application_id", ""),
            deployment_id=parts.get("deployment_id", ""),
            caller_id=parts.get("caller_id") or None,
            problem=problem,
            caller_ids=tuple(
                c.strip() for c in parts.get("caller_ids", "").split(",") if c.strip()
            ),
            calling_hours=parts.get("calling_hours") or None,
            calling_days=parts.get("calling_days") or None,
            timezone=parts.get("timezone") or None,
        )
    # api_tokens is the integration `default`'s (when none is configured): a missing one is
    # that integration's problem, logged with the others.
    integrations = parse_integrations(values, prefix, comma_list(values.get("api_tokens", "")))
    admin_tokens = comma_list(values.get("admin_tokens", ""))
    calling_rules: tuple[CallingRule, ...] = ()
    if values.get("calling_rules", "").strip():  # the rules' module only where there are rules
        from chalicelib.consent.rules import parse_calling_rules  # noqa: PLC0415

        try:
            calling_rules = parse_calling_rules(values["calling_rules"])
        except ValueError as err:  # no call goes until an operator mends it: rules are promises
            missing["calling_rules"] = f"SSM parameter {prefix}/calling_rules {err}"
    return Parameters(
        fuse_email=required("fuse/email"),
        developer_key=required("fuse/developer_key"),
        callback_secret=required("callback_secret"),
        id_secret=required("id_secret"),
        campaigns=campaigns,
        admin_tokens=admin_tokens,
        missing=missing,
        integrations=integrations,
        calling_rules=calling_rules,
    )


def consent_problem(parts: Mapping[str, str], path: str) -> str | None:
    """Why a campaign's calling hours, days or zone cannot be read, if they cannot: such a
    campaign places nothing (a typo must not widen the hours)."""
    try:
        parse_calling_hours(parts.get("calling_hours") or ANY_HOUR, parts.get("calling_days"))
    except ValueError as err:
        return f"SSM parameter {path}/calling_hours or calling_days {err}"
    zone = parts.get("timezone")
    if zone and not known_zone(zone):
        return f"SSM parameter {path}/timezone is not an IANA time zone name"
    return None


def log_problems(parameters: Parameters) -> None:
    """Each missing parameter and half-written campaign, once per load (the names, no value)."""
    problems = [*parameters.missing.values()]
    problems += [c.problem for c in parameters.campaigns.values() if c.problem]
    integrations = parameters.integrations.values()
    problems += [i.problem for i in integrations if i.problem]
    problems += [i.delivery_problem for i in integrations if i.delivery_problem]
    if problems:
        logger.error("configuration incomplete", extra={"problems": problems})


MAX_PAGES = 100  # 1,000 parameters: far past any configuration, and a bound on a cold start


class ParameterStore:
    """Fetches every parameter under the prefix at most once per TTL."""

    def __init__(
        self,
        prefix: str,
        ttl_seconds: float,
        ssm_client: Callable[[], Any],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._prefix = prefix
        self._ttl = ttl_seconds
        self._ssm_client = ssm_client
        self._clock = clock
        self._cached: Parameters | None = None
        self._fetched_at = 0.0
        self._lock = threading.Lock()

    def get(self) -> Parameters:
        with self._lock:
            age = self._clock() - self._fetched_at
            if self._cached is not None and age < self._ttl:
                return self._cached
            try:
                self._cached = parse_parameters(self._fetch(), self._prefix)
                log_problems(self._cached)
            except SecretsUnavailable:
                if self._cached is None or age >= self._ttl + STALE_IF_ERROR_SECONDS:
                    raise
                logger.warning(
                    "SSM unreachable; using secrets past their TTL", extra={"age_s": age}
                )
                return self._cached
            self._fetched_at = self._clock()
            return self._cached

    def _fetch(self) -> dict[str, str]:
        """Every parameter under the prefix, following NextToken by hand: botocore's paginator
        first lists every service botocore knows to find its paginator file, about 15 ms of a
        cold start, for a loop this short."""
        values: dict[str, str] = {}
        request = {"Path": self._prefix, "Recursive": True, "WithDecryption": True}
        try:
            client = self._ssm_client()
            for _ in range(MAX_PAGES):
                page = client.get_parameters_by_path(**request, MaxResults=10)
                for parameter in page["Parameters"]:
                    values[parameter["Name"][len(self._prefix) :].lstrip("/")] = parameter["Value"]
                if not page.get("NextToken"):
                    break
                request["NextToken"] = page["NextToken"]
            else:
                logger.error(
                    "SSM parameters past the page limit ignored", extra={"pages": MAX_PAGES}
                )
        except (BotoCoreError, ClientError) as err:
            # The error names the operation and AWS's code, never a parameter value.
            logger.error("SSM read failed", extra={"error_type": type(err).__name__})
            raise SecretsUnavailable(
                "the bridge cannot read its secrets from SSM; retry later"
            ) from None
        return values

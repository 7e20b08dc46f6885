"""Integrations: the named callers of the bridge, each with its own credentials, campaigns,
webhook shape and delivery target, configured in SSM under `integrations/{name}/` alone (no code
per CRM). Read from the parameters, pure: nothing here does I/O.

`Caller` is who a request turned out to be: its integration (whose calls it sees, whose
idempotency keys are its own, which campaigns it may use), or an admin. The existing
`api_tokens` parameter is the integration `default` (bearer, every campaign).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import jmespath
from jmespath.exceptions import JMESPathError
from jmespath.parser import ParsedResult

from chalicelib.http.standard_webhooks import StandardWebhooks
from chalicelib.records import DEFAULT_INTEGRATION
from chalicelib.validation.fields import CALL_FIELDS, SALESFORCE_ID

INTEGRATION_NAME = re.compile(r"[a-z0-9-]{1,40}")
INTEGRATION_PARAMETER = re.compile(
    r"integrations/([a-z0-9-]{1,40})/"
    r"(token|auth|signing_secret|campaigns|mapping|org_ids"
    r"|results_url|results_secret|results_include_phone)"
)
# Where deliveries may go (`results_url`): https, or plain http to this machine (make local's
# receiver).
DELIVERY_URL = re.compile(
    r"https://[^\s/?#]+[^\s]*|http://(127\.0\.0\.1|localhost)(:[0-9]{1,5})?(/[^\s]*)?"
)
BEARER, QUERY, HUBSPOT_V3, STANDARD_WEBHOOKS = "bearer", "query", "hubspot-v3", "standard-webhooks"
SALESFORCE = "salesforce"  # Outbound Messaging: a token in the URL, and the sender's org id
AUTH_SCHEMES = (BEARER, QUERY, HUBSPOT_V3, STANDARD_WEBHOOKS, SALESFORCE)
SIGNED = (HUBSPOT_V3, STANDARD_WEBHOOKS)
HOOKS_ONLY = (*SIGNED, SALESFORCE)  # place calls only by their webhooks; their `token` reads
# What a Salesforce integration maps when it configures no mapping: a Contact's or a Lead's
# phone, and the record's id as the reference.
SALESFORCE_MAPPING = '{"phone": "Phone", "reference": "Id"}'
MAPPABLE = CALL_FIELDS  # what a mapping may produce: the POST /calls fields


@dataclass(frozen=True)
class FieldMapping:
    """One bridge field and the JMESPath expression over the incoming body that gives it."""

    field: str
    expression: str
    compiled: ParsedResult


@dataclass(frozen=True, repr=False)
class DeliveryTarget:
    """Where an integration's outcomes are delivered (its `results_url`), and the signer of
    each delivery (its `results_secret`, Standard Webhooks)."""

    url: str
    signer: StandardWebhooks
    include_phone: bool = False

    def __repr__(self) -> str:
        return "DeliveryTarget(<redacted>)"


@dataclass(frozen=True, repr=False)
class Integration:
    """Never printed whole: it holds tokens and signing secrets."""

    name: str
    auth: str = BEARER
    tokens: tuple[str, ...] = ()
    signing_secrets: tuple[str, ...] = ()
    campaigns: frozenset[str] | None = None  # None: every campaign
    mapping: tuple[FieldMapping, ...] | None = None  # None: the body is the bridge's own JSON
    problem: str | None = None  # why it cannot be used; the others work regardless
    delivery_target: DeliveryTarget | None = None  # None: its outcomes are not delivered
    delivery_problem: str | None = None  # why deliveries are off (the rest works)
    # Its webhooks' signer (which verifies them) when `auth` is standard-webhooks.
    signer: StandardWebhooks | None = None
    # The Salesforce orgs whose outbound messages it takes (`org_ids`), each by its first 15.
    org_ids: frozenset[str] = frozenset()

    def __repr__(self) -> str:
        return f"Integration({self.name!r}, auth={self.auth!r}, values=<redacted>)"


@dataclass(frozen=True)
class Caller:
    """Who a request is from, and so what it may see and do."""

    integration: str = DEFAULT_INTEGRATION
    admin: bool = False
    campaigns: frozenset[str] | None = None  # None: every campaign

    def may_read(self, owner: str) -> bool:
        """Another integration's call or list is, to this caller, as if absent."""
        return self.admin or owner == self.integration

    def may_use(self, campaign: str) -> bool:
        return self.campaigns is None or campaign in self.campaigns

    @classmethod
    def of(cls, integration: Integration) -> Caller:
        return cls(integration.name, campaigns=integration.campaigns)


ADMIN = Caller(DEFAULT_INTEGRATION, admin=True)


def comma_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def parse_integrations(
    values: Mapping[str, str], prefix: str, api_tokens: tuple[str, ...]
) -> dict[str, Integration]:
    """Every integration under `integrations/`, plus `default` from `api_tokens` unless one
    named `default` is configured. A half-written one is kept with its `problem`."""
    fields: dict[str, dict[str, str]] = {}
    for name, value in values.items():
        if match := INTEGRATION_PARAMETER.fullmatch(name):
            fields.setdefault(match.group(1), {})[match.group(2)] = value.strip()
    integrations = {name: read_integration(name, parts, prefix) for name, parts in fields.items()}
    own_default = fields.get(DEFAULT_INTEGRATION, {})
    if not own_default.keys() & {"token", "signing_secret"}:  # only settings: api_tokens' own
        parts = {**own_default, "token": ",".join(api_tokens)}
        integrations[DEFAULT_INTEGRATION] = read_integration(
            DEFAULT_INTEGRATION, parts, prefix, f"{prefix}/api_tokens"
        )
    return integrations


def read_integration(
    name: str, parts: Mapping[str, str], prefix: str, token_parameter: str | None = None
) -> Integration:
    """One integration from its parameters; `token_parameter` names where its tokens come
    from when not `integrations/{name}/token` (the default's: `api_tokens`)."""
    where = f"{prefix}/integrations/{name}"
    auth = parts.get("auth") or BEARER
    campaigns = frozenset(comma_list(parts["campaigns"])) if parts.get("campaigns") else None
    base = Integration(
        name,
        auth=auth,
        tokens=comma_list(parts.get("token", "")),
        signing_secrets=comma_list(parts.get("signing_secret", "")),
        campaigns=campaigns,
    )
    signer = StandardWebhooks.of(base.signing_secrets) if auth == STANDARD_WEBHOOKS else None
    org_ids = comma_list(parts.get("org_ids", ""))
    problem = None
    mapping = None
    if auth not in AUTH_SCHEMES:
        problem = f"SSM parameter {where}/auth must be one of {', '.join(AUTH_SCHEMES)}"
    elif auth in SIGNED and not base.signing_secrets:
        problem = f"SSM parameter {where}/signing_secret is missing or empty (auth {auth})"
    elif auth == STANDARD_WEBHOOKS and signer is None:
        problem = f"SSM parameter {where}/signing_secret must be whsec_ and base64"
    elif auth not in SIGNED and not base.tokens:
        token_parameter = token_parameter or f"{where}/token"
        problem = f"SSM parameter {token_parameter} is missing or empty (auth {auth})"
    elif auth == SALESFORCE and not (org_ids and all(SALESFORCE_ID.fullmatch(o) for o in org_ids)):
        problem = f"SSM parameter {where}/org_ids must list org ids of 15 or 18 characters"
    mapping_text = parts.get("mapping") or (SALESFORCE_MAPPING if auth == SALESFORCE else "")
    if problem is None and mapping_text:
        mapping, problem = parse_mapping(mapping_text, f"{where}/mapping")
    keyed = any(item.field == "idempotency_key" for item in mapping or ())
    if problem is None and auth == SALESFORCE and keyed:
        problem = f"SSM parameter {where}/mapping: Salesforce's notification Id is the key"
    target, delivery_problem = read_delivery_target(parts, where)
    return Integration(
        name,
        auth=auth,
        tokens=base.tokens,
        signing_secrets=base.signing_secrets,
        campaigns=campaigns,
        mapping=mapping,
        problem=problem,
        delivery_target=target,
        delivery_problem=delivery_problem,
        signer=signer,
        org_ids=frozenset(org[:15] for org in org_ids) if auth == SALESFORCE else frozenset(),
    )


def read_delivery_target(
    parts: Mapping[str, str], where: str
) -> tuple[DeliveryTarget | None, str | None]:
    """`results_url` (https; http only to 127.0.0.1) and its `results_secret`; a problem turns
    deliveries off for this integration alone, and is logged."""
    url = parts.get("results_url", "")
    if not url:
        return None, None
    signer = StandardWebhooks.of(comma_list(parts.get("results_secret", "")))
    if not DELIVERY_URL.fullmatch(url) or "@" in urlsplit(url).netloc:
        return None, (
            f"SSM parameter {where}/results_url must be https, with no credentials in it "
            "(http only to 127.0.0.1, for the local stage)"
        )
    if signer is None:
        return None, f"SSM parameter {where}/results_secret must be whsec_ and base64"
    include_phone = parts.get("results_include_phone", "").lower() == "true"
    return DeliveryTarget(url, signer, include_phone), None


def parse_mapping(text: str, where: str) -> tuple[tuple[FieldMapping, ...] | None, str | None]:
    """`{"phone": "properties.phone", ...}`: each expression compiled once, at load."""
    try:
        raw = json.loads(text)
    except ValueError:
        return None, f"SSM parameter {where} is not a JSON object"
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        return None, f"SSM parameter {where} must be an object of JMESPath expressions"
    if unknown := sorted(set(raw) - set(MAPPABLE)):
        return None, f"SSM parameter {where} names unknown fields {unknown}"
    mapping = []
    for field_name, expression in raw.items():
        try:
            mapping.append(FieldMapping(field_name, expression, jmespath.compile(expression)))
        except JMESPathError:
            return None, f"SSM parameter {where}: {field_name} is not a valid JMESPath expression"
    return tuple(mapping), None

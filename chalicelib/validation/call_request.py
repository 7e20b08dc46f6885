"""The friendly JSON of POST /calls (and of SQS messages and EventBridge events), checked into
a CallRequest. Pure: nothing here does I/O, so the rules are tested exhaustively."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chalicelib.campaigns import Campaign
from chalicelib.validation.call_settings import CallSettings, check_call_settings
from chalicelib.validation.fields import (
    CALL_FIELDS,
    Errors,
    Scalar,
    check_destination,
    check_idempotency_key,
    check_reference,
    check_timezone,
    check_variables,
    raise_if_invalid,
    require_object,
    unknown_fields,
)
from chalicelib.validation.phones import DialPolicy


@dataclass(frozen=True)
class CallRequest:
    """A POST /calls body once every field is checked: the phone in E.164, the settings a list
    shares, and nothing of the caller's own words left unchecked."""

    phone: str
    settings: CallSettings
    variables: Mapping[str, Scalar] = field(default_factory=dict)
    reference: str | None = None
    timezone: str | None = None  # the callee's zone, if the CRM gave one
    # The number's type (validation's): derived from `phone`, so not part of the request.
    kind: str | None = field(default=None, compare=False)

    @property
    def campaign(self) -> str:
        return self.settings.campaign

    def accepted(self) -> dict[str, Any]:
        """The request as accepted, for storage and for showing back to its caller."""
        return {
            "phone": self.phone,
            **self.settings.to_json(),
            "variables": dict(self.variables),
            "reference": self.reference,
            **({"timezone": self.timezone} if self.timezone else {}),
        }


def parse_call_request(
    body: object,
    *,
    default_region: str,
    now: float,
    campaigns: Mapping[str, Campaign],
    policy: DialPolicy | None = None,
) -> CallRequest:
    """Checks every field of a POST /calls body; raises ValidationFailed listing each bad one.
    `policy` says where calls may go (default: the default region's ordinary numbers)."""
    body = require_object(body)
    errors: Errors = unknown_fields(body, CALL_FIELDS)
    policy = policy or DialPolicy.for_region(default_region)
    phone = check_destination(body, default_region, policy, errors)
    settings = check_call_settings(
        body, region=default_region, now=now, campaigns=campaigns, errors=errors
    )
    request = CallRequest(
        phone=phone.e164 if phone else "",
        settings=settings,
        variables=check_variables(body, errors),
        reference=check_reference(body, errors),
        timezone=check_timezone(body, errors),
        kind=phone.kind if phone else None,
    )
    check_idempotency_key(body, errors)
    raise_if_invalid(errors)
    return request

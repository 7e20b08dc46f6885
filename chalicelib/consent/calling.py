"""When one number may ring and how often, from everything configured: the deployment's calling
hours, the campaign's own, the calling rules of the number's prefix, and the number's zones.

The zones are every zone libphonenumber gives for the number (hours must hold in all of them),
narrowed by the request's own `timezone` when the CRM gave one, else the campaign's `timezone`. Pure
apart from reading the zone data once; admission/ applies the answer.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chalicelib.campaigns import Campaign
from chalicelib.consent.hours import ANY_HOUR, CallingHours, parse_calling_hours
from chalicelib.consent.schedule import Window, calling_window, next_open
from chalicelib.consent.zones import known_zone, zones_for_number
from chalicelib.errors import FieldError, OutsideCallingHours, ValidationFailed
from chalicelib.timestamps import iso

if TYPE_CHECKING:
    from chalicelib.consent.rules import CallingRule


@dataclass(frozen=True)
class Allowance:
    """What consent allows one number: its hours (None: none at all) and its cap (0: none)."""

    hours: CallingHours | None
    max_calls: int


@functools.lru_cache(maxsize=128)
def campaign_hours(base: CallingHours, hours: str | None, days: str | None) -> CallingHours | None:
    """The deployment's hours narrowed by a campaign's (checked when parameters loaded)."""
    if hours is None and days is None:
        return base
    return base.narrowed(parse_calling_hours(hours or ANY_HOUR, days))


def allowance(
    phone: str,
    campaign: Campaign,
    base: CallingHours,
    max_calls: int,
    rules: tuple[CallingRule, ...],
) -> Allowance:
    hours = campaign_hours(base, campaign.calling_hours, campaign.calling_days)
    if hours is None or not rules:
        return Allowance(hours, max_calls)
    from chalicelib.consent.rules import apply_rules, rules_for  # noqa: PLC0415 - only with rules

    narrowed, cap = apply_rules(hours, max_calls, rules_for(rules, phone))
    return Allowance(narrowed, cap)


def zones_of(
    phone: str, timezone: str | None, campaign: Campaign, kind: str | None = None
) -> tuple[str, ...]:
    """The callee's zones; ValidationFailed naming `timezone` when none is known. A request's
    own `timezone` only narrows: one of the number's zones alone (`+1 208` in Boise), or, when
    it is none of them, added to them (hours must hold in it and in theirs), so a request can
    never make a number's night a calling hour; it stands alone only for a number with none."""
    own = zones_for_number(phone, kind)
    if timezone is not None:
        if not known_zone(timezone):
            raise ValidationFailed(
                "the request has an invalid field",
                [FieldError("timezone", "is not an IANA time zone name this bridge knows")],
            )
        return (timezone,) if not own or timezone in own else (*own, timezone)
    zones = own or ((campaign.timezone,) if campaign.timezone else ())
    if not zones:
        message = (
            "is required: no time zone is known for this number, and campaign "
            f"{campaign.name!r} has none (set campaigns/{campaign.name}/timezone, or pass one)"
        )
        raise ValidationFailed(
            "the request has an invalid field", [FieldError("timezone", message)]
        )
    return zones


def window_for(
    phone: str,
    timezone: str | None,
    campaign: Campaign,
    allowed: Allowance,
    *,
    start_at: int | None,
    end_at: int | None,
    now: int,
    kind: str | None = None,
) -> Window:
    """The window Fuse gets for this number; OutsideCallingHours naming the field whose window
    holds no open moment (end_at's, or the number's when its zones never share one)."""
    hours = allowed.hours
    if hours is None:
        raise OutsideCallingHours(
            "the calling hours configured for this number leave no time to call",
            [FieldError("phone", "its campaign's hours and calling rules never overlap")],
        )
    if hours.always:
        return Window(start_at, end_at)
    zones = zones_of(phone, timezone, campaign, kind)
    window = calling_window(hours, zones, start_at=start_at, end_at=end_at, now=now)
    if window is not None:
        return window
    since = max(now, start_at or now)
    opens = next_open(hours, zones, since)
    if opens is None:
        raise OutsideCallingHours(
            "calling hours never hold in every time zone of this number",
            [FieldError("timezone", f"{', '.join(zones[:5])} share no calling hour; pass one")],
        )
    raise OutsideCallingHours(
        f"no moment before end_at is inside calling hours; the call may first ring at {iso(opens)}",
        [FieldError("end_at", f"is before calling hours open ({iso(opens)})")],
    )

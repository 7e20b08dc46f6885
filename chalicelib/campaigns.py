"""A campaign: the Fuse application and deployment a request names, and who it calls from.

A value of its own (read from SSM by config/parameters.py), so that validation, the Fuse client
and placing can all use it without importing the configuration's I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_CAMPAIGN = "default"  # used when a request names none


@dataclass(frozen=True)
class Campaign:
    """A Fuse application/deployment pair, chosen by a request's `campaign` field.

    `problem` says why a half-written campaign cannot be used; the others work regardless."""

    name: str
    application_id: str
    deployment_id: str
    caller_id: str | None
    problem: str | None = None
    caller_ids: tuple[str, ...] = ()  # when set, the only caller ids a request may give
    # Its own calling hours and days (narrowing the deployment's), and the zone to read them in
    # when a number's own zones are unknown; as configured, checked when parameters load.
    calling_hours: str | None = None
    calling_days: str | None = None
    timezone: str | None = None

"""A call's window, moved into calling hours: what Fuse is sent as start_timestamp and
end_timestamp so that no attempt, first or retry, rings outside them.

The window is one open stretch: it starts when hours first hold in every zone of the number (at
or after the requested start) and ends at that stretch's closing (or the requested end, if
earlier). Fuse makes no attempt after end_timestamp, so a retry that would fall after the
closing is not made, rather than made at night.

Pure: the clock is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.consent.hours import CallingHours, first_open


@dataclass(frozen=True)
class Window:
    """What Fuse gets as start_timestamp and end_timestamp; None is not sent."""

    start_at: int | None
    end_at: int | None


def calling_window(
    hours: CallingHours,
    zones: tuple[str, ...],
    *,
    start_at: int | None,
    end_at: int | None,
    now: int,
) -> Window | None:
    """The request's window within hours in every zone; None when hours leave no time before
    `end_at` (or in the search's week, with no end), and the request is to be refused.

    Hours that always hold leave the request as it came. Otherwise the start is left as sent
    (None: now) when the window is open already, else moved to the opening; the end is always
    the closing, so a retry cannot ring after it."""
    if hours.always:
        return Window(start_at, end_at)
    since = max(now, start_at if start_at is not None else now)
    found = first_open(hours, zones, since, end_at)
    if found is None:
        return None
    start, end = found
    return Window(start_at if start == since else start, end)


def next_open(hours: CallingHours, zones: tuple[str, ...], since: int) -> int | None:
    """The first moment at or after `since` when a call may ring (an error message's "may
    first ring at"); None when nothing opens within the search's week."""
    if hours.always:
        return since
    found = first_open(hours, zones, since, None)
    return found[0] if found else None

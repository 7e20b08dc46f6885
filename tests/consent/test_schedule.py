"""A call's window in calling hours: every attempt Fuse could make, the first and each retry,
rings within hours in every zone of the number; the window opens no later than the clocks allow;
hours that always hold leave the request alone; and a request is refused exactly when its window
holds no open moment."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.consent.hours import CallingHours, parse_calling_hours
from chalicelib.consent.schedule import Window, calling_window, next_open
from tests.helpers import (
    DAY,
    FROM,
    TO,
    calling_hours,
    near_clock_change,
    open_everywhere,
    zone_sets,
)

# Days around the 2025 clock changes of New York, London and Lord Howe, to land on them often.
CHANGE_DAYS = [
    int(datetime(*d, tzinfo=UTC).timestamp())
    for d in [
        (2025, 3, 9),
        (2025, 11, 2),
        (2025, 3, 30),
        (2025, 10, 26),
        (2025, 4, 5),
        (2025, 10, 4),
    ]
]


def no_open_moment(hours: CallingHours, zones: tuple[str, ...], since: int, until: int) -> bool:
    """Every quarter hour (and `since`): hours on the quarter-hour grid and zone offsets in
    whole quarter hours make the clocks' answer constant between quarter hours of UTC."""
    moments = [since, *range(since - since % 900 + 900, until, 900)] if since < until else []
    return all(
        not open_everywhere(hours, zones, moment) or near_clock_change(zones, moment)
        for moment in moments
    )


nows = st.integers(FROM, TO) | st.builds(
    lambda day, offset: day + offset, st.sampled_from(CHANGE_DAYS), st.integers(-DAY, DAY)
)


@given(
    hours=calling_hours(),
    zones=zone_sets,
    now=nows,
    start=st.none() | st.integers(-300, 3 * DAY),
    length=st.none() | st.integers(60, 5 * DAY),
    attempts=st.integers(1, 10),
    retry=st.integers(60, 86400),
)
@settings(max_examples=300, deadline=None, derandomize=True)
def test_every_attempt_fuse_could_make_rings_within_hours(
    *,
    hours: CallingHours,
    zones: tuple[str, ...],
    now: int,
    start: int | None,
    length: int | None,
    attempts: int,
    retry: int,
) -> None:
    start_at = None if start is None else now + start
    end_at = None if length is None else (start_at or now) + length
    window = calling_window(hours, zones, start_at=start_at, end_at=end_at, now=now)
    since = max(now, start_at if start_at is not None else now)
    limit = since + 8 * DAY if end_at is None else end_at
    if hours.always:
        assert window == Window(start_at, end_at)
        return
    if window is None:  # refused exactly when nothing is open in the requested window
        assert no_open_moment(hours, zones, since, limit)
        return
    assert window.end_at is not None
    assert end_at is None or window.end_at <= end_at
    # Fuse rings at start_timestamp, or at once when it is absent or past.
    first = max(now, window.start_at if window.start_at is not None else now)
    assert first in {since, window.start_at}
    assert no_open_moment(hours, zones, since, first)  # never later than the clocks allow
    rings = [first + k * retry for k in range(attempts)]
    made = [moment for moment in rings if moment < window.end_at]
    assert made  # the first attempt is always within the window
    for moment in made:
        assert open_everywhere(hours, zones, moment), (moment, zones, hours)


@given(
    zones=zone_sets,
    now=nows,
    start=st.none() | st.integers(-300, 3 * DAY),
    end=st.none() | st.integers(60, 5 * DAY),
)
@settings(max_examples=50, deadline=None, derandomize=True)
def test_hours_that_always_hold_leave_the_request_as_it_came(
    zones: tuple[str, ...], now: int, start: int | None, end: int | None
) -> None:
    start_at = None if start is None else now + start
    end_at = None if end is None else now + end
    always = CallingHours(0, 1440)
    assert calling_window(always, zones, start_at=start_at, end_at=end_at, now=now) == Window(
        start_at, end_at
    )
    assert calling_window(always, (), start_at=start_at, end_at=end_at, now=now) is not None
    assert next_open(always, zones, now) == now


def test_a_call_inside_hours_keeps_its_start_and_gets_the_closing() -> None:
    hours = parse_calling_hours("08:00-21:00")
    now = int(datetime(2025, 6, 2, 12, tzinfo=ZoneInfo("America/New_York")).timestamp())
    closing = int(datetime(2025, 6, 2, 21, tzinfo=ZoneInfo("America/New_York")).timestamp())
    zones = ("America/New_York",)
    assert calling_window(hours, zones, start_at=None, end_at=None, now=now) == Window(
        None, closing
    )
    assert calling_window(hours, zones, start_at=now - 60, end_at=None, now=now) == Window(
        now - 60, closing
    )
    assert calling_window(hours, zones, start_at=None, end_at=now + 60, now=now) == Window(
        None, now + 60
    )


def test_a_call_at_night_moves_to_the_opening() -> None:
    hours = parse_calling_hours("08:00-21:00", "Mon-Fri")
    tz = ZoneInfo("America/Los_Angeles")
    friday_night = int(datetime(2025, 6, 6, 22, tzinfo=tz).timestamp())
    monday = int(datetime(2025, 6, 9, 8, tzinfo=tz).timestamp())
    window = calling_window(
        hours, ("America/Los_Angeles",), start_at=None, end_at=None, now=friday_night
    )
    assert window == Window(monday, monday + 13 * 3600)
    assert next_open(hours, ("America/Los_Angeles",), friday_night) == monday
    refused = calling_window(
        hours, ("America/Los_Angeles",), start_at=None, end_at=monday, now=friday_night
    )
    assert refused is None


def test_next_open_is_none_when_zones_never_agree() -> None:
    hours = parse_calling_hours("09:00-12:00")
    assert next_open(hours, ("Pacific/Honolulu", "Asia/Kolkata"), FROM) is None

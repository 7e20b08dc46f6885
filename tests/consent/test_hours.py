"""Calling hours: what the parser accepts and refuses, and that the first open stretch is open by
every zone's local clock, starts no later than the clocks allow, and ends at a closing, across
years of daylight-saving changes, half-hour ones (Lord Howe) and odd offsets (Chatham)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.consent.hours import (
    ALL_DAYS,
    CallingHours,
    first_open,
    parse_calling_days,
    parse_calling_hours,
)
from tests.helpers import (
    CLOCK_ZONES,
    DAY,
    FROM,
    TO,
    calling_hours,
    near_clock_change,
    open_everywhere,
    zone_sets,
)

NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def utc(*parts: int) -> int:
    return int(datetime(*parts, tzinfo=UTC).timestamp())


def local(zone: str, *parts: int, fold: int = 0) -> int:
    return int(datetime(*parts, tzinfo=ZoneInfo(zone), fold=fold).timestamp())


def clock_changes(zone: str) -> list[int]:
    """Every clock change of a zone between FROM and TO, to the second."""
    tz, found = ZoneInfo(zone), []
    offset = datetime.fromtimestamp(FROM, tz).utcoffset()
    for day in range(FROM, TO, DAY):
        if datetime.fromtimestamp(day + DAY, tz).utcoffset() != offset:
            low, high = day, day + DAY
            while high - low > 1:
                middle = (low + high) // 2
                if datetime.fromtimestamp(middle, tz).utcoffset() == offset:
                    low = middle
                else:
                    high = middle
            found.append(high)
            offset = datetime.fromtimestamp(high, tz).utcoffset()
    return found


CHANGES = sorted({t for zone in CLOCK_ZONES for t in clock_changes(zone)})

moments = st.one_of(
    st.integers(FROM, TO),
    st.builds(lambda t, d: t + d, st.sampled_from(CHANGES), st.integers(-2 * DAY, DAY)),
)


# Parsing


@given(hours=calling_hours(), pad=st.sampled_from(["", " ", "  "]), upper=st.booleans())
@settings(max_examples=100, deadline=None, derandomize=True)
def test_what_hours_print_as_is_read_back(hours: CallingHours, pad: str, upper: bool) -> None:
    clock, days = str(hours).split(" ")
    days = days.upper() if upper else days.lower()
    assert parse_calling_hours(f"{pad}{clock}{pad}", f"{pad}{days}{pad}") == hours


@pytest.mark.parametrize(
    ("text", "days", "expected"),
    [
        ("08:00-21:00", None, CallingHours(480, 1260)),
        (" 00:00-24:00 ", None, CallingHours(0, 1440)),
        ("08:00 - 21:00", "Mon-Sat", CallingHours(480, 1260, frozenset(range(6)))),
        ("09:30-17:45", "Mon-Fri,Sun", CallingHours(570, 1065, frozenset({0, 1, 2, 3, 4, 6}))),
        ("09:00-17:00", "mon,wed,fri", CallingHours(540, 1020, frozenset({0, 2, 4}))),
        ("09:00-17:00", "Sat-Mon", CallingHours(540, 1020, frozenset({5, 6, 0}))),
        ("09:00-17:00", "SUN - TUE , fri", CallingHours(540, 1020, frozenset({6, 0, 1, 4}))),
        ("09:00-17:00", "Tue-Mon", CallingHours(540, 1020)),
        ("09:00-17:00", "Wed-Wed", CallingHours(540, 1020, frozenset({2}))),
        ("00:00-00:01", "Mon,Mon", CallingHours(0, 1, frozenset({0}))),
    ],
)
def test_hours_and_days_as_admins_write_them(
    text: str, days: str | None, expected: CallingHours
) -> None:
    assert parse_calling_hours(text, days) == expected


BAD_HOURS = [
    "",
    "08:00",
    "8:00-21:00",  # two digits, as the message asks
    "08:00-08:00",
    "21:00-08:00",  # no window crosses midnight
    "08:00-01:30",
    "24:00-24:00",
    "08:00-24:01",
    "08:60-09:00",
    "25:00-26:00",
    "08:00-21:00-22:00",
    "08:00\u201321:00",  # an en dash
    "\uff10\uff18:00-21:00",  # full-width digits
    "08.00-21.00",
    " " * 60 + "08:00-21:00",  # longer than 64 characters
]


@pytest.mark.parametrize("text", BAD_HOURS)
def test_bad_hours_are_refused_with_the_format(text: str) -> None:
    with pytest.raises(ValueError, match=r"must be HH:MM-HH:MM, opening before closing"):
        parse_calling_hours(text)


@pytest.mark.parametrize(
    "days", ["", "Mon-", "-Mon", "Monday", "Mo", "Mon,,Tue", "Mon;Tue", "Lun", "Mon-Fri " * 9]
)
def test_bad_days_are_refused_with_the_format(days: str) -> None:
    with pytest.raises(ValueError, match=r"must be three-letter English day names"):
        parse_calling_hours("08:00-21:00", days)


# Hours and days that are nearly right as well as any text: most of those are read, so the
# read-back is exercised, not only the refusal.
NEAR_HOURS = st.from_regex(
    r"\s?[0-2][0-9]:[0-6][0-9]\s?-\s?[0-2][0-9]:[0-6][0-9]\s?", fullmatch=True
)
NEAR_DAYS = st.lists(
    st.sampled_from(["Mon", "tue", "WED", "Thu-Sat", "sun-mon", "Fri", "Mon-Mon"]),
    min_size=1,
    max_size=4,
).map(",".join)


@given(
    text=st.text(max_size=80) | NEAR_HOURS,
    days=st.none() | st.text(max_size=80) | NEAR_DAYS,
)
@settings(max_examples=300, deadline=None, derandomize=True)
def test_any_text_is_either_refused_or_read_back(text: str, days: str | None) -> None:
    try:
        hours = parse_calling_hours(text, days)
    except ValueError as err:
        refusal = str(err)
    else:
        refusal = "must be read back"
        assert parse_calling_hours(*str(hours).split(" ")) == hours
    assert refusal.startswith("must be ")


@given(start=st.sampled_from(NAMES), length=st.integers(0, 6), lower=st.booleans())
@settings(max_examples=50, deadline=None, derandomize=True)
def test_day_ranges_wrap_past_sunday(start: str, length: int, lower: bool) -> None:
    first = NAMES.index(start)
    text = f"{start}-{NAMES[(first + length) % 7]}"
    expected = frozenset((first + i) % 7 for i in range(length + 1))
    assert parse_calling_days(text.lower() if lower else text) == expected


def test_hours_that_are_no_window_cannot_be_made() -> None:
    for opens, closes, days in [(5, 5, ALL_DAYS), (-1, 5, ALL_DAYS), (0, 1441, ALL_DAYS)]:
        with pytest.raises(ValueError, match="opens < closes"):
            CallingHours(opens, closes, days)
    for days in [frozenset(), frozenset({7})]:
        with pytest.raises(ValueError, match="days"):
            CallingHours(0, 10, days)


def test_always_is_the_whole_of_every_day() -> None:
    assert CallingHours(0, 1440).always
    assert not CallingHours(0, 1439).always
    assert not CallingHours(0, 1440, frozenset(range(6))).always


@given(
    a=calling_hours(),
    b=calling_hours(),
    probes=st.lists(st.tuples(st.integers(0, 6), st.integers(0, 1439)), min_size=20, max_size=20),
)
@settings(max_examples=100, deadline=None, derandomize=True)
def test_narrowed_hours_allow_exactly_what_both_allow(
    a: CallingHours, b: CallingHours, probes: list[tuple[int, int]]
) -> None:
    both = a.narrowed(b)
    assert both == b.narrowed(a)

    def allows(hours: CallingHours | None, day: int, minute: int) -> bool:
        return hours is not None and day in hours.days and hours.opens <= minute < hours.closes

    edges = [(d, m) for d in range(7) for m in {a.opens, a.closes - 1, b.opens, b.closes - 1}]
    for day, minute in [*probes, *edges]:
        assert allows(both, day, minute) == (allows(a, day, minute) and allows(b, day, minute))


# The first open stretch


def check_stretch(
    hours: CallingHours, zones: tuple[str, ...], since: int, until: int | None, step: int = 60
) -> tuple[int, int] | None:
    """The properties every answer of first_open has, checked against the wall clocks."""
    found = first_open(hours, zones, since, until)
    limit = since + 8 * DAY if until is None else until
    first = limit if found is None else found[0]
    for moment in range(since, first, step):  # nothing open is skipped
        assert not open_everywhere(hours, zones, moment) or near_clock_change(zones, moment)
    if found is None:
        return None
    start, end = found
    assert since <= start < end
    assert until is None or end <= until
    for moment in {start, end - 1, *range(start, end, max(1, (end - start) // 7))}:
        assert open_everywhere(hours, zones, moment), (moment, hours, zones)
    if until is None or end < until:  # end is a closing, unless the search cut it
        closed = not open_everywhere(hours, zones, end)
        assert closed or near_clock_change(zones, end) or (hours.always and end == since + 16 * DAY)
    return found


@given(
    hours=calling_hours(),
    zones=zone_sets,
    since=moments,
    until=st.none() | st.integers(60, 10 * DAY),
)
@settings(max_examples=200, deadline=None, derandomize=True)
def test_the_first_stretch_is_open_everywhere_and_none_is_missed(
    hours: CallingHours, zones: tuple[str, ...], since: int, until: int | None
) -> None:
    check_stretch(hours, zones, since, None if until is None else since + until)


@given(hours=calling_hours(), zones=zone_sets, since=moments)
@settings(max_examples=40, deadline=None, derandomize=True)
def test_a_stretch_starting_later_is_found_from_its_own_start(
    hours: CallingHours, zones: tuple[str, ...], since: int
) -> None:
    """Searching again from inside a stretch finds the rest of that same stretch."""
    found = first_open(hours, zones, since, None)
    if found is not None and found[1] - found[0] > 1:
        middle = (found[0] + found[1]) // 2
        assert first_open(hours, zones, middle, None) == (middle, found[1])


def test_a_stretch_longer_than_the_search_window_runs_to_its_real_closing() -> None:
    """Hours of whole days, Monday to Saturday: six days in one stretch, past the 8-day chunks
    a search is made of."""
    hours = CallingHours(0, 1440, frozenset(range(6)))
    sunday = local("Europe/London", 2025, 6, 1, 12)
    start, end = check_stretch(hours, ("Europe/London",), sunday, None, step=900) or (0, 0)
    assert (start, end) == (local("Europe/London", 2025, 6, 2), local("Europe/London", 2025, 6, 8))
    long_until = sunday + 30 * DAY
    assert first_open(hours, ("Europe/London",), sunday, long_until) == (start, end)


def test_the_intersection_of_zones_far_apart() -> None:
    """08:00-21:00 in New York and Kolkata: Kolkata's evening is New York's morning."""
    hours = parse_calling_hours("08:00-21:00")
    since = local("America/New_York", 2025, 1, 15, 0)
    start, end = check_stretch(hours, ("America/New_York", "Asia/Kolkata"), since, None) or (0, 0)
    assert (start, end) == (
        local("America/New_York", 2025, 1, 15, 8),
        local("Asia/Kolkata", 2025, 1, 15, 21),
    )


def test_a_search_to_a_far_until_finds_a_stretch_weeks_ahead() -> None:
    """08:00-13:00 in New York and London touch but never overlap, but for the three weeks when
    New York has sprung forward and London not yet: from 9 March 2025, 12:00-13:00 UTC."""
    hours = parse_calling_hours("08:00-13:00")
    zones = ("America/New_York", "Europe/London")
    since = utc(2025, 2, 20)
    assert first_open(hours, zones, since, None) is None  # not within the week's search
    assert first_open(hours, zones, since, utc(2025, 6, 1)) == (
        utc(2025, 3, 9, 12),
        utc(2025, 3, 9, 13),
    )
    assert first_open(hours, zones, utc(2025, 4, 1), utc(2025, 10, 1)) is None


def test_zones_that_are_never_open_together_give_none() -> None:
    hours = parse_calling_hours("09:00-12:00")
    zones = ("Pacific/Honolulu", "Asia/Kolkata")
    assert check_stretch(hours, zones, utc(2025, 3, 1), None, step=900) is None


def test_an_until_before_the_opening_gives_none() -> None:
    hours = parse_calling_hours("08:00-21:00")
    since = local("Europe/London", 2025, 1, 15, 6)
    assert first_open(hours, ("Europe/London",), since, since + 3600) is None
    assert first_open(hours, ("Europe/London",), since, since) is None
    assert first_open(hours, ("Europe/London",), since, since + 7201) == (
        since + 7200,
        since + 7201,
    )


def test_no_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        first_open(parse_calling_hours("08:00-21:00"), (), 0, None)


# Daylight saving, by hand: New York springs forward on 9 March 2025 (02:00 -> 03:00) and falls
# back on 2 November 2025 (02:00 -> 01:00).
NY = "America/New_York"


def ny(*parts: int, fold: int = 0) -> int:
    return local(NY, *parts, fold=fold)


@pytest.mark.parametrize(
    ("text", "since", "start", "end"),
    [
        # Opening in the skipped hour: 02:30 is read as 03:30 EDT, its later reading.
        ("02:30-21:00", ny(2025, 3, 9), ny(2025, 3, 9, 3, 30), ny(2025, 3, 9, 21)),
        # Closing in the skipped hour: 02:30 is read as 01:30 EST, its earlier reading.
        ("00:00-02:30", ny(2025, 3, 9), ny(2025, 3, 9), ny(2025, 3, 9, 1, 30)),
        # A window wholly inside the skipped hour is closed that day; it opens the next.
        ("02:00-03:00", ny(2025, 3, 9), ny(2025, 3, 10, 2), ny(2025, 3, 10, 3)),
        # Opening in the repeated hour: the second 01:30 (EST), not the first.
        ("01:30-08:00", ny(2025, 11, 2), ny(2025, 11, 2, 1, 30, fold=1), ny(2025, 11, 2, 8)),
        # Closing in the repeated hour: the first 01:30 (EDT).
        ("00:00-01:30", ny(2025, 11, 2), ny(2025, 11, 2), ny(2025, 11, 2, 1, 30)),
        # A window wholly inside the repeated hour is closed that day.
        ("01:15-01:45", ny(2025, 11, 2), ny(2025, 11, 3, 1, 15), ny(2025, 11, 3, 1, 45)),
        # Spanning a change: the day is an hour shorter or longer, and stays one stretch.
        ("00:00-08:00", ny(2025, 3, 9), ny(2025, 3, 9), ny(2025, 3, 9, 8)),
        ("00:00-08:00", ny(2025, 11, 2), ny(2025, 11, 2), ny(2025, 11, 2, 8)),
        # Late closings, as the brief's 08:00-01:30 would have (it crosses midnight, refused).
        ("08:00-24:00", ny(2025, 11, 1, 22), ny(2025, 11, 1, 22), ny(2025, 11, 2)),
    ],
)
def test_clock_changes_in_new_york_shorten_a_window_never_lengthen_it(
    text: str, since: int, start: int, end: int
) -> None:
    hours = parse_calling_hours(text)
    assert first_open(hours, (NY,), since, None) == (start, end)
    check_stretch(hours, (NY,), since, None)


def test_the_lengths_of_the_new_york_days_around_the_changes() -> None:
    assert local(NY, 2025, 3, 9, 8) - local(NY, 2025, 3, 9) == 7 * 3600
    assert local(NY, 2025, 11, 2, 8) - local(NY, 2025, 11, 2) == 9 * 3600


def test_lord_howe_skips_half_an_hour() -> None:
    """Lord Howe goes from 02:00 to 02:30 on 5 October 2025: 02:15 opens at 02:45."""
    zone = "Australia/Lord_Howe"
    since = local(zone, 2025, 10, 5)
    start, _ = first_open(parse_calling_hours("02:15-09:00"), (zone,), since, None) or (0, 0)
    clock = datetime.fromtimestamp(start, ZoneInfo(zone))
    assert (clock.day, clock.hour, clock.minute) == (5, 2, 45)


@pytest.mark.parametrize("zone", ["Australia/Lord_Howe", "Pacific/Chatham", "America/St_Johns"])
@pytest.mark.parametrize("text", ["01:45-02:45", "02:00-03:30", "00:00-24:00"])
def test_every_clock_change_of_a_year_by_the_minute(zone: str, text: str) -> None:
    """From an hour before each of the zone's changes in 2025 to a day after, minute by minute."""
    hours = parse_calling_hours(text, "Mon-Sat" if text == "00:00-24:00" else None)
    for change in [t for t in clock_changes(zone) if utc(2025, 1, 1) <= t < utc(2026, 1, 1)]:
        check_stretch(hours, (zone,), change - 3600, change + DAY)

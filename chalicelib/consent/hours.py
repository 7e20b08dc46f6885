"""Calling hours: the local times a phone may ring, and the first stretch of time when they hold
in every time zone the number may be in.

A number can map to several zones (an area code that a time-zone line crosses; a toll-free number
to its whole country): a call may ring only while it is within hours in all of them, so no callee
is rung outside their hours whichever of those zones they are in.

Daylight saving is read conservatively: a day's opening is the later of the two readings of its
local time (`fold` 0 and 1), its closing the earlier, so a skipped or repeated hour can shorten a
day's window but never make it longer than the local clock allows.

Pure: the moment to search from is passed in; the zone rules are the standard library's.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

ALL_DAYS = frozenset(range(7))  # date.weekday(): 0 is Monday
MINUTES_PER_DAY = 1440  # a closing of 24:00 is the next midnight
ANY_HOUR = "00:00-24:00"  # the whole of each allowed day: no hours given, or days alone
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_HOURS_TEXT = 64  # longer is not hours but a mistake (or an attack on the parser)
HOURS_TEXT = re.compile(r"\s*([0-9]{2}):([0-9]{2})\s*-\s*([0-9]{2}):([0-9]{2})\s*")
DAYS_ITEM = re.compile(r"\s*([A-Za-z]{3})\s*(?:-\s*([A-Za-z]{3})\s*)?")
HOURS_MESSAGE = "must be HH:MM-HH:MM, opening before closing, e.g. 08:00-21:00"
DAYS_MESSAGE = (
    "must be three-letter English day names or ranges of them, separated by commas, "
    "e.g. Mon-Fri, Mon-Fri,Sun or Sat-Mon"
)
# With no end given, how far ahead a stretch may start: a week holds every weekday, and the
# extra day covers a day that a clock change shortened to nothing.
SEARCH_DAYS = 8
_DAY_SECONDS = 86400
_ONE_DAY = timedelta(days=1)

Stretch = tuple[int, int]  # [start, end) in Unix seconds


@dataclass(frozen=True)
class CallingHours:
    """Local minutes after midnight, `opens <= minute < closes`, on the given weekdays.

    A window never crosses midnight (21:00-08:00 is not one window): `closes` may be 1440, 24:00.
    """

    opens: int
    closes: int
    days: frozenset[int] = ALL_DAYS

    def __post_init__(self) -> None:
        if not 0 <= self.opens < self.closes <= MINUTES_PER_DAY:
            raise ValueError(f"calling hours need 0 <= opens < closes <= 1440, got {self}")
        if not self.days or not self.days <= ALL_DAYS:
            raise ValueError(f"calling days must be a non-empty set of 0..6, got {self.days}")

    @property
    def always(self) -> bool:
        """00:00-24:00 every day: nothing to narrow, so a request is left as it was sent."""
        return self.opens == 0 and self.closes == MINUTES_PER_DAY and self.days == ALL_DAYS

    def narrowed(self, other: CallingHours) -> CallingHours | None:
        """Both apply: the later opening, the earlier closing, the days both allow; None when
        that leaves no time at all."""
        opens, closes = max(self.opens, other.opens), min(self.closes, other.closes)
        days = self.days & other.days
        if opens >= closes or not days:
            return None
        return CallingHours(opens, closes, days)

    def __str__(self) -> str:
        """As an admin writes it ("08:00-21:00 Mon-Sat"); `parse_calling_hours` reads it back."""
        return f"{_clock(self.opens)}-{_clock(self.closes)} {_day_runs(self.days)}"


def parse_calling_hours(hours: str, days: str | None = None) -> CallingHours:
    """ "08:00-21:00" and, optionally, days like "Mon-Sat", "Mon-Fri,Sun" or "Sat-Mon" (ranges
    wrap past Sunday). The ValueError's message is shown to a CRM admin as a field error."""
    if not isinstance(hours, str) or len(hours) > MAX_HOURS_TEXT:
        raise ValueError(HOURS_MESSAGE)
    match = HOURS_TEXT.fullmatch(hours)
    if not match:
        raise ValueError(HOURS_MESSAGE)
    opens = _minute(match[1], match[2])
    closes = _minute(match[3], match[4])
    if opens is None or closes is None or not opens < closes:
        raise ValueError(HOURS_MESSAGE)
    return CallingHours(opens, closes, ALL_DAYS if days is None else parse_calling_days(days))


def _minute(hour: str, minute: str) -> int | None:
    """HH:MM as minutes after midnight; 24:00 alone past 23:59."""
    h, m = int(hour), int(minute)
    if m > 59 or h > 24 or (h == 24 and m):
        return None
    return h * 60 + m


def parse_calling_days(text: str) -> frozenset[int]:
    """ "Mon-Sat", "mon,wed,fri", "Sat-Mon" as weekday numbers (0 is Monday)."""
    if not isinstance(text, str) or len(text) > MAX_HOURS_TEXT:
        raise ValueError(DAYS_MESSAGE)
    days: set[int] = set()
    for item in text.split(","):
        match = DAYS_ITEM.fullmatch(item)
        if not match:
            raise ValueError(DAYS_MESSAGE)
        first, last = match[1].lower(), (match[2] or match[1]).lower()
        if first not in DAY_NAMES or last not in DAY_NAMES:
            raise ValueError(DAYS_MESSAGE)
        start, count = DAY_NAMES.index(first), (DAY_NAMES.index(last) - DAY_NAMES.index(first))
        days |= {(start + i) % 7 for i in range(count % 7 + 1)}
    return frozenset(days)


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _day_runs(days: frozenset[int]) -> str:
    """Consecutive days as ranges, Monday first: {0,1,2,4} is "Mon-Wed,Fri"."""
    runs: list[list[int]] = []
    for day in sorted(days):
        if runs and runs[-1][-1] == day - 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    names = [DAY_NAMES[run[0]].title() for run in runs]
    return ",".join(
        name if len(run) == 1 else f"{name}-{DAY_NAMES[run[-1]].title()}"
        for name, run in zip(names, runs, strict=True)
    )


def first_open(
    hours: CallingHours, zones: tuple[str, ...], since: int, until: int | None
) -> Stretch | None:
    """The first stretch [start, end) with `since <= start < end` (and `end <= until` when given)
    during which every zone's local clock is within `hours`; `end` is the first moment after
    `start` when any zone closes, or `until`. None when nothing is open before `until`, or,
    with no `until`, within SEARCH_DAYS of `since`. With no `until`, hours that never close
    (`always`) end 2 * SEARCH_DAYS after `since`: the search has to stop somewhere."""
    if not zones:
        raise ValueError("no time zone to read calling hours in")
    span = SEARCH_DAYS * _DAY_SECONDS
    starts_before = since + span if until is None else until
    reach = since + 2 * span if until is None else until
    low, high = since, min(reach, since + _DAY_SECONDS)  # most calls open within the day
    while low < starts_before:
        stretches = _open_everywhere(hours, zones, low, high)
        if stretches:
            start, end = stretches[0]
            while end == high < reach:  # cut at the search's edge: it may go on
                low, high = high, min(reach, high + span)
                more = _open_everywhere(hours, zones, low, high)
                if not more or more[0][0] != low:
                    break
                end = more[0][1]
            return (start, end) if start < starts_before else None
        low, high = high, min(reach, high + span)
    return None


@functools.lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _open_everywhere(
    hours: CallingHours, zones: tuple[str, ...], low: int, high: int
) -> list[Stretch]:
    """The stretches within [low, high) that are open in every zone, in order. Each zone is read
    only where the zones before it left something open."""
    common: list[Stretch] | None = None
    for zone in zones:
        mine = _open_in(hours, zone, low, high)
        common = mine if common is None else _intersect(common, mine)
        if not common:
            return []
        low, high = common[0][0], common[-1][1]
    return common or []


def _open_in(hours: CallingHours, zone: str, low: int, high: int) -> list[Stretch]:
    """One zone's open stretches within [low, high): each allowed local day of the dates around
    it as an interval of UTC seconds, days that touch (00:00-24:00 on consecutive days) joined."""
    tz = _zone(zone)
    first = datetime.fromtimestamp(low - _DAY_SECONDS, tz).toordinal()
    last = datetime.fromtimestamp(high + _DAY_SECONDS, tz).toordinal()
    stretches: list[Stretch] = []
    for ordinal in range(first, last + 1):
        if (ordinal - 1) % 7 not in hours.days:  # ordinal 1, 1 January of year 1, is a Monday
            continue
        opening, closing = _day(zone, hours.opens, hours.closes, ordinal)
        start, end = max(low, opening), min(high, closing)
        if start < end:
            if stretches and stretches[-1][1] >= start:
                stretches[-1] = (stretches[-1][0], max(end, stretches[-1][1]))
            else:
                stretches.append((start, end))
    return stretches


# A day's opening and closing in one zone, by the day's ordinal. Calls on the same days and
# zones (a list's contacts, a warm container's requests) read them once.
@functools.lru_cache(maxsize=2048)
def _day(zone: str, opens: int, closes: int, ordinal: int) -> Stretch:
    tz, day = _zone(zone), date.fromordinal(ordinal)
    return _reading(day, opens, tz, max), _reading(day, closes, tz, min)


def _reading(day: date, minute: int, tz: ZoneInfo, pick: Callable[[float, float], float]) -> int:
    """A local day's minute in Unix seconds; of its two readings (they differ only when the time
    is skipped or repeated by a clock change), the one `pick` chooses: `max` for an opening,
    `min` for a closing."""
    if minute == MINUTES_PER_DAY:
        day, minute = day + _ONE_DAY, 0
    local = datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=tz)
    return int(pick(local.timestamp(), local.replace(fold=1).timestamp()))


def _intersect(a: list[Stretch], b: list[Stretch]) -> list[Stretch]:
    """Two ordered lists of disjoint stretches: where both are open."""
    both: list[Stretch] = []
    i = j = 0
    while i < len(a) and j < len(b):
        start, end = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if start < end:
            both.append((start, end))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return both

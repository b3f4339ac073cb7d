"""Time buckets in a time zone, computed identically by SQLite and PostgreSQL.

Neither engine is asked about time zones: SQLite has none, and PostgreSQL's tzdata may not
be Python's. Instead zoneinfo gives the zone's UTC offsets as periods of constant offset,
and the statement carries them as literals: a bucket is the UTC moment plus its period's
offset, truncated by plain calendar arithmetic that both engines do the same way. Hours are
keyed in UTC, so that the hour repeated when clocks fall back stays two buckets.
"""

from __future__ import annotations

import functools
import itertools
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from difflib import get_close_matches
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import sqlalchemy as sa

from dataintel.errors import BadUserInputError
from dataintel.store.types import UTCDateTime

GRANULARITIES = ("hour", "day", "week", "month", "quarter", "year")
KEY_FORMAT = "%Y-%m-%d %H:%M:%S"
"""The text of a bucket key on both dialects."""

_DAY_SECONDS = 86_400


def _offset_at(zone: ZoneInfo, epoch_seconds: int) -> int:
    offset = datetime.fromtimestamp(epoch_seconds, zone).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


@functools.lru_cache(maxsize=4096)
def _transitions_in_year(zone_key: str, year: int) -> tuple[tuple[int, int], ...]:
    """(epoch second, offset from then on) of each offset change in the UTC year."""
    zone = ZoneInfo(zone_key)
    start = int(datetime(year, 1, 1, tzinfo=UTC).timestamp())
    end = int(datetime(year + 1, 1, 1, tzinfo=UTC).timestamp())
    found: list[tuple[int, int]] = []
    previous, previous_offset = start, _offset_at(zone, start)
    # Daily samples, then bisection to the second: zones change offset at most a few times
    # a year, and never twice within a day.
    for sample in [*range(start + _DAY_SECONDS, end, _DAY_SECONDS), end]:
        offset = _offset_at(zone, sample)
        if offset != previous_offset:
            low, high = previous, sample
            while high - low > 1:
                middle = (low + high) // 2
                if _offset_at(zone, middle) == previous_offset:
                    low = middle
                else:
                    high = middle
            found.append((high, _offset_at(zone, high)))
        previous, previous_offset = sample, offset
    return tuple(found)


@dataclass(frozen=True, slots=True)
class Period:
    """From ``start`` (UTC; None: since ever) to the next period, the zone is ``offset`` east."""

    start: datetime | None
    offset: int


class ZoneClock:
    """A zone's UTC offsets over a span of years, as periods of constant offset.

    Before the span the first year's offset holds, after it the last one's.
    """

    def __init__(self, zone: ZoneInfo, first_year: int, last_year: int) -> None:
        self.zone = zone
        begin = int(datetime(first_year, 1, 1, tzinfo=UTC).timestamp())
        periods = [Period(None, _offset_at(zone, begin))]
        for year in range(first_year, last_year + 1):
            for moment, offset in _transitions_in_year(str(zone.key), year):
                periods.append(Period(datetime.fromtimestamp(moment, UTC), offset))
        self.periods = tuple(periods)
        # The wall-clock time at which each period ends: increasing, so bisect finds periods.
        self._local_ends = [
            (following.start + timedelta(seconds=period.offset)).replace(tzinfo=None)
            for period, following in itertools.pairwise(periods)
            if following.start is not None
        ]

    def first_instant(self, local: datetime) -> datetime:
        """The first moment whose wall-clock time is ``local`` or later, in the zone.

        Unlike ``local.replace(tzinfo=zone)`` this is right in a gap (a bucket that starts
        at a skipped midnight starts when the clocks jump) and takes the earlier of two
        repeated times.
        """
        period = self.periods[bisect_right(self._local_ends, local)]
        candidate = local.replace(tzinfo=UTC) - timedelta(seconds=period.offset)
        if period.start is not None and period.start > candidate:
            candidate = period.start
        return candidate.astimezone(self.zone)

    def resolve(self, moment: datetime) -> datetime:
        """An aware moment as is; a naive one as a wall-clock time in the zone."""
        if moment.tzinfo is None or moment.utcoffset() is None:
            return self.first_instant(moment)
        return moment.astimezone(self.zone)

    def periods_between(self, start: datetime | None, end: datetime | None) -> tuple[Period, ...]:
        """The periods that overlap [start, end): rows outside it need no branch in SQL."""
        following = [period.start for period in self.periods[1:]] + [None]
        kept = [
            period
            for period, next_start in zip(self.periods, following, strict=True)
            if (end is None or period.start is None or period.start < end)
            and (start is None or next_start is None or next_start > start)
        ]
        return (Period(None, kept[0].offset), *kept[1:])

    def bucket_start(self, key: str, granularity: str) -> datetime:
        """The start of the bucket of a key that bucket_key computed, in the zone."""
        start = datetime.strptime(key, KEY_FORMAT)
        if granularity == "hour":
            return start.replace(tzinfo=UTC).astimezone(self.zone)
        return self.first_instant(start)


def zone_named(name: str, domain: str | None = None) -> ZoneInfo:
    """The IANA time zone of this name; BAD_USER_INPUT naming close valid names if unknown."""
    try:
        if name and not name.startswith(("/", ".")) and ".." not in name:
            return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        pass
    close = get_close_matches(name, _zone_names(), n=5, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}?" if close else "e.g. UTC, Europe/Berlin."
    raise BadUserInputError(
        f"Unknown time zone '{name}'; give an IANA time zone name ({hint})",
        domain=domain,
        details={"argument": "timezone", "valid": close or ["UTC", "Europe/Berlin"]},
    )


@functools.cache
def _zone_names() -> tuple[str, ...]:
    # Read from disk once: only a mistyped zone needs the list.
    return tuple(sorted(available_timezones()))


def _by_period(
    moment: sa.ColumnElement[Any],
    periods: Sequence[Period],
    leaf: Callable[[int], sa.ColumnElement[Any]],
) -> sa.ColumnElement[Any]:
    # A balanced tree of comparisons: a few per row even over decades of DST changes.
    def tree(low: int, high: int) -> sa.ColumnElement[Any]:
        if high - low == 1:
            return leaf(periods[low].offset)
        middle = (low + high) // 2
        boundary = sa.literal(periods[middle].start, UTCDateTime())
        return sa.case((moment < boundary, tree(low, middle)), else_=tree(middle, high))

    return tree(0, len(periods))


_SQLITE_FORMATS = {
    "day": ("%Y-%m-%d 00:00:00",),
    "week": ("%Y-%m-%d 00:00:00", "weekday 0", "-6 days"),
    "month": ("%Y-%m-01 00:00:00",),
    "year": ("%Y-01-01 00:00:00",),
}


def _sqlite_key(
    moment: sa.ColumnElement[Any], granularity: str, periods: Sequence[Period]
) -> sa.ColumnElement[str]:
    shifted = len(periods) > 1 or periods[0].offset != 0
    shift = (
        [_by_period(moment, periods, lambda offset: sa.literal(f"{offset:+d} seconds"))]
        if shifted
        else []
    )
    if granularity == "hour":
        local_hour = sa.func.strftime("%Y-%m-%d %H:00:00", moment, *shift, type_=sa.String)
        if not shifted:
            return local_hour
        back = _by_period(moment, periods, lambda offset: sa.literal(f"{-offset:+d} seconds"))
        return sa.func.strftime(KEY_FORMAT, local_hour, back, type_=sa.String)
    if granularity == "quarter":
        local = sa.func.datetime(moment, *shift)
        month = sa.cast(sa.func.strftime("%m", local), sa.Integer)
        first_month = sa.func.printf("%02d", (month + 2) // 3 * 3 - 2, type_=sa.String)
        year = sa.func.strftime("%Y-", local, type_=sa.String)
        return year + first_month + sa.literal("-01 00:00:00")
    # 'weekday 0' moves on to Sunday (or stays); six days back is the ISO week's Monday.
    pattern, *modifiers = _SQLITE_FORMATS[granularity]
    return sa.func.strftime(pattern, moment, *shift, *modifiers, type_=sa.String)


def _postgresql_key(
    moment: sa.ColumnElement[Any], granularity: str, periods: Sequence[Period]
) -> sa.ColumnElement[str]:
    def interval(offset: int) -> sa.ColumnElement[Any]:
        return sa.literal_column(f"INTERVAL '{offset} seconds'")

    shifted = len(periods) > 1 or periods[0].offset != 0
    local: sa.ColumnElement[Any] = sa.func.timezone(sa.literal_column("'UTC'"), moment)
    if shifted:
        local = local + _by_period(moment, periods, interval)
    # date_trunc's weeks are ISO weeks, from Monday, like SQLite's above.
    start: sa.ColumnElement[Any] = sa.func.date_trunc(sa.literal_column(f"'{granularity}'"), local)
    if granularity == "hour" and shifted:
        start = start - _by_period(moment, periods, interval)
    return sa.func.to_char(start, sa.literal_column("'YYYY-MM-DD HH24:MI:SS'"), type_=sa.String)


def bucket_key(
    moment: sa.ColumnElement[Any], granularity: str, periods: Sequence[Period], dialect: str
) -> sa.ColumnElement[str]:
    """The text key of a moment's bucket: its wall-clock start (its UTC start for hours)."""
    if dialect == "postgresql":
        return _postgresql_key(moment, granularity, periods)
    return _sqlite_key(moment, granularity, periods)

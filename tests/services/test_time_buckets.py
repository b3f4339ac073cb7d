"""Zone clocks: wall-clock times to moments across DST gaps and folds, checked with zoneinfo."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from dataintel.errors import BadUserInputError
from dataintel.services.time_buckets import ZoneClock, zone_named

NEW_YORK = ZoneInfo("America/New_York")
SANTIAGO = ZoneInfo("America/Santiago")


def test_periods_follow_every_offset_change() -> None:
    clock = ZoneClock(NEW_YORK, 2024, 2026)
    changes = [period.start for period in clock.periods[1:]]
    assert len(changes) == 6
    for change in changes:
        assert change is not None
        before, after = change - timedelta(seconds=1), change
        assert before.astimezone(NEW_YORK).utcoffset() != after.astimezone(NEW_YORK).utcoffset()
    for period in clock.periods:
        moment = period.start or datetime(2024, 1, 1, tzinfo=UTC)
        assert moment.astimezone(NEW_YORK).utcoffset() == timedelta(seconds=period.offset)


def test_a_fixed_zone_has_one_period() -> None:
    clock = ZoneClock(ZoneInfo("Asia/Kolkata"), 1970, 2100)
    assert [period.offset for period in clock.periods] == [19_800]


def test_a_repeated_time_is_the_earlier_moment() -> None:
    clock = ZoneClock(NEW_YORK, 2025, 2025)
    assert clock.first_instant(datetime(2025, 11, 2, 1, 30)).isoformat() == (
        "2025-11-02T01:30:00-04:00"
    )


def test_a_skipped_time_is_the_moment_the_clocks_jump() -> None:
    clock = ZoneClock(NEW_YORK, 2025, 2025)
    assert clock.first_instant(datetime(2025, 3, 9, 2, 30)).isoformat() == (
        "2025-03-09T03:00:00-04:00"
    )
    # Chile skips midnight: that day starts at 01:00.
    chile = ZoneClock(SANTIAGO, 2025, 2025)
    assert chile.first_instant(datetime(2025, 9, 7)).isoformat() == "2025-09-07T01:00:00-03:00"


def test_aware_moments_keep_their_instant() -> None:
    clock = ZoneClock(NEW_YORK, 2025, 2025)
    moment = datetime(2025, 7, 1, 12, tzinfo=UTC)
    assert clock.resolve(moment) == moment
    assert clock.resolve(moment).utcoffset() == timedelta(hours=-4)


def test_only_the_periods_of_a_range_are_kept() -> None:
    clock = ZoneClock(NEW_YORK, 2024, 2026)
    summer = clock.periods_between(
        datetime(2025, 6, 1, tzinfo=UTC), datetime(2025, 7, 1, tzinfo=UTC)
    )
    assert [(period.start, period.offset) for period in summer] == [(None, -4 * 3600)]
    spring = clock.periods_between(
        datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC)
    )
    assert [period.offset for period in spring] == [-5 * 3600, -4 * 3600]


@pytest.mark.parametrize("name", ["Europe/Berln", "", "../../etc/passwd", "/etc/localtime"])
def test_an_unknown_zone_is_bad_user_input(name: str) -> None:
    with pytest.raises(BadUserInputError, match="Unknown time zone"):
        zone_named(name)

"""Routing: which sources of a plan a rollup answers exactly, and whether it is current.

A rollup answers for a source when it holds every raw aggregate the plan needs from that
source (sums and counts only: distinct counts never add up across hours), every dimension
grouped or filtered by, the query uses the source's own time dimension without filters on
time values, and every bucket of the query is a union of whole grains: for an hour grain,
the range's ends are whole UTC hours and the zone's offsets over the range are whole hours
that change on whole UTC hours; for a day grain (of UTC), the query is in UTC, buckets by
day or coarser (or not at all) and its range's ends are whole UTC days. Buckets are then
computed from each grain's start with the very expression that raw rows use, so routing
never moves a bucket's boundary.

Of the rollups that cover a source, the one holding the fewest rows in the range answers
(the declared order breaks ties), if it is current: each partition the range touches was
built from the current definition and the store's write counters that apply to it are the
ones recorded at its build. Otherwise the next smallest is tried, then the raw rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from dataintel.services.analytics.catalog import RollupDefinition
from dataintel.services.analytics.planner import Plan
from dataintel.services.analytics.rollups import (
    PartitionState,
    Span,
    definition_digest,
    partitions_over,
    rollup_raws,
)

_HOUR_SECONDS = 3600
# Granularities whose buckets are unions of whole days of the query's zone.
_DAY_OR_COARSER = ("day", "week", "month", "quarter", "year")


@dataclass(frozen=True, slots=True)
class Candidate:
    """A rollup that covers a source of the plan, if it turns out current."""

    source: str
    rollup: RollupDefinition
    digest: str


def _whole_hour(moment: datetime | None) -> bool:
    if moment is None:
        return True
    utc = moment.astimezone(UTC)
    return utc.minute == 0 and utc.second == 0 and utc.microsecond == 0


def hour_aligned(plan: Plan) -> bool:
    """True when every bucket of the plan is a union of whole UTC hours."""
    if not (_whole_hour(plan.start) and _whole_hour(plan.end)):
        return False
    for period in plan.clock.periods_between(plan.start, plan.end):
        if period.offset % _HOUR_SECONDS != 0:
            return False
        if period.start is not None and not _whole_hour(period.start):
            return False
    return True


def _whole_day(moment: datetime | None) -> bool:
    return moment is None or (_whole_hour(moment) and moment.astimezone(UTC).hour == 0)


def day_aligned(plan: Plan) -> bool:
    """True when every bucket (and the range) of the plan is a union of whole UTC days."""
    if not (_whole_day(plan.start) and _whole_day(plan.end)):
        return False
    if plan.granularity is None:
        return True
    return plan.timezone == "UTC" and plan.granularity in _DAY_OR_COARSER


def candidates(plan: Plan) -> list[Candidate]:
    """The rollups that cover some of the plan's sources (freshness not yet checked)."""
    catalog = plan.catalog
    if not catalog.rollups:
        return []
    if any(dimension.type != "string" for dimension, _ in plan.dimension_filters):
        return []
    aligned = {"hour": hour_aligned(plan), "day": day_aligned(plan)}
    wanted = {dimension.name for dimension in plan.dimensions}
    wanted.update(dimension.name for dimension, _ in plan.dimension_filters)
    found: list[Candidate] = []
    for source in plan.sources:
        default_time = catalog.sources[source].time_dimension
        if plan.time_dimension is not None and plan.time_dimension.name != default_time:
            continue
        needed = {raw for raw in plan.raws if raw.source == source}
        for rollup in catalog.rollups.values():
            if rollup.source != source or not aligned[rollup.grain]:
                continue
            if not wanted <= set(rollup.dimensions):
                continue
            if needed <= set(rollup_raws(catalog, rollup)):
                found.append(Candidate(source, rollup, definition_digest(catalog, rollup)))
    return found


def range_of(plan: Plan) -> Span | None:
    """The UTC range the query reads; None for an open range (every partition)."""
    if plan.start is None or plan.end is None:
        return None
    return plan.start.astimezone(UTC), plan.end.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Decision:
    """The rollups that answer, by source, and the oldest build among their partitions."""

    rollups: Mapping[str, RollupDefinition]
    built_at: datetime | None


def decide(
    candidates_found: Sequence[Candidate],
    span: Span | None,
    current: Mapping[str, Mapping[str, int]],
    recorded: Mapping[tuple[str, str], PartitionState],
) -> Decision:
    """Routes each source to its smallest current rollup over the partitions it needs."""
    usable: dict[str, list[tuple[int, int, RollupDefinition, list[datetime]]]] = {}
    for order, candidate in enumerate(candidates_found):
        name = candidate.rollup.name
        changes = current.get(name, {})
        states = {
            partition: state for (rollup, partition), state in recorded.items() if rollup == name
        }
        # The partitions the range touches that hold rows now or did when built (keys sort
        # by time: those between the first and the last partition overlapping the range).
        first, last = (
            ("", "~") if span is None else partitions_over(candidate.rollup.partition, span)
        )
        needed = {
            partition for partition in set(changes) | set(states) if first <= partition <= last
        }
        if not needed:
            # Nothing built in the range proves the rollup current there: read raw rows.
            continue
        fresh = all(
            partition in states
            and states[partition].definition == candidate.digest
            and states[partition].changes == changes.get(partition, 0)
            for partition in needed
        )
        if fresh:
            rows = sum(states[partition].rows for partition in needed)
            built = [states[partition].built_at for partition in needed]
            usable.setdefault(candidate.source, []).append((rows, order, candidate.rollup, built))
    routes: dict[str, RollupDefinition] = {}
    oldest: list[datetime] = []
    for source, found in usable.items():
        _, _, rollup, built = min(found, key=lambda entry: (entry[0], entry[1]))
        routes[source] = rollup
        oldest.extend(built)
    return Decision(routes, min(oldest) if oldest else None)

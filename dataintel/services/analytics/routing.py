"""Routing: which sources of a plan a rollup answers exactly, and whether it is current.

A rollup answers for a source when it holds every raw aggregate the plan needs from that
source (a distinct count with the rollup's key sets, and no measure filter), every dimension
grouped or filtered by, the query uses the source's own time dimension without filters on
time values, and every bucket of the query is a union of whole grains: for an hour grain,
the range's ends are whole UTC hours and the zone's offsets over the range are whole hours
that change on whole UTC hours; for a day (month) grain of a zone, the query is in that
zone, buckets by the grain or coarser (or not at all) and its range's ends start days
(months) of that zone. Buckets are then computed from each stored cell's moment with the
very expression that raw rows use, so routing never moves a bucket's boundary.

Of the rollups that cover a source, the one holding the fewest rows in the range answers
(the declared order breaks ties), if it is current: each partition the range touches was
built from the current definition and the store's write counters that apply to it are the
ones recorded at its build (the key sets of a distinct count are kept with the partitions,
so they are current there too: ``key_sets``). Otherwise the next smallest is tried, then the
raw rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from dataintel.services.analytics.catalog import RollupDefinition
from dataintel.services.analytics.planner import Plan
from dataintel.services.analytics.rollup_cells import rollup_raws, zone_clock
from dataintel.services.analytics.rollups import (
    PartitionState,
    Span,
    definition_digest,
    partitions_over,
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


# Granularities whose buckets are unions of whole grains of the query's zone, per grain.
_COARSER = {"day": _DAY_OR_COARSER, "month": ("month", "quarter", "year")}


def _starts_grain(moment: datetime | None, grain: str, zone: str) -> bool:
    if moment is None:
        return True
    local = moment.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
    first = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if grain == "month":
        first = first.replace(day=1)
    return zone_clock(zone).first_instant(first) == moment


def grain_aligned(plan: Plan, rollup: RollupDefinition) -> bool:
    """True when every bucket (and the range) of the plan is a union of the rollup's cells."""
    if rollup.grain == "hour":
        return hour_aligned(plan)
    if not all(_starts_grain(end, rollup.grain, rollup.zone) for end in (plan.start, plan.end)):
        return False
    if plan.granularity is None:
        return True
    return plan.timezone == rollup.zone and plan.granularity in _COARSER[rollup.grain]


def candidates(plan: Plan) -> list[Candidate]:
    """The rollups that cover some of the plan's sources (freshness not yet checked)."""
    catalog = plan.catalog
    if not catalog.rollups:
        return []
    if any(dimension.type != "string" for dimension, _ in plan.dimension_filters):
        return []
    wanted = {dimension.name for dimension in plan.dimensions}
    wanted.update(dimension.name for dimension, _ in plan.dimension_filters)
    found: list[Candidate] = []
    for source in plan.sources:
        default_time = catalog.sources[source].time_dimension
        if plan.time_dimension is not None and plan.time_dimension.name != default_time:
            continue
        needed = {raw for raw in plan.raws if raw.source == source}
        distinct = any(raw.function == "count_distinct" for raw in needed)
        if distinct and plan.measure_filters:
            # Totals over the groups kept need each key set's cells in those groups taken
            # together, which the statement does not compute: read raw rows.
            continue
        for rollup in catalog.rollups.values():
            if rollup.source != source or not grain_aligned(plan, rollup):
                continue
            if not wanted <= set(rollup.dimensions):
                continue
            if needed <= set(rollup_raws(catalog, rollup)):
                digest = definition_digest(catalog, rollup)
                found.append(Candidate(source, rollup, digest))
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
        # by time: those between the first and the last partition overlapping the range, in
        # the rollup's unit and zone).
        rollup = candidate.rollup
        first, last = (
            ("", "~") if span is None else partitions_over(rollup.partition, span, rollup.zone)
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

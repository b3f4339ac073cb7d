"""The release gate's rule: which breaking changes the changelog acknowledges.

A breaking change is acknowledged when its schema coordinate, written as code
(`` `Query.orders` ``, `` `Query.orders(first:)` ``, `` `OrderStatus.PAID` ``, `` `@auth` ``),
appears under a heading that starts with "Breaking" inside the ``[Unreleased]`` section of
CHANGELOG.md. The match is exact: a type's coordinate acknowledges changes of the type
itself, not of each of its fields.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from dataintel.evolution.changes import Criticality, SchemaChange

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$")
_CODE = re.compile(r"`([^`\n]+)`")


def _headings(lines: list[str]) -> list[tuple[int, int, str]]:
    """(line number, level, text) of each Markdown heading, outside fenced code."""
    found: list[tuple[int, int, str]] = []
    fenced = False
    for number, line in enumerate(lines):
        if line.startswith("```"):
            fenced = not fenced
            continue
        heading = _HEADING.match(line)
        if heading and not fenced:
            found.append((number, len(heading.group(1)), heading.group(2)))
    return found


def acknowledged_coordinates(changelog: str) -> frozenset[str]:
    """Coordinates written as code under a "Breaking" heading of the Unreleased section."""
    lines = changelog.splitlines()
    headings = _headings(lines)
    unreleased = next(
        (
            (number, level)
            for number, level, text in headings
            if text.lower().lstrip("[").startswith("unreleased")
        ),
        None,
    )
    if unreleased is None:
        return frozenset()
    start, level = unreleased
    end = next((n for n, lvl, _ in headings if n > start and lvl <= level), len(lines))
    found: set[str] = set()
    inside = [(n, lvl, text) for n, lvl, text in headings if start < n < end]
    for number, breaking_level, text in inside:
        if not text.lower().startswith("breaking"):
            continue
        stop = next((n for n, lvl, _ in inside if n > number and lvl <= breaking_level), end)
        for line in lines[number + 1 : stop]:
            found.update(code.strip() for code in _CODE.findall(line))
    return frozenset(found)


def unacknowledged(
    changes: Iterable[SchemaChange], acknowledged: frozenset[str]
) -> list[SchemaChange]:
    """The breaking changes whose coordinate the changelog does not acknowledge."""
    return [
        change
        for change in changes
        if change.criticality is Criticality.BREAKING
        and (not change.coordinate or change.coordinate not in acknowledged)
    ]

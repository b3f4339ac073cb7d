"""@cost: a field's weight in the operation cost, and the argument that says how many it lists.

Without it, a field returning an object or a list weighs 1 and a scalar 0, and a field with
a ``first`` or ``limit`` argument multiplies the cost of its selection by that argument's
value (or its default). See ``gateway/limits.py``.
"""

from __future__ import annotations

import strawberry
from strawberry.schema_directive import Location


@strawberry.schema_directive(
    locations=[Location.FIELD_DEFINITION],
    name="cost",
    description="The field's weight, and which argument (a dotted path into an input, or a"
    " list whose length counts) gives the number of items its selection is multiplied by.",
)
class Cost:
    weight: int | None = strawberry.UNSET
    list_size_argument: str | None = strawberry.UNSET
    assumed_size: int | None = strawberry.UNSET


def cost_of(directives: object) -> Cost | None:
    """The @cost among a Strawberry definition's directives, if any."""
    if not isinstance(directives, list | tuple):
        return None
    return next((item for item in directives if isinstance(item, Cost)), None)

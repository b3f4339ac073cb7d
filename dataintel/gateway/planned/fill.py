"""One generated function per selection that reads and serializes its scalar and enum fields.

A selection's leaves (an attribute or a plain method of the object, then a scalar's or an
enum's serialization) cost, read in a loop, a tuple unpacked, a call of the read and a call
of the serializer per field; for a page of objects that loop was most of the execution. The
function made here does the same work written out for the selection: ``source.name`` for an
attribute, the serializer's own first check inline (``type(v) is str``, the enum member's
memo), and the serializer called only for what that check does not take.

It stops at the first leaf it cannot finish without the executor (a read that raised, a null
where none may be, a value the fast check refused and the serializer failed on) and says
which, with what it read, so the executor completes that leaf as before and reads the rest
in its loop: every read still runs exactly once, in document order.
"""

from __future__ import annotations

import keyword
from collections.abc import Callable, Sequence
from typing import Any

from graphql import GraphQLLeafType, get_nullable_type

from dataintel.gateway.planned.leaves import ENUM_MEMBERS, accepts_as_is

UNREAD: Any = object()
"""What a stop reports as read when the read itself raised."""

Stop = tuple[int, Any, "Exception | None"]
"""(index of the leaf, the value read or UNREAD, the read's error or None)."""

Fill = Callable[[Any, dict[str, Any]], "Stop | None"]

Leaf = tuple[str, Callable[[Any], Any], Callable[[Any], Any], Any]
"""(response key, read, serialize, the field's plan): what a Selection keeps per leaf."""


def make_fill(leaves: Sequence[Leaf], attributes: Sequence[str | None]) -> Fill:
    """The function filling ``target`` from ``source`` for these leaves.

    ``attributes[i]`` is the Python attribute leaf ``i`` reads, or None when it is read by
    calling its ``read`` (a plain method of the object).
    """
    names: dict[str, Any] = {"_UNREAD": UNREAD, "_INF": float("inf")}
    lines = ["def fill(source, target):"]
    for index, ((key, read, serialize, plan), attribute) in enumerate(
        zip(leaves, attributes, strict=True)
    ):
        names[f"k{index}"] = key
        names[f"s{index}"] = serialize
        if attribute is not None and attribute.isidentifier() and not keyword.iskeyword(attribute):
            reading = f"source.{attribute}"
        else:
            names[f"r{index}"] = read
            reading = f"r{index}(source)"
        lines += [
            "    try:",
            f"        v = {reading}",
            "    except Exception as error:",
            f"        return {index}, _UNREAD, error",
            "    if v is None:",
            "        pass" if plan.nullable else f"        return {index}, v, None",
        ]
        leaf_type: GraphQLLeafType = get_nullable_type(plan.return_type)
        as_is = accepts_as_is(leaf_type)
        if as_is is not None:
            lines += [f"    elif {as_is}:", f"        target[k{index}] = v"]
        members = ENUM_MEMBERS.get(serialize)
        if members is not None:
            names[f"m{index}"] = members.get
            lines += [
                "    else:",
                f"        m = m{index}(id(v))",
                "        if m is not None and m[0] is v:",
                f"            target[k{index}] = m[1]",
                "        else:",
                "            try:",
                f"                target[k{index}] = s{index}(v)",
                "            except Exception:",
                f"                return {index}, v, None",
            ]
        else:
            lines += [
                "    else:",
                "        try:",
                f"            target[k{index}] = s{index}(v)",
                "        except Exception:",
                f"            return {index}, v, None",
            ]
    lines.append("    return None")
    exec(compile("\n".join(lines), "<planned fill>", "exec"), names)
    fill: Fill = names["fill"]
    return fill

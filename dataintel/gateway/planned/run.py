"""Runs one operation plan breadth-first over the request's resolvers and loaders.

Every field whose value is at hand (an attribute, a synchronous resolver) is completed at
once; every awaitable a resolver returns waits for the end of the wave, where all of them are
gathered together. So all the loads of one level are queued before any loader dispatches,
and each loader dispatches once per level. A KeyedLoad field (resolvers/keyed_loads.py) is not
called at all: its parents' keys are collected through the wave and loaded with one
``load_all`` per loader at its end. Results are built as dictionaries in place; a null in a
non-null position nulls the nearest nullable parent, as graphql-core does, and errors under a
position already nulled are dropped, as graphql-core drops them.

It is one module, over the 500 lines the others keep to, because it is one object: the wave
loop, completion, keyed loads and null propagation all work on the same run state (the
wave's queue, the result slots, the nulled paths); split apart, each part would reach into
the others' state.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Sequence
from enum import Enum
from itertools import islice, repeat
from operator import itemgetter, setitem
from typing import Any, cast

from graphql import (
    ExecutionResult,
    GraphQLAbstractType,
    GraphQLError,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLSchema,
    located_error,
)
from graphql.execution.executor import default_type_resolver
from graphql.execution.values import VariableValues, get_argument_values
from graphql.pyutils import Path, Undefined, inspect, is_awaitable, is_iterable
from graphql.type.definition import GraphQLResolveInfoHelpers
from strawberry.types.arguments import convert_arguments
from strawberry.types.cast import TYPE_CAST_ATTRIBUTE, get_strawberry_type_cast

from dataintel.context import FieldDenials
from dataintel.gateway.planned.fill import UNREAD, Stop
from dataintel.gateway.planned.kept import keep, kept_many
from dataintel.gateway.planned.plan import (
    ATTRIBUTE,
    DIRECT,
    KEYED,
    METHOD,
    TYPENAME,
    FieldPlan,
    OperationPlan,
    Planner,
    ResolverKinds,
    Selection,
    condition_key,
)
from dataintel.resolvers.freshness import mark_stale_at
from dataintel.resolvers.keyed_loads import KeyLoader

Info = GraphQLResolveInfo[Any]


Slot = tuple[Any, "str | int", bool, "Slot | None", "Path | None"]
"""Where a list or an object sits in the result, what a non-null failure below nulls:
(container, key, nullable, the enclosing slot, path). A tuple: one is made per object."""


_Pending = tuple[
    Awaitable[Any],
    GraphQLOutputType,
    FieldPlan,
    Any,
    "str | int",
    "Slot | None",
    Path,
    "Info | None",
]
"""An awaitable a resolver returned, and where its completed value goes."""

_Object = tuple[GraphQLObjectType, Any, dict[str, Any], "Slot | None", Selection]
"""An object to resolve the selection of: its type, its value, its result and its slot."""

_Keyed = tuple[Any, dict[str, Any], "Slot | None", "Path | None"]
"""A KeyedLoad field met in a wave: its parent object, and where its value goes. The path is
None when it is made only if needed (an error, a stale mark, a nulled parent): the field's
key under its parent slot's path (``_entry_path``)."""

_KeyedGroup = tuple[FieldPlan, list[_Keyed], list[Any], int]
"""A KeyedLoad field's entries whose keys are being loaded, their keys, and where their
outcomes start in the loader's answer."""


async def _gather(awaitables: Sequence[Awaitable[Any]]) -> list[Any]:
    return list(await asyncio.gather(*awaitables))


def _track(_values: Sequence[Any]) -> None:
    return None


_HELPERS = GraphQLResolveInfoHelpers(_gather, _track)
_NONE_ACCEPTED: frozenset[type] = frozenset()
_path = tuple.__new__
"""Makes a Path (a NamedTuple) without the Python ``__new__`` its class call runs."""
_IMMUTABLE = frozenset({int, float, str, bool, type(None)})
_source_of = itemgetter(0)
_target_of = itemgetter(1)
_FAILED: Any = object()


def _slot_path(slot: Slot) -> Path:
    """The path of a slot's position; a list item's slot makes it only when asked (errors
    and nulls need it; a page of objects filled without either does not)."""
    path = slot[4]
    if path is None:
        parent = slot[3]
        assert parent is not None
        path = _path(Path, (_slot_path(parent), slot[1], None))
    return path


def _entry_path(plan: FieldPlan, slot: Slot | None, path: Path | None) -> Path:
    """A keyed entry's path, made from its parent's slot when the entry has none."""
    if path is not None:
        return path
    assert slot is not None
    return _path(Path, (_slot_path(slot), plan.key, plan.parent_type.name))


def _keys_of(key_of: Any, entries: list[_Keyed]) -> tuple[list[Any], dict[int, Exception]]:
    """Each entry's key, in order, each read once; _FAILED where the read raised (its error
    by index). The reads are driven by C (``list.extend`` keeps what it got before a raise)."""
    keys: list[Any] = []
    errors: dict[int, Exception] = {}
    start = 0
    while True:
        try:
            keys.extend(map(key_of, map(_source_of, islice(entries, start, None))))
        except Exception as error:
            errors[len(keys)] = error
            keys.append(_FAILED)
            start = len(keys)
            continue
        return keys, errors


class PlanRun:
    """One execution of a plan: the request's context, variables and result."""

    def __init__(
        self,
        schema: GraphQLSchema,
        planner: Planner,
        kinds: ResolverKinds,
        plan: OperationPlan,
        context: Any,
        variables: VariableValues,
        hide_suggestions: bool,
    ) -> None:
        self._schema = schema
        self._planner = planner
        self._kinds = kinds
        self._plan = plan
        self._context = context
        self._variables = variables
        self._conditions: dict[str, Any] = variables.coerced
        self._condition_key: tuple[bool, ...] = ()
        self._hide_suggestions = hide_suggestions
        self._denied: FieldDenials = getattr(context, "denied_fields", None) or FieldDenials()
        self._any_denied = bool(self._denied)
        self._errors: list[GraphQLError] = []
        self._nulled: set[Path | None] = set()
        self._queue: deque[_Object] = deque()
        self._pending: list[_Pending] = []
        self._keyed: dict[FieldPlan, list[_Keyed]] = {}
        self._selections: dict[tuple[FieldPlan, GraphQLObjectType], Selection] = {}

    async def run(self) -> ExecutionResult:
        """Runs every wave until nothing is left to resolve."""
        root_type = self._schema.query_type
        assert root_type is not None
        selection = self._planner.root_fields(self._plan, root_type, self._conditions)
        self._condition_key = condition_key(self._plan, self._conditions)
        data: dict[str, Any] = selection.template.copy()
        self._queue.append((root_type, None, data, None, selection))
        while True:
            self._drain()
            if not self._pending and not self._keyed:
                break
            pending, self._pending = self._pending, []
            keyed, self._keyed = self._keyed, {}
            loads = self._keyed_loads(keyed)
            awaitables = [p[0] for p in pending]
            awaitables.extend(load[1] for load in loads)
            if len(awaitables) == 1:
                try:
                    results: list[Any] = [await awaitables[0]]
                except Exception as error:
                    results = [error]
            else:
                results = await asyncio.gather(*awaitables, return_exceptions=True)
            for (_, type_, plan, target, key, slot, path, info), result in zip(
                pending, results, strict=False
            ):
                if isinstance(result, BaseException) and not isinstance(result, Exception):
                    raise result
                if self._nulled and self._is_nulled(path):
                    continue
                self._complete(type_, result, plan, target, key, path, slot, info)
            for (loader, _, groups), result in zip(loads, results[len(pending) :], strict=True):
                if isinstance(result, BaseException) and not isinstance(result, Exception):
                    raise result
                self._complete_keyed(loader, groups, result)
        if None in self._nulled:
            return ExecutionResult(None, self._errors or None)
        return ExecutionResult(data, self._errors or None)

    def _drain(self) -> None:
        queue = self._queue
        keyed = self._keyed
        nulled = self._nulled
        any_denied = self._any_denied
        while queue:
            object_type, source, target, slot, selection = queue.popleft()
            parent_path = None
            if slot is not None:
                parent_path = slot[4]
                if nulled and self._is_nulled(parent_path):
                    continue
            if any_denied:
                for plan in selection.fields:
                    self._resolve(object_type, source, target, slot, parent_path, plan)
                continue
            # Scalars and enums from the object alone: no path, no info, unless one fails.
            fill = selection.fill
            if fill is not None:
                stop = fill(source, target)
                if stop is not None:
                    self._leaves_from(stop, object_type, source, target, slot, parent_path,
                                      selection)  # fmt: skip
            for plan in selection.others:
                if plan.kind == KEYED:
                    entries = keyed.get(plan)
                    if entries is None:
                        entries = keyed[plan] = []
                    path = _path(Path, (parent_path, plan.key, object_type.name))
                    entries.append((source, target, slot, path))
                    continue
                self._resolve(object_type, source, target, slot, parent_path, plan)

    def _leaves_from(
        self,
        stop: Stop,
        object_type: GraphQLObjectType,
        source: Any,
        target: dict[str, Any],
        slot: Slot | None,
        parent_path: Path | None,
        selection: Selection,
    ) -> None:
        """Completes the leaf a selection's fill stopped at, then reads the rest one by one."""
        index, value, error = stop
        leaves = selection.leaves
        key, _, _, plan = leaves[index]
        path = Path(parent_path, key, object_type.name)
        if error is not None:
            self._fail(located_error(error, plan.nodes, path.as_list()), plan.nullable, target,
                       key, path, slot)  # fmt: skip
        else:
            # Null where it may not be, or a value that does not serialize: its error.
            self._resolved(value, plan, target, slot, path, None)
        for key, read, serialize, plan in leaves[index + 1 :]:
            value = UNREAD
            try:
                value = read(source)
                if value is not None:
                    target[key] = serialize(value)
                    continue
                if plan.nullable:
                    continue
            except Exception as error:
                if value is UNREAD:
                    path = Path(parent_path, key, object_type.name)
                    self._fail(located_error(error, plan.nodes, path.as_list()),
                               plan.nullable, target, key, path, slot)  # fmt: skip
                    continue
            path = Path(parent_path, key, object_type.name)
            self._resolved(value, plan, target, slot, path, None)

    def _resolve(
        self,
        object_type: GraphQLObjectType,
        source: Any,
        target: dict[str, Any],
        slot: Slot | None,
        parent_path: Path | None,
        plan: FieldPlan,
    ) -> None:
        key = plan.key
        kind = plan.kind
        path = _path(Path, (parent_path, key, object_type.name))
        info: Info | None = None
        try:
            if self._any_denied:
                denial = self._denied.for_node(plan.nodes[0])
                if denial is not None:
                    raise denial
            if kind in (ATTRIBUTE, METHOD):
                read = plan.read
                assert read is not None
                value = read(source)
            elif kind == KEYED:
                entries = self._keyed.get(plan)
                if entries is None:
                    entries = self._keyed[plan] = []
                entries.append((source, target, slot, path))
                return
            elif kind == TYPENAME:
                value = object_type.name
            else:
                info = self._info(plan, object_type, path)
                arguments = self._arguments(plan)
                if kind == DIRECT:
                    value = self._call(plan, source, info, arguments)
                else:
                    resolve = plan.definition.resolve
                    assert resolve is not None
                    value = resolve(source, info, **arguments)
        except Exception as error:
            self._fail(located_error(error, plan.nodes, path.as_list()), plan.nullable,
                       target, key, path, slot)  # fmt: skip
            return
        self._resolved(value, plan, target, slot, path, info)

    def _resolved(
        self,
        value: Any,
        plan: FieldPlan,
        target: dict[str, Any],
        slot: Slot | None,
        path: Path,
        info: Info | None,
    ) -> None:
        """A resolver's answer: completed now, or at the end of the wave when awaitable."""
        if is_awaitable(value):
            pending = (value, plan.return_type, plan, target, plan.key, slot, path, info)
            self._pending.append(pending)
            return
        self._complete(plan.return_type, value, plan, target, plan.key, path, slot, info)

    def _keyed_loads(
        self, keyed: dict[FieldPlan, list[_Keyed]]
    ) -> list[tuple[KeyLoader[Any, Any], Awaitable[Sequence[Any]], list[_KeyedGroup]]]:
        """One load_all per loader for every KeyedLoad field met in the wave."""
        by_loader: dict[int, tuple[KeyLoader[Any, Any], list[Any], list[_KeyedGroup]]] = {}
        loaders = self._context.loaders
        for plan, entries in keyed.items():
            declaration = plan.keyed
            assert declaration is not None
            try:
                loader = declaration.loader(loaders)
            except Exception as error:
                for _, target, slot, path in entries:
                    path = _entry_path(plan, slot, path)
                    self._fail(located_error(error, plan.nodes, path.as_list()), plan.nullable,
                               target, plan.key, path, slot)  # fmt: skip
                continue
            group = by_loader.get(id(loader))
            if group is None:
                group = by_loader[id(loader)] = (loader, [], [])
            _, keys, groups = group
            plan_keys, errors = _keys_of(declaration.key, entries)
            # `in` compares by identity first; a key equal to None but not None only takes
            # the loop below, which tells them apart, for nothing.
            if errors or None in plan_keys:
                chosen: list[_Keyed] = []
                loaded: list[Any] = []
                for index, (entry, key) in enumerate(zip(entries, plan_keys, strict=True)):
                    _, target, slot, path = entry
                    if key is _FAILED:
                        path = _entry_path(plan, slot, path)
                        self._fail(located_error(errors[index], plan.nodes, path.as_list()),
                                   plan.nullable, target, plan.key, path, slot)  # fmt: skip
                        continue
                    if key is None:
                        path = _entry_path(plan, slot, path)
                        self._complete(plan.return_type, None, plan, target, plan.key, path,
                                       slot, None)  # fmt: skip
                        continue
                    chosen.append(entry)
                    loaded.append(key)
                entries, plan_keys = chosen, loaded
                if not entries:
                    continue
            groups.append((plan, entries, plan_keys, len(keys)))
            keys.extend(plan_keys)
        return [
            (loader, loader.load_all(keys), groups)
            for loader, keys, groups in by_loader.values()
            if keys
        ]

    def _complete_keyed(
        self, loader: KeyLoader[Any, Any], groups: list[_KeyedGroup], outcomes: Any
    ) -> None:
        """Completes each KeyedLoad field with its key's value, as its resolver would."""
        stale = loader.stale_reads()
        failed = outcomes if isinstance(outcomes, Exception) else None
        for plan, entries, keys, start in groups:
            if failed is not None:
                chunk: Sequence[Any] = [failed] * len(entries)
            else:
                chunk = outcomes[start : start + len(entries)]
            self._complete_keyed_field(plan, entries, keys, chunk, stale)

    def _complete_keyed_field(
        self,
        plan: FieldPlan,
        entries: list[_Keyed],
        keys: list[Any],
        outcomes: Sequence[Any],
        stale: Any,
    ) -> None:
        """One KeyedLoad field's entries, each with its key's outcome."""
        context = self._context
        nulled = self._nulled
        declaration = plan.keyed
        assert declaration is not None
        convert = declaration.convert
        object_type = plan.object_type
        accepted = plan.accepted
        field_key = plan.key
        nullable = plan.nullable
        chosen: Selection | None = None
        converted = declaration.converted
        if (
            converted is not None
            and object_type is not None
            and not nulled
            and not stale
            and not self._any_denied
        ):
            values = converted(outcomes)
            if values is not None:
                below = self._selection(plan, object_type)
                if not below.others and below.fill is not None:
                    kept = kept_many(values, below)
                    if kept is not None:
                        # Every outcome a value whose leaves are kept: set in one pass in C.
                        deque(map(setitem, map(_target_of, entries), repeat(field_key), kept),
                              maxlen=0)  # fmt: skip
                        return
        leaves_only = False
        fill = None
        template: dict[str, Any] = {}
        for (_, target, slot, path), key, outcome in zip(entries, keys, outcomes, strict=True):
            if nulled and self._is_nulled(_entry_path(plan, slot, path)):
                continue
            try:
                if isinstance(outcome, Exception):
                    raise outcome
                if stale:
                    read = stale.get(key)
                    if read is not None:
                        mark_stale_at(context, _entry_path(plan, slot, path).as_list(), read)
                value = convert(outcome)
            except Exception as error:
                path = _entry_path(plan, slot, path)
                self._fail(located_error(error, plan.nodes, path.as_list()), nullable,
                           target, field_key, path, slot)  # fmt: skip
                continue
            if (
                object_type is not None
                and type(value) in accepted
                and getattr(value, TYPE_CAST_ATTRIBUTE, None) is None
            ):
                # What _complete_object does for an object of a class already accepted.
                if chosen is None:
                    chosen = self._selection(plan, object_type)
                    leaves_only = not chosen.others and not self._any_denied
                    fill = chosen.fill
                    template = chosen.template
                child = template.copy()
                target[field_key] = child
                if leaves_only:
                    # Nothing below it waits for a load: filled now, not queued for the next
                    # wave (which, for the last level of a query, would be a wave of its own).
                    if fill is not None:
                        stop = fill(value, child)
                        if stop is not None:
                            path = _entry_path(plan, slot, path)
                            child_slot = (target, field_key, nullable, slot, path)
                            self._leaves_from(stop, object_type, value, child, child_slot, path,
                                              chosen)  # fmt: skip
                        else:
                            keep(value, chosen, child)
                    continue
                path = _entry_path(plan, slot, path)
                child_slot = (target, field_key, nullable, slot, path)
                self._queue.append((object_type, value, child, child_slot, chosen))
                continue
            path = _entry_path(plan, slot, path)
            self._complete(plan.return_type, value, plan, target, field_key, path, slot, None)

    def _selection(self, plan: FieldPlan, object_type: GraphQLObjectType) -> Selection:
        """The fields selected under ``plan`` on objects of ``object_type``, in this run."""
        found = self._selections.get((plan, object_type))
        if found is None:
            found = self._selections[(plan, object_type)] = self._planner.subfields(
                self._plan, plan, object_type, self._condition_key
            )
        return found

    def _info(self, plan: FieldPlan, object_type: GraphQLObjectType, path: Path) -> Info:
        return GraphQLResolveInfo(
            plan.name,
            plan.nodes,
            plan.return_type,
            object_type,
            path,
            self._schema,
            self._plan.fragments,
            None,
            self._plan.operation,
            self._variables,
            self._context,
            is_awaitable,
            None,
            _HELPERS,
        )

    def _arguments(self, plan: FieldPlan) -> dict[str, Any]:
        if not plan.takes_arguments:
            return {}
        if plan.static_arguments is not None:
            return plan.static_arguments
        arguments = get_argument_values(
            plan.definition, plan.nodes[0], self._variables, None, self._hide_suggestions
        )
        if plan.arguments_are_static:
            plan.static_arguments = arguments
        return arguments

    def _call(self, plan: FieldPlan, source: Any, info: Info, arguments: dict[str, Any]) -> Any:
        kinds = self._kinds
        strawberry_info = kinds.config.info_class(_raw_info=info, _field=plan.strawberry_field)  # type: ignore[union-attr]
        if plan.static_kwargs is not None:
            kwargs = dict(plan.static_kwargs)
        elif arguments:
            kwargs = convert_arguments(
                arguments,
                plan.strawberry_field.arguments,
                scalar_registry=kinds.scalar_registry,  # type: ignore[arg-type]
                config=kinds.config,  # type: ignore[arg-type]
                info=strawberry_info,
            )
            if arguments is plan.static_arguments and all(
                type(value) in _IMMUTABLE or isinstance(value, Enum) for value in kwargs.values()
            ):
                # Arguments written in the document convert to the same values every time;
                # kept only when nothing a resolver is given could be changed by it.
                plan.static_kwargs = dict(kwargs)
        else:
            kwargs = {}
        for name in plan.source_parameters:
            kwargs[name] = source
        if plan.info_parameter is not None:
            kwargs[plan.info_parameter] = strawberry_info
        function = plan.function
        assert function is not None
        if plan.passes_self:
            return function(source, **kwargs)
        return function(**kwargs)

    def _complete(
        self,
        return_type: GraphQLOutputType,
        value: Any,
        plan: FieldPlan,
        container: Any,
        key: str | int,
        path: Path,
        slot: Slot | None,
        info: Info | None,
    ) -> None:
        nullable = True
        if isinstance(return_type, GraphQLNonNull):
            return_type = return_type.of_type
            nullable = False
        try:
            if isinstance(value, Exception):
                raise value
            if value is None or value is Undefined:
                if nullable:
                    container[key] = None
                    return
                raise TypeError(
                    f"Cannot return null for non-nullable field {plan.parent_type}.{plan.name}."
                )
            if isinstance(return_type, GraphQLList):
                self._complete_list(return_type, value, plan, container, key, path, slot,
                                    nullable, info)  # fmt: skip
                return
            if isinstance(return_type, GraphQLObjectType):
                self._complete_object(return_type, value, plan, container, key, path, slot,
                                      nullable, info)  # fmt: skip
                return
            if isinstance(return_type, GraphQLLeafType):
                container[key] = self._planner.serializer(return_type)(value)
                return
            runtime = self._runtime_type(return_type, value, plan, path, info)
            self._complete_object(runtime, value, plan, container, key, path, slot, nullable,
                                  info)  # fmt: skip
        except Exception as error:
            self._fail(located_error(error, plan.nodes, path.as_list()), nullable, container,
                       key, path, slot)  # fmt: skip

    def _complete_list(
        self,
        list_type: GraphQLList[Any],
        value: Any,
        plan: FieldPlan,
        container: Any,
        key: str | int,
        path: Path,
        slot: Slot | None,
        nullable: bool,
        info: Info | None,
    ) -> None:
        if not is_iterable(value):
            raise GraphQLError(
                "Expected Iterable, but did not find one for field"
                f" '{plan.parent_type}.{plan.name}'."
            )
        items: list[Any] = []
        container[key] = items
        list_slot: Slot = (container, key, nullable, slot, path)
        item_type = list_type.of_type
        object_type = item_type.of_type if isinstance(item_type, GraphQLNonNull) else item_type
        accepted = (
            self._planner.accepted_classes(object_type)
            if isinstance(object_type, GraphQLObjectType)
            else _NONE_ACCEPTED
        )
        item_nullable = object_type is item_type
        known_type = cast(GraphQLObjectType, object_type)
        if (
            accepted
            and type(value) is list
            and self._kept_items(plan, known_type, value, items, list_slot, item_nullable)
        ):
            return
        selection: Selection | None = None
        at_once = False
        template: dict[str, Any] = {}
        fill = None
        appends: list[Any] = []
        queue = self._queue
        for index, item in enumerate(value):
            if type(item) in accepted and getattr(item, TYPE_CAST_ATTRIBUTE, None) is None:
                # An object of a class already seen to be of this type: what
                # _complete_object does, without asking is_type_of again.
                if selection is None:
                    selection = self._selection(plan, known_type)
                    # Leaves and keyed loads only: what _drain would do with the item, done
                    # now rather than after a trip through the queue.
                    at_once = not self._any_denied and all(
                        other.kind == KEYED for other in selection.others
                    )
                    template = selection.template
                    fill = selection.fill
                    if at_once:
                        keyed = self._keyed
                        appends = [keyed.setdefault(other, []).append for other in selection.others]
                target = template.copy()
                items.append(target)
                if not at_once:
                    item_path = _path(Path, (path, index, None))
                    item_slot: Slot = (items, index, item_nullable, list_slot, item_path)
                    queue.append((known_type, item, target, item_slot, selection))
                    continue
                # No path made for the item nor its keyed fields: _slot_path and _entry_path
                # make them from the slot when an error, a stale mark or a null needs one.
                item_slot = (items, index, item_nullable, list_slot, None)
                if fill is not None:
                    stop = fill(item, target)
                    if stop is not None:
                        self._leaves_from(stop, known_type, item, target, item_slot,
                                          _slot_path(item_slot), selection)  # fmt: skip
                    else:
                        keep(item, selection, target)
                for append in appends:
                    append((item, target, item_slot, None))
                continue
            items.append(None)
            item_path = _path(Path, (path, index, None))
            if is_awaitable(item):
                self._pending.append(
                    (item, item_type, plan, items, index, list_slot, item_path, info)
                )
                continue
            self._complete(item_type, item, plan, items, index, item_path, list_slot, info)

    def _kept_items(
        self,
        plan: FieldPlan,
        object_type: GraphQLObjectType,
        value: list[Any],
        items: list[Any],
        list_slot: Slot,
        item_nullable: bool,
    ) -> bool:
        """A list whose every object has its leaves kept (gateway/planned/kept.py) and only
        keyed loads below them, completed with no Python frame per object: the same results
        and keyed entries the loop in _complete_list makes. False, with nothing done, when
        it cannot be."""
        if self._any_denied:
            return False
        selection = self._selection(plan, object_type)
        if selection.fill is None or not all(other.kind == KEYED for other in selection.others):
            return False
        kept = kept_many(value, selection)
        if kept is None:
            return False
        items.extend(kept)
        if selection.others:
            slots = list(zip(repeat(items), range(len(items)), repeat(item_nullable),
                             repeat(list_slot), repeat(None)))  # fmt: skip
            keyed = self._keyed
            for other in selection.others:
                keyed.setdefault(other, []).extend(zip(value, items, slots, repeat(None)))
        return True

    def _complete_object(
        self,
        object_type: GraphQLObjectType,
        value: Any,
        plan: FieldPlan,
        container: Any,
        key: str | int,
        path: Path,
        slot: Slot | None,
        nullable: bool,
        info: Info | None,
    ) -> None:
        is_type_of = object_type.is_type_of
        if is_type_of is not None:
            accepted = self._planner.accepted_classes(object_type)
            if type(value) not in accepted or get_strawberry_type_cast(value) is not None:
                if not is_type_of(value, info):  # type: ignore[arg-type]
                    raise GraphQLError(
                        f"Expected value of type '{object_type}' but got: {inspect(value)}.",
                        plan.nodes,
                    )
                # Strawberry's is_type_of depends on the class alone, unless cast.
                if get_strawberry_type_cast(value) is None:
                    accepted.add(type(value))
        selection = self._selection(plan, object_type)
        target: dict[str, Any] = selection.template.copy()
        container[key] = target
        self._queue.append(
            (object_type, value, target, (container, key, nullable, slot, path), selection)
        )

    def _runtime_type(
        self,
        abstract: GraphQLAbstractType,
        value: Any,
        plan: FieldPlan,
        path: Path,
        info: Info | None,
    ) -> GraphQLObjectType:
        if info is None:
            info = self._info(plan, plan.parent_type, path)
        resolve_type = abstract.resolve_type or default_type_resolver
        name = resolve_type(value, info, abstract)
        nodes = plan.nodes
        field = f"{plan.parent_type}.{plan.name}"
        if name is None:
            raise GraphQLError(
                f"Abstract type '{abstract}' must resolve to an Object type at runtime"
                f" for field '{field}'. Either the '{abstract}' type should provide"
                " a 'resolve_type' function or each possible type should provide"
                " an 'is_type_of' function.",
                nodes,
            )
        if not isinstance(name, str):
            raise GraphQLError(
                f"Abstract type '{abstract}' must resolve to an Object type at runtime"
                f" for field '{field}' with value {inspect(value)}, received"
                f" '{inspect(name)}', which is not a valid Object type name.",
                nodes,
            )
        runtime = self._schema.get_type(name)
        if runtime is None:
            raise GraphQLError(
                f"Abstract type '{abstract}' was resolved to a type '{name}'"
                " that does not exist inside the schema.",
                nodes,
            )
        if not isinstance(runtime, GraphQLObjectType):
            raise GraphQLError(
                f"Abstract type '{abstract}' was resolved to a non-object type '{name}'.", nodes
            )
        if not self._schema.is_sub_type(abstract, runtime):
            raise GraphQLError(
                f"Runtime Object type '{runtime}' is not a possible type for '{abstract}'.",
                nodes,
            )
        return runtime

    def _fail(
        self,
        error: GraphQLError,
        nullable: bool,
        container: Any,
        key: str | int,
        path: Path | None,
        slot: Slot | None,
    ) -> None:
        while not nullable:
            if slot is None:
                path = None
                break
            container, key, nullable, slot, path = slot
            if path is None:
                # A list item's slot: its path is made when it is needed, here.
                assert slot is not None
                path = _path(Path, (_slot_path(slot), key, None))
        else:
            container[key] = None
        if self._is_nulled(path):
            return
        self._nulled.add(path)
        self._errors.append(error)

    def _is_nulled(self, start: Path | None) -> bool:
        nulled = self._nulled
        path = start
        while path is not None:
            if path in nulled:
                return True
            path = path.prev
        return None in nulled

"""The plan of one operation: its fields per runtime type, resolved once per document.

Collection follows graphql-core's (and the spec's CollectFields): fields grouped by response
key in document order, fragments applied when their type condition matches the runtime type,
@skip/@include evaluated per request. What depends on variables (@skip/@include conditions,
arguments) is cached under the values that decide it, so a plan serves every request.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from graphql import (
    BooleanValueNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLLeafType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    InlineFragmentNode,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    ValueNode,
    VariableNode,
    get_nullable_type,
    is_abstract_type,
)
from graphql.type.introspection import TypeNameMetaFieldDef

from dataintel.gateway.planned.fill import Fill, make_fill
from dataintel.gateway.planned.leaves import serializer
from dataintel.resolvers.keyed_loads import KEYED_LOAD, KeyedLoad

TYPENAME = 0
ATTRIBUTE = 1
DIRECT = 2
GENERIC = 3
METHOD = 4
"""A plain synchronous resolver of the object alone (no info, no arguments): one call."""
KEYED = 5
"""A KeyedLoad field: its keys are collected per level and loaded once per loader."""

_INTROSPECTION_FIELDS = frozenset({"__schema", "__type"})
_INCREMENTAL_DIRECTIVES = frozenset({"defer", "stream"})


@dataclass(slots=True, eq=False)
class FieldPlan:
    """One response key of a selection on one object type, and how to resolve it."""

    key: str
    name: str
    nodes: list[FieldNode]
    parent_type: GraphQLObjectType
    definition: GraphQLField
    return_type: GraphQLOutputType
    kind: int
    attribute: str = ""
    function: Callable[..., Any] | None = None
    read: Callable[[Any], Any] | None = None
    """The value from the parent object alone: an attribute read, or a METHOD's call."""
    keyed: KeyedLoad[Any, Any, Any, Any] | None = None
    strawberry_field: Any = None
    passes_self: bool = False
    source_parameters: tuple[str, ...] = ()
    info_parameter: str | None = None
    takes_arguments: bool = False
    static_arguments: dict[str, Any] | None = None
    """Coerced arguments, kept when no argument refers to a variable."""
    arguments_are_static: bool = False
    static_kwargs: dict[str, Any] | None = None
    """Strawberry's conversion of static arguments, kept when every value is immutable."""
    sub_selections: tuple[SelectionSetNode, ...] = ()
    nullable: bool = True
    serialize: Callable[[Any], Any] | None = None
    """Set when ``read`` gives a scalar or enum: the whole field is two calls."""
    object_type: GraphQLObjectType | None = None
    """The field's type when it is an object type (not a list, interface or union)."""
    accepted: set[type] = field(default_factory=set)
    """The classes ``object_type.is_type_of`` accepted (the planner's, shared)."""
    subfields: dict[tuple[str, tuple[bool, ...]], Selection] = field(default_factory=dict)


@dataclass(slots=True, eq=False)
class Selection:
    """The fields selected on one object type, and their response keys in order."""

    fields: list[FieldPlan]
    keys: tuple[str, ...]
    leaves: tuple[tuple[str, Callable[[Any], Any], Callable[[Any], Any], FieldPlan], ...] = ()
    """The fields that are a read and a serialization: (key, read, serialize, plan)."""
    others: tuple[FieldPlan, ...] = ()
    """Every other field, in document order."""
    fill: Fill | None = None
    """The leaves read and serialized by one generated function (gateway/planned/fill.py)."""
    template: dict[str, Any] = field(default_factory=dict)
    """Every response key, None: an object's result starts as a copy (cheaper than
    ``dict.fromkeys``, and in the same order)."""

    def __post_init__(self) -> None:
        leaves = []
        others = []
        for plan in self.fields:
            if plan.read is not None and plan.serialize is not None:
                leaves.append((plan.key, plan.read, plan.serialize, plan))
            else:
                others.append(plan)
        self.leaves = tuple(leaves)
        self.others = tuple(others)
        self.template = dict.fromkeys(self.keys)
        if leaves:
            attributes = [plan.attribute if plan.kind == ATTRIBUTE else None for *_, plan in leaves]
            self.fill = make_fill(self.leaves, attributes)


@dataclass(slots=True, eq=False)
class OperationPlan:
    """The operation, its fragments, and the per-type field lists built as they are needed."""

    document: DocumentNode
    operation: OperationDefinitionNode
    fragments: dict[str, FragmentDefinitionNode]
    fallback: str | None
    """Why this operation runs on graphql-core instead; None when the plan covers it."""
    condition_variables: tuple[str, ...]
    """Variables that decide an @skip or @include: the plan's cache keys include their values."""
    root_fields: dict[tuple[str, tuple[bool, ...]], Selection] = field(default_factory=dict)


class Planner:
    """Builds operation plans and their field lists against one schema."""

    def __init__(self, schema: GraphQLSchema, resolvers: ResolverKinds) -> None:
        self._schema = schema
        self._resolvers = resolvers
        self._serializers: dict[str, Callable[[Any], Any]] = {}
        self._accepted: dict[str, set[type]] = {}

    def accepted_classes(self, object_type: GraphQLObjectType) -> set[type]:
        """Classes whose objects ``object_type.is_type_of`` has accepted (uncast ones)."""
        found = self._accepted.get(object_type.name)
        if found is None:
            found = self._accepted[object_type.name] = set()
        return found

    def plan(self, document: DocumentNode, operation: OperationDefinitionNode) -> OperationPlan:
        """The plan of one operation of a validated document."""
        fragments = {
            definition.name.value: definition
            for definition in document.definitions
            if isinstance(definition, FragmentDefinitionNode)
        }
        scan = _Scan(fragments)
        scan.selection_set(operation.selection_set)
        fallback = None
        if operation.operation is not OperationType.QUERY:
            fallback = operation.operation.value
        elif scan.introspection:
            fallback = "introspection"
        elif scan.incremental:
            fallback = "defer_stream"
        return OperationPlan(
            document, operation, fragments, fallback, tuple(sorted(scan.condition_variables))
        )

    def root_fields(
        self, plan: OperationPlan, root: GraphQLObjectType, conditions: dict[str, Any]
    ) -> Selection:
        """The operation's root fields for the request's @skip/@include variable values."""
        key = (root.name, condition_key(plan, conditions))
        found = plan.root_fields.get(key)
        if found is None:
            found = self._collect(plan, root, (plan.operation.selection_set,), conditions)
            plan.root_fields[key] = found
        return found

    def subfields(
        self,
        plan: OperationPlan,
        parent: FieldPlan,
        runtime: GraphQLObjectType,
        conditions: tuple[bool, ...],
    ) -> Selection:
        """The fields selected on an object of ``runtime`` type under ``parent``."""
        key = (runtime.name, conditions)
        found = parent.subfields.get(key)
        if found is None:
            values = dict(zip(plan.condition_variables, conditions, strict=True))
            found = self._collect(plan, runtime, parent.sub_selections, values)
            parent.subfields[key] = found
        return found

    def serializer(self, leaf_type: GraphQLLeafType) -> Callable[[Any], Any]:
        """The output coercion of one scalar or enum type, shared by every plan."""
        found = self._serializers.get(leaf_type.name)
        if found is None:
            found = self._serializers[leaf_type.name] = serializer(leaf_type)
        return found

    def _collect(
        self,
        plan: OperationPlan,
        runtime: GraphQLObjectType,
        selection_sets: Iterable[SelectionSetNode],
        conditions: dict[str, Any],
    ) -> Selection:
        grouped: dict[str, list[FieldNode]] = {}
        visited: set[str] = set()
        for selection_set in selection_sets:
            self._collect_into(plan, runtime, selection_set, conditions, grouped, visited)
        fields = [self._field(runtime, key, nodes) for key, nodes in grouped.items()]
        return Selection(fields, tuple(grouped))

    def _collect_into(
        self,
        plan: OperationPlan,
        runtime: GraphQLObjectType,
        selection_set: SelectionSetNode,
        conditions: dict[str, Any],
        grouped: dict[str, list[FieldNode]],
        visited: set[str],
    ) -> None:
        for selection in selection_set.selections:
            if not _included(selection, conditions):
                continue
            if isinstance(selection, FieldNode):
                key = selection.alias.value if selection.alias else selection.name.value
                grouped.setdefault(key, []).append(selection)
            elif isinstance(selection, InlineFragmentNode):
                if selection.type_condition is None or self._matches(
                    selection.type_condition.name.value, runtime
                ):
                    self._collect_into(
                        plan, runtime, selection.selection_set, conditions, grouped, visited
                    )
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in visited:
                    continue
                visited.add(name)
                fragment = plan.fragments.get(name)
                if fragment is None or not self._matches(
                    fragment.type_condition.name.value, runtime
                ):
                    continue
                self._collect_into(
                    plan, runtime, fragment.selection_set, conditions, grouped, visited
                )

    def _matches(self, condition: str, runtime: GraphQLObjectType) -> bool:
        if condition == runtime.name:
            return True
        conditional = self._schema.get_type(condition)
        if conditional is not None and is_abstract_type(conditional):
            return self._schema.is_sub_type(conditional, runtime)
        return False

    def _field(self, parent: GraphQLObjectType, key: str, nodes: list[FieldNode]) -> FieldPlan:
        first = nodes[0]
        name = first.name.value
        selections = tuple(node.selection_set for node in nodes if node.selection_set is not None)
        if name == "__typename":
            definition = TypeNameMetaFieldDef
            return FieldPlan(
                key, name, nodes, parent, definition, definition.type, TYPENAME,
                nullable=False,
            )  # fmt: skip
        definition = parent.fields[name]
        plan = FieldPlan(
            key,
            name,
            nodes,
            parent,
            definition,
            definition.type,
            GENERIC,
            sub_selections=selections,
            takes_arguments=bool(definition.args or first.arguments),
            arguments_are_static=not any(_has_variable(a.value) for a in first.arguments or ()),
            nullable=not _is_non_null(definition.type),
        )
        self._resolvers.classify(plan)
        nullable_type = get_nullable_type(definition.type)
        if plan.read is not None and isinstance(nullable_type, GraphQLLeafType):
            plan.serialize = self.serializer(nullable_type)
        if isinstance(nullable_type, GraphQLObjectType):
            plan.object_type = nullable_type
            plan.accepted = self.accepted_classes(nullable_type)
        return plan


class ResolverKinds:
    """Decides how a field is resolved: attribute read, direct call, or graphql-core's way.

    A Strawberry field without resolver, extensions or exception handlers is an attribute
    read; one with a plain resolver is called directly with Strawberry's converted arguments
    and Info; anything else goes through the graphql-core resolve function Strawberry built.
    """

    def __init__(self, schema: GraphQLSchema) -> None:
        strawberry_schema = getattr(schema, "_strawberry_schema", None)
        converter = getattr(strawberry_schema, "schema_converter", None)
        self.converter = converter
        self.config = getattr(converter, "config", None)
        self.scalar_registry = getattr(converter, "scalar_registry", None)

    def classify(self, plan: FieldPlan) -> None:
        """Sets the plan's kind and what its kind needs."""
        definition = plan.strawberry_field = plan.definition.extensions.get("strawberry-definition")
        if definition is None or self.converter is None or definition.extensions:
            return
        handlers = getattr(self.converter, "_get_field_exception_handlers", None)
        if handlers is None or handlers(definition):
            return
        if definition.base_resolver is None:
            if definition.default_resolver is getattr:
                plan.kind = ATTRIBUTE
                plan.attribute = definition.python_name
                plan.read = attrgetter(definition.python_name)
            return
        resolver = definition.base_resolver
        plan.kind = DIRECT
        plan.function = resolver.wrapped_func
        plan.passes_self = resolver.self_parameter is not None
        plan.source_parameters = tuple(
            parameter.name
            for parameter in (resolver.parent_parameter, resolver.root_parameter)
            if parameter is not None
        )
        plan.info_parameter = resolver.info_parameter.name if resolver.info_parameter else None
        if plan.takes_arguments:
            return
        keyed = definition.metadata.get(KEYED_LOAD)
        if isinstance(keyed, KeyedLoad):
            plan.kind = KEYED
            plan.keyed = keyed
        elif (
            plan.passes_self
            and not plan.source_parameters
            and plan.info_parameter is None
            and not inspect.iscoroutinefunction(plan.function)
        ):
            plan.kind = METHOD
            plan.read = plan.function


def condition_key(plan: OperationPlan, conditions: dict[str, Any]) -> tuple[bool, ...]:
    if not plan.condition_variables:
        return ()
    return tuple(bool(conditions.get(name)) for name in plan.condition_variables)


def _included(node: Any, conditions: dict[str, Any]) -> bool:
    for directive in node.directives or ():
        name = directive.name.value
        if name not in ("skip", "include"):
            continue
        value = _condition(directive.arguments, conditions)
        if value is None:
            continue
        if (name == "skip") is value:
            return False
    return True


def _condition(arguments: Any, conditions: dict[str, Any]) -> bool | None:
    for argument in arguments or ():
        if argument.name.value != "if":
            continue
        value = argument.value
        if isinstance(value, BooleanValueNode):
            return value.value
        if isinstance(value, VariableNode):
            found = conditions.get(value.name.value)
            return None if found is None else bool(found)
    return None


def _has_variable(value: ValueNode) -> bool:
    if isinstance(value, VariableNode):
        return True
    if isinstance(value, ListValueNode):
        return any(_has_variable(item) for item in value.values)
    if isinstance(value, ObjectValueNode):
        return any(_has_variable(item.value) for item in value.fields)
    return False


def _is_non_null(type_: Any) -> bool:
    return isinstance(type_, GraphQLNonNull)


class _Scan:
    """What in an operation decides a fallback, and which variables decide conditions."""

    def __init__(self, fragments: dict[str, FragmentDefinitionNode]) -> None:
        self._fragments = fragments
        self._seen: set[str] = set()
        self.introspection = False
        self.incremental = False
        self.condition_variables: set[str] = set()

    def selection_set(self, selection_set: SelectionSetNode) -> None:
        for selection in selection_set.selections:
            for directive in selection.directives or ():
                name = directive.name.value
                if name in _INCREMENTAL_DIRECTIVES:
                    self.incremental = True
                elif name in ("skip", "include"):
                    for argument in directive.arguments or ():
                        if isinstance(argument.value, VariableNode):
                            self.condition_variables.add(argument.value.name.value)
            if isinstance(selection, FieldNode):
                if selection.name.value in _INTROSPECTION_FIELDS:
                    self.introspection = True
                if selection.selection_set is not None:
                    self.selection_set(selection.selection_set)
            elif isinstance(selection, InlineFragmentNode):
                self.selection_set(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self._fragments.get(name)
                if name not in self._seen and fragment is not None:
                    self._seen.add(name)
                    self.selection_set(fragment.selection_set)

"""Operation cost: a plan per document and operation, evaluated with the request's variables.

Cost needs the schema and, when list sizes come from variables, the request: its plan is
built once per document and operation (kept on its analysis) and evaluated per request only
when a variable can change it. Beyond ``max_cost`` the request is QUERY_TOO_COMPLEX
(``limit: cost``). Introspection is left out, as from depth (limits.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLArgument,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValueNode,
    VariableNode,
    get_named_type,
    is_composite_type,
)
from graphql.pyutils import Undefined

from dataintel.directives.cost import Cost
from dataintel.directives.lookup import cost_on
from dataintel.gateway.limits import too_complex
from dataintel.gateway.request import DocumentRejected
from dataintel.page_size import DEFAULT_PAGE
from dataintel.settings import LimitsSettings

LIST_SIZE_ARGUMENTS = ("first", "limit")
"""Arguments that say how many items a field lists, when @cost names none."""
CONNECTION_SIZE_ARGUMENTS = ("first", "last")
"""A connection lists up to the larger of these; DEFAULT_PAGE items when neither is given."""


@dataclass(frozen=True, slots=True)
class ListSize:
    """How many items a field lists: fixed, or read from a variable at request time."""

    fixed: int
    variable: str | None = None
    path: tuple[str, ...] = ()
    """Keys into the variable's value (an input object), when the size is inside it."""
    others: tuple[ListSize, ...] = ()
    """Further sizes of which the largest counts: a connection's `first` and `last`."""

    @property
    def varies(self) -> bool:
        """Whether a request's variables may change it."""
        return self.variable is not None or any(other.varies for other in self.others)

    def value(self, variables: Mapping[str, Any] | None) -> int:
        """The size for these request variables."""
        own = self.fixed
        if self.variable is not None and variables is not None and self.variable in variables:
            found = _count(_dig(variables[self.variable], self.path))
            own = self.fixed if found is None else found
        return max([own, *(other.value(variables) for other in self.others)])


ONE = ListSize(1)


@dataclass(frozen=True, slots=True, eq=False)
class CostNode:
    """A field of the operation: its weight, and its selection's cost times its list size."""

    weight: int
    size: ListSize
    children: tuple[CostNode, ...]


@dataclass(frozen=True, slots=True)
class CostPlan:
    """An operation's cost: a number, or a tree to evaluate with the request's variables."""

    document: DocumentNode
    roots: tuple[CostNode, ...]
    fixed: int | None

    def cost(self, variables: Mapping[str, Any] | None) -> int:
        """The operation's cost for these variables."""
        if self.fixed is not None:
            return self.fixed
        return _evaluate(self.roots, variables, {})


def _evaluate(
    nodes: Sequence[CostNode], variables: Mapping[str, Any] | None, memo: dict[int, int]
) -> int:
    total = 0
    for node in nodes:
        # A fragment's nodes are shared wherever it is spread: each is evaluated once.
        cost = memo.get(id(node))
        if cost is None:
            inner = _evaluate(node.children, variables, memo) if node.children else 0
            cost = node.weight + node.size.value(variables) * inner
            memo[id(node)] = cost
        total += cost
    return total


def _dig(value: Any, path: Sequence[str]) -> Any:
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _count(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return max(0, value)
    if isinstance(value, list):
        return len(value)
    return None


def _variable_free(nodes: Sequence[CostNode], seen: set[int]) -> bool:
    for node in nodes:
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node.size.varies or not _variable_free(node.children, seen):
            return False
    return True


class _CostWalk:
    """Builds an operation's cost tree; each fragment's subtree is built once and shared."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        operation: OperationDefinitionNode,
    ) -> None:
        self._schema = schema
        self._fragments = fragments
        self._built: dict[str, tuple[CostNode, ...]] = {}
        self._variable_defaults = {
            definition.variable.name.value: definition.default_value
            for definition in operation.variable_definitions or ()
        }

    def selections(
        self, selection_set: SelectionSetNode, parent: GraphQLNamedType
    ) -> tuple[CostNode, ...]:
        nodes: list[CostNode] = []
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                node = self._field(selection, parent)
                if node is not None:
                    nodes.append(node)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                target = self._schema.get_type(condition.name.value) if condition else parent
                nodes.extend(self.selections(selection.selection_set, target or parent))
            elif isinstance(selection, FragmentSpreadNode):
                nodes.extend(self._fragment(selection.name.value, parent))
        return tuple(nodes)

    def _fragment(self, name: str, parent: GraphQLNamedType) -> tuple[CostNode, ...]:
        built = self._built.get(name)
        if built is None:
            fragment = self._fragments[name]
            target = self._schema.get_type(fragment.type_condition.name.value) or parent
            built = self._built[name] = self.selections(fragment.selection_set, target)
        return built

    def _field(self, node: FieldNode, parent: GraphQLNamedType) -> CostNode | None:
        name = node.name.value
        if name.startswith("__") or not isinstance(
            parent, GraphQLObjectType | GraphQLInterfaceType
        ):
            return None
        definition = parent.fields.get(name)
        if definition is None:
            return None
        returned = get_named_type(definition.type)
        hint = cost_on(definition)
        weight = hint.weight if hint is not None and isinstance(hint.weight, int) else None
        if weight is None:
            weight = 1 if is_composite_type(returned) else 0
        children: tuple[CostNode, ...] = ()
        if node.selection_set is not None:
            children = self.selections(node.selection_set, returned)
        return CostNode(weight, self._size(node, definition, hint), children)

    def _size(self, node: FieldNode, definition: GraphQLField, hint: Cost | None) -> ListSize:
        assumed = hint.assumed_size if hint is not None else None
        fallback = assumed if isinstance(assumed, int) else 1
        path_text = hint.list_size_argument if hint is not None else None
        if not isinstance(path_text, str):
            if all(name in definition.args for name in CONNECTION_SIZE_ARGUMENTS):
                first = self._size_by(node, definition, "first", DEFAULT_PAGE)
                last = self._size_by(node, definition, "last", 0)
                return ListSize(first.fixed, first.variable, first.path, (last,))
            path_text = next((arg for arg in LIST_SIZE_ARGUMENTS if arg in definition.args), None)
        if path_text is None:
            return ListSize(fallback)
        return self._size_by(node, definition, path_text, fallback)

    def _size_by(
        self, node: FieldNode, definition: GraphQLField, path_text: str, fallback: int
    ) -> ListSize:
        name, *rest = path_text.split(".")
        argument = definition.args.get(name)
        if argument is None:
            return ListSize(fallback)
        default = _argument_default(argument, rest)
        fixed = default if default is not None else fallback
        arguments = node.arguments or ()
        value = next((item.value for item in arguments if item.name.value == name), None)
        return self._size_of(value, rest, fixed)

    def _size_of(self, value: ValueNode | None, path: Sequence[str], fixed: int) -> ListSize:
        for position, key in enumerate(path):
            if isinstance(value, VariableNode):
                return self._variable(value.name.value, tuple(path[position:]), fixed)
            if not isinstance(value, ObjectValueNode):
                return ListSize(fixed)
            value = next((item.value for item in value.fields if item.name.value == key), None)
        if isinstance(value, VariableNode):
            return self._variable(value.name.value, (), fixed)
        if isinstance(value, IntValueNode):
            return ListSize(max(0, int(value.value)))
        if isinstance(value, ListValueNode):
            return ListSize(len(value.values))
        return ListSize(fixed)

    def _variable(self, name: str, path: tuple[str, ...], fixed: int) -> ListSize:
        default = self._variable_defaults.get(name)
        if default is not None:
            fixed = self._size_of(default, path, fixed).fixed
        return ListSize(fixed, name, path)


def _argument_default(argument: GraphQLArgument, path: Sequence[str]) -> int | None:
    value: Any = argument.default_value
    named: Any = get_named_type(argument.type)
    for key in path:
        if isinstance(value, dict) and key in value:
            value = value[key]
            continue
        if not isinstance(named, GraphQLInputObjectType) or key not in named.fields:
            return None
        field = named.fields[key]
        value, named = field.default_value, get_named_type(field.type)
    return _count(None if value is Undefined else value)


def cost_plan(
    schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode
) -> CostPlan:
    """The cost of one operation of a validated document, fixed when no variable changes it."""
    fragments = {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    root = schema.get_root_type(operation.operation)
    if root is None:
        return CostPlan(document, (), 0)
    roots = _CostWalk(schema, fragments, operation).selections(operation.selection_set, root)
    fixed = _evaluate(roots, None, {}) if _variable_free(roots, set()) else None
    return CostPlan(document, roots, fixed)


class OperationCost:
    """Checks each request's operation cost against ``max_cost``; the plan comes from the
    operation's analysis (built once per document and operation)."""

    def __init__(self, limits: LimitsSettings) -> None:
        self._max_cost = limits.max_cost

    def check(self, plan: CostPlan, variables: Mapping[str, Any] | None) -> int:
        """The operation's cost; raises DocumentRejected (QUERY_TOO_COMPLEX) beyond max_cost."""
        cost = plan.cost(variables)
        if cost > self._max_cost:
            raise DocumentRejected([too_complex("cost", cost, self._max_cost, "operation's cost")])
        return cost

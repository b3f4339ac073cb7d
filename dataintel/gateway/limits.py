"""Operation limits: tokens, depth, aliases, fields and root fields, and cost, before execution.

The structural limits need no schema and are checked on the parsed document before it is
validated: validation is the expensive step (OverlappingFieldsCanBeMerged is quadratic in
repeated fields), so a hostile document is refused before it costs anything. They hold for
every operation of the document. Cost needs the schema and, when list sizes come from
variables, the request: its plan is built once per document and operation, and evaluated
per request only when a variable can change it.

A violation is QUERY_TOO_COMPLEX (400) with ``limit``, ``measured`` and ``allowed`` in its
extensions. Introspection (``__schema``, ``__type``) is left out of depth and cost: the
validation rule MaxIntrospectionDepthRule bounds it already.
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
    GraphQLError,
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
    Source,
    TokenKind,
    ValueNode,
    VariableNode,
    get_named_type,
    is_composite_type,
)
from graphql.language import DirectiveNode, Lexer
from graphql.language.parser import Parser
from graphql.pyutils import Undefined

from dataintel.directives.cost import Cost
from dataintel.directives.lookup import cost_on
from dataintel.errors import QueryTooComplexError
from dataintel.gateway.request import DocumentRejected
from dataintel.services.pagination import DEFAULT_PAGE
from dataintel.settings import Settings

INTROSPECTION_FIELDS = frozenset({"__schema", "__type"})
LIST_SIZE_ARGUMENTS = ("first", "limit")
"""Arguments that say how many items a field lists, when @cost names none."""
CONNECTION_SIZE_ARGUMENTS = ("first", "last")
"""A connection lists up to the larger of these; DEFAULT_PAGE items when neither is given."""


def too_complex(limit: str, measured: int, allowed: int, what: str) -> QueryTooComplexError:
    """The error of one exceeded limit, with what was measured and what is allowed."""
    return QueryTooComplexError(
        f"The {what} is {measured}, more than the {allowed} allowed.",
        details={"limit": limit, "measured": measured, "allowed": allowed},
    )


@dataclass(frozen=True, slots=True)
class DocumentLimits:
    """The limits checked on the parsed document, before validation."""

    max_tokens: int = 5_000
    max_depth: int = 12
    max_aliases: int = 30
    max_fields: int = 250
    max_root_fields: int = 20
    max_directives: int = 50

    @classmethod
    def from_settings(cls, settings: Settings) -> DocumentLimits:
        """The limits the settings configure."""
        return cls(
            max_tokens=settings.max_tokens,
            max_depth=settings.max_depth,
            max_aliases=settings.max_aliases,
            max_fields=settings.max_fields,
            max_root_fields=settings.max_root_fields,
            max_directives=settings.max_directives,
        )


def parse_document(query: str, limits: DocumentLimits) -> DocumentNode:
    """Parses within the token limit and checks the structural limits; DocumentRejected if not."""
    parser = _CountingParser(Source(query), limits)
    try:
        document = _parse(parser)
    except _LimitReached as reached:
        raise DocumentRejected([_parser_limit(reached.limit, query, limits)]) from None
    except GraphQLError as error:
        raise DocumentRejected([error]) from None
    errors = check_structure(document, limits)
    if errors:
        raise DocumentRejected(errors)
    return document


class _LimitReached(Exception):
    """Raised by the parser at the first token, directive or nesting level past a limit."""

    def __init__(self, limit: str) -> None:
        super().__init__(limit)
        self.limit = limit


class _CountingParser(Parser):
    """graphql-core's parser, stopping at the first token or directive past its limit.

    Counting here, instead of reading graphql-core's error messages, keeps the decision on
    our own numbers. A document such as ``{ __typename @a@a@a… }`` is cheap in tokens and
    expensive after them (every directive is validated, and each yields errors); stopping
    while parsing refuses it before it costs anything. The query text's length is bounded
    before parsing, which also bounds the comments the lexer skips.
    """

    def __init__(self, source: Source, limits: DocumentLimits) -> None:
        super().__init__(source)
        self._token_limit = limits.max_tokens
        self._directives_left = limits.max_directives

    def advance_lexer(self) -> None:
        super().advance_lexer()
        if self.token_count > self._token_limit:
            raise _LimitReached("tokens")

    def parse_directive(self, is_const: bool) -> DirectiveNode:
        if self._directives_left == 0:
            raise _LimitReached("directives")
        self._directives_left -= 1
        return super().parse_directive(is_const)


def _parse(parser: Parser) -> DocumentNode:
    # Nesting past the parser's bound (or Python's) ends in RecursionError; raised outside
    # the handler, so the recursion's frames are not kept alive by the new exception.
    try:
        return parser.parse_document()
    except RecursionError:
        pass
    raise _LimitReached("depth")


def _parser_limit(limit: str, query: str, limits: DocumentLimits) -> QueryTooComplexError:
    """The error of a limit the parser stopped at, measured over the whole text."""
    if limit == "tokens":
        return too_complex(limit, _count_tokens(query), limits.max_tokens, "document's token count")
    if limit == "directives":
        measured = _count_directives(query)
        return too_complex(limit, measured, limits.max_directives, "document's directive count")
    return too_complex(limit, _brace_depth(query), limits.max_depth, "document's depth")


@dataclass(frozen=True, slots=True)
class Structure:
    """What the structural limits measure, as the largest over a document's operations."""

    depth: int = 0
    aliases: int = 0
    fields: int = 0
    root_fields: int = 0


def measure_structure(document: DocumentNode) -> Structure:
    """Depth, aliases, fields and root fields of the document's largest operations."""
    fragments = {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    measured = Structure()
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            walk = _StructureWalk(fragments)
            depth = walk.depth(definition.selection_set, counted=True)
            measured = Structure(
                max(measured.depth, depth),
                max(measured.aliases, walk.aliases),
                max(measured.fields, walk.fields),
                max(measured.root_fields, _root_fields(definition.selection_set, fragments)),
            )
    return measured


def check_structure(document: DocumentNode, limits: DocumentLimits) -> list[QueryTooComplexError]:
    """One error per structural limit the document exceeds."""
    measured = measure_structure(document)
    checks = (
        ("depth", measured.depth, limits.max_depth, "operation's depth"),
        ("aliases", measured.aliases, limits.max_aliases, "operation's alias count"),
        ("fields", measured.fields, limits.max_fields, "operation's field count"),
        (
            "rootFields",
            measured.root_fields,
            limits.max_root_fields,
            "operation's root field count",
        ),
    )
    return [
        too_complex(name, value, allowed, what)
        for name, value, allowed, what in checks
        if value > allowed
    ]


class _StructureWalk:
    """Depth, aliases and fields of one operation; each fragment's fields are counted once."""

    def __init__(self, fragments: Mapping[str, FragmentDefinitionNode]) -> None:
        self._fragments = fragments
        self._depths: dict[tuple[str, bool], int] = {}
        self._tallied: set[str] = set()
        self._walking: set[str] = set()
        self.aliases = 0
        self.fields = 0

    def depth(self, selection_set: SelectionSetNode, *, counted: bool, tally: bool = True) -> int:
        deepest = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                if tally:
                    self.fields += 1
                    self.aliases += selection.alias is not None
                # Inside introspection, aliases and fields still count; depth does not.
                inner_counted = counted and selection.name.value not in INTROSPECTION_FIELDS
                inner = 0
                if selection.selection_set is not None:
                    inner = self.depth(selection.selection_set, counted=inner_counted, tally=tally)
                if inner_counted:
                    deepest = max(deepest, 1 + inner)
            elif isinstance(selection, InlineFragmentNode):
                inline = self.depth(selection.selection_set, counted=counted, tally=tally)
                deepest = max(deepest, inline)
            elif isinstance(selection, FragmentSpreadNode):
                deepest = max(deepest, self._fragment(selection.name.value, counted))
        return deepest

    def _fragment(self, name: str, counted: bool) -> int:
        fragment = self._fragments.get(name)
        # Unknown and cyclic spreads are validation's to report; here they measure nothing.
        if fragment is None or name in self._walking:
            return 0
        known = self._depths.get((name, counted))
        if known is not None:
            return known
        tally = name not in self._tallied
        self._tallied.add(name)
        self._walking.add(name)
        depth = self.depth(fragment.selection_set, counted=counted, tally=tally)
        self._walking.discard(name)
        self._depths[(name, counted)] = depth
        return depth


def _root_fields(
    selection_set: SelectionSetNode, fragments: Mapping[str, FragmentDefinitionNode]
) -> int:
    count = 0
    pending = [selection_set]
    spread: set[str] = set()
    while pending:
        for selection in pending.pop().selections:
            if isinstance(selection, FieldNode):
                count += selection.name.value != "__typename"
            elif isinstance(selection, InlineFragmentNode):
                pending.append(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name not in spread and name in fragments:
                    spread.add(name)
                    pending.append(fragments[name].selection_set)
    return count


def _count_tokens(query: str) -> int:
    # As the parser counts them: every token, comments included (the lexer chains them).
    lexer = Lexer(Source(query))
    first = lexer.token
    try:
        while lexer.advance().kind != TokenKind.EOF:
            pass
    except GraphQLError:
        pass
    count = 0
    token = first.next
    while token is not None and token.kind != TokenKind.EOF:
        count += 1
        token = token.next
    return count


def _count_directives(query: str) -> int:
    lexer = Lexer(Source(query))
    count = 0
    try:
        while (token := lexer.advance()).kind != TokenKind.EOF:
            count += token.kind == TokenKind.AT
    except GraphQLError:
        pass
    return count


def _brace_depth(query: str) -> int:
    lexer = Lexer(Source(query))
    depth = deepest = 0
    try:
        while (token := lexer.advance()).kind != TokenKind.EOF:
            if token.kind == TokenKind.BRACE_L:
                depth += 1
                deepest = max(deepest, depth)
            elif token.kind == TokenKind.BRACE_R:
                depth -= 1
    except GraphQLError:
        pass
    return deepest


# --- Cost -----------------------------------------------------------------------------------


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

    def __init__(self, settings: Settings) -> None:
        self._max_cost = settings.max_cost

    def check(self, plan: CostPlan, variables: Mapping[str, Any] | None) -> int:
        """The operation's cost; raises DocumentRejected (QUERY_TOO_COMPLEX) beyond max_cost."""
        cost = plan.cost(variables)
        if cost > self._max_cost:
            raise DocumentRejected([too_complex("cost", cost, self._max_cost, "operation's cost")])
        return cost

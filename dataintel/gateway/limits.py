"""Structure limits: tokens, directives, depth, aliases, fields and root fields.

The structural limits need no schema and are checked on the parsed document before it is
validated: validation is the expensive step (OverlappingFieldsCanBeMerged is quadratic in
repeated fields), so a hostile document is refused before it costs anything. They hold for
every operation of the document. Cost, which needs the schema, is in cost.py.

A violation is QUERY_TOO_COMPLEX (400) with ``limit``, ``measured`` and ``allowed`` in its
extensions. Introspection (``__schema``, ``__type``) is left out of depth and cost: the
validation rule MaxIntrospectionDepthRule bounds it already.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    Source,
    TokenKind,
)
from graphql.language import DirectiveNode, Lexer
from graphql.language.parser import Parser

from dataintel.errors import QueryTooComplexError
from dataintel.gateway.request import DocumentRejected
from dataintel.settings import LimitsSettings

INTROSPECTION_FIELDS = frozenset({"__schema", "__type"})


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
    def from_settings(cls, limits: LimitsSettings) -> DocumentLimits:
        """The limits the settings configure."""
        return cls(
            max_tokens=limits.max_tokens,
            max_depth=limits.max_depth,
            max_aliases=limits.max_aliases,
            max_fields=limits.max_fields,
            max_root_fields=limits.max_root_fields,
            max_directives=limits.max_directives,
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

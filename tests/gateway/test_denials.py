"""Field denials name a field by its place in the document text, not by the node object."""

from __future__ import annotations

from graphql import FieldNode, OperationDefinitionNode, parse

from dataintel.context import FieldDenials
from dataintel.errors import ForbiddenError

TEXT = "{ a: orders { id } b: orders { id } }"


def root_fields(text: str) -> list[FieldNode]:
    [operation] = parse(text).definitions
    assert isinstance(operation, OperationDefinitionNode)
    return [node for node in operation.selection_set.selections if isinstance(node, FieldNode)]


def test_a_denial_holds_for_the_same_field_of_another_parse_and_no_other() -> None:
    first_a, first_b = root_fields(TEXT)
    again_a, again_b = root_fields(TEXT)
    denials = FieldDenials()
    assert not denials
    error = ForbiddenError("no", domain="auth")
    denials.deny(first_a, error)
    assert denials.for_node(again_a) is error
    assert again_a in denials
    # The same field name and coordinate elsewhere in the document is another selection.
    assert denials.for_node(again_b) is None
    assert first_b not in denials
    assert len(denials) == 1


def test_the_first_denial_of_a_field_holds() -> None:
    [node, _] = root_fields(TEXT)
    denials = FieldDenials()
    first = ForbiddenError("first", domain="auth")
    denials.deny(node, first)
    denials.deny(node, ForbiddenError("second", domain="auth"))
    assert denials.for_node(node) is first

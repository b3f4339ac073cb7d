"""The load flows' documents are valid against the served schema: a rename breaks this test,
not a load run an hour later."""

from __future__ import annotations

import random

import pytest
from graphql import parse, validate

from dataintel.schema import build_schema
from tests.load import operations

DOCUMENTS = {
    name: value
    for name, value in vars(operations).items()
    if name.isupper()
    and isinstance(value, str)
    and value.lstrip().startswith(("query", "mutation"))
}


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_document_is_valid(name: str) -> None:
    schema = build_schema()._schema
    assert validate(schema, parse(DOCUMENTS[name])) == []


def test_explorations_vary_and_fit_the_catalog() -> None:
    from dataintel.services.analytics import load_catalog

    catalog = load_catalog(None)
    rng = random.Random(7)
    queries = [operations.exploration(rng) for _ in range(50)]
    assert len({str(q) for q in queries}) > 40
    for query in queries:
        members = [*query["measures"], *query["dimensions"]]  # type: ignore[misc]
        for member in members:
            assert member in catalog.measures or member in catalog.dimensions, member

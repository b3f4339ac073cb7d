"""The example queries in README.md run as printed, so the first thing a user copies works."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dataintel.app import create_app
from tests.plugins.app import SettingsFactory, serving

README = Path(__file__).parents[2] / "README.md"
EXAMPLES = re.findall(r"```graphql\n(.*?)```", README.read_text(), re.DOTALL)


def test_the_readme_has_examples() -> None:
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize("query", EXAMPLES, ids=[f"example-{n}" for n in range(len(EXAMPLES))])
async def test_example_runs_without_errors(make_settings: SettingsFactory, query: str) -> None:
    app = create_app(make_settings())
    async with serving(app) as client:
        await app.state.runtime.services.features.materialize()
        response = await client.post("/graphql", json={"query": query})
    body = response.json()
    assert response.status_code == 200, body
    assert "errors" not in body, body["errors"]
    assert all(value is not None for value in body["data"].values())

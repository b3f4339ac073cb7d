"""A user created with the default role keeps what anonymous requests had: signing in never
loses access."""

from __future__ import annotations

from pathlib import Path

from dataintel.app import create_app
from tests.plugins.app import SettingsFactory, serving
from tests.plugins.cli import clean_environment, run_dataintel

PASSWORD = "a long pass phrase here"
LOGIN = """
mutation Login($email: String!, $password: String!) { login(email: $email, password: $password) {
  token } }
"""
ANALYTICS = '{ analytics(query: {measures: ["revenue"]}) { totals { name value } } }'


async def test_a_default_user_keeps_analyst_access_in_development(
    fresh_directory: Path, seeded_sqlite_url: str, make_settings: SettingsFactory
) -> None:
    environment = clean_environment(DATAINTEL_DATABASE_URL=seeded_sqlite_url)
    created = run_dataintel(
        ["users", "create", "--email", "ana@example.com", "--password-stdin"],
        fresh_directory,
        environment,
        stdin=PASSWORD + "\n",
    )
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip().endswith("with roles viewer, analyst")
    async with serving(create_app(make_settings(rate_limit_enabled=False))) as client:
        anonymous = (await client.post("/graphql", json={"query": ANALYTICS})).json()
        assert "errors" not in anonymous
        variables = {"email": "ana@example.com", "password": PASSWORD}
        login = await client.post("/graphql", json={"query": LOGIN, "variables": variables})
        token = login.json()["data"]["login"]["token"]
        signed_in = await client.post(
            "/graphql",
            json={"query": ANALYTICS},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert signed_in.json() == anonymous


def test_production_default_is_viewer(fresh_directory: Path) -> None:
    environment = clean_environment(DATAINTEL_ENVIRONMENT="production")
    created = run_dataintel(
        ["users", "create", "--email", "vic@example.com", "--no-password"],
        fresh_directory,
        environment,
    )
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip().endswith("with roles viewer")


def test_explicit_roles_are_kept(fresh_directory: Path) -> None:
    created = run_dataintel(
        ["users", "create", "--email", "adm@example.com", "--no-password", "--role", "admin"],
        fresh_directory,
        clean_environment(),
    )
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip().endswith("with roles admin")

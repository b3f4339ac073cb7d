"""Preflight: the settings checked as a whole before anything opens or writes the store.

Every problem found becomes one line for a person to act on; the CLI prints it instead of a
traceback and exits non-zero.
"""

from __future__ import annotations

from pydantic import ValidationError

from dataintel.services.analytics import AnalyticsCatalogError
from dataintel.services.analytics import load_catalog as load_analytics_catalog
from dataintel.services.features import FeatureCatalogError
from dataintel.services.features import load_catalog as load_feature_catalog
from dataintel.services.privacy import PrivacyMapError, load_privacy_map
from dataintel.services.privacy.keyed_hash import PrivacyKeyError, privacy_key
from dataintel.services.tokens import SigningSecretMissingError, signing_secret
from dataintel.settings import Settings
from dataintel.store.engine import store_url

UNSAFE_OVERRIDE = "DATAINTEL_ALLOW_UNSAFE_PRODUCTION=true"


class ConfigurationError(Exception):
    """Settings the gateway cannot or must not start with; the message is one line."""


def check_settings(settings: Settings) -> None:
    """Raises ConfigurationError naming every problem of the settings; touches no store."""
    problems = [
        *_store_problems(settings),
        *_secret_problems(settings),
        *_privacy_key_problems(settings),
        *_catalog_problems(settings),
        *_production_problems(settings),
    ]
    if problems:
        raise ConfigurationError("; ".join(problems))


def describe_validation_error(error: ValidationError) -> str:
    """A settings validation error as one line naming each variable and what is wrong."""
    parts = []
    for problem in error.errors():
        name = "_".join(str(part) for part in problem["loc"]).upper()
        given = problem.get("input")
        shown = f" (got {given!r})" if isinstance(given, str | int | float) else ""
        parts.append(f"DATAINTEL_{name}: {problem['msg']}{shown}")
    return "; ".join(parts)


def _store_problems(settings: Settings) -> list[str]:
    try:
        store_url(settings.store.database_url)
    except ValueError as error:
        return [str(error)]
    return []


def _secret_problems(settings: Settings) -> list[str]:
    if settings.auth.jwt_secret is None and not settings.production:
        # Development makes a random per-process secret; nothing to check.
        return []
    try:
        signing_secret(settings.auth, production=settings.production)
    except (ValueError, SigningSecretMissingError) as error:
        return [str(error)]
    return []


def _privacy_key_problems(settings: Settings) -> list[str]:
    if settings.privacy.hmac_key is None:
        # Derived from the JWT secret (whose absence in production is named above).
        return []
    try:
        privacy_key(settings.privacy, settings.auth, production=settings.production)
    except PrivacyKeyError as error:
        return [str(error)]
    return []


def _catalog_problems(settings: Settings) -> list[str]:
    problems = []
    try:
        load_feature_catalog(settings.catalogs.feature_views_path)
    except FeatureCatalogError as error:
        problems.append(f"feature views: {_one_line(str(error))}")
    try:
        load_analytics_catalog(settings.analytics.catalog_path)
    except AnalyticsCatalogError as error:
        problems.append(f"analytics catalog: {_one_line(str(error))}")
    problems.extend(_published_operation_problems(settings))
    try:
        load_privacy_map(settings.privacy.map_path)
    except PrivacyMapError as error:
        problems.append(f"privacy map: {_one_line(str(error))}")
    return problems


def _published_operation_problems(settings: Settings) -> list[str]:
    """The operator's REST operations file, validated against the schema (docs/rest.md)."""
    if not settings.http.rest_enabled or settings.http.rest_operations_path is None:
        return []
    from dataintel.gateway.published_operations import (
        PublishedOperationError,
        load_published_operations,
    )
    from dataintel.schema import build_graphql_schema

    try:
        load_published_operations(build_graphql_schema(), settings.http.rest_operations_path)
    except PublishedOperationError as error:
        return [f"published operations: {_one_line(str(error))}"]
    return []


def _production_problems(settings: Settings) -> list[str]:
    if not settings.production or settings.server.allow_unsafe_production:
        return []
    unsafe = []
    if settings.effective_anonymous_roles:
        roles = ",".join(settings.effective_anonymous_roles)
        unsafe.append(f"anonymous requests hold roles ({roles}): set DATAINTEL_ANONYMOUS_ROLES=[]")
    if settings.graphiql_enabled:
        unsafe.append("GraphiQL is on: unset DATAINTEL_GRAPHIQL")
    if settings.seeds_demo_data:
        unsafe.append("auto-seed would write demo data: unset DATAINTEL_AUTO_SEED")
    if not unsafe:
        return []
    return [
        "unsafe in production: "
        + ", ".join(unsafe)
        + f" (or accept the risk with {UNSAFE_OVERRIDE}; see docs/production.md)"
    ]


def _one_line(text: str) -> str:
    return " ".join(text.split())

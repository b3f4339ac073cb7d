"""The gateway's one settings object: its groups, each read from the environment.

``Settings()`` reads every ``DATAINTEL_`` variable; ``Settings(max_depth=3)`` sets an option
by its name, as its variable would. Every option keeps its flat variable; a component gets
its group (``settings.cache``), never the whole object.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import InitErrorDetails

from dataintel.settings.domains import (
    AnalyticsSettings,
    AuthSettings,
    CatalogSettings,
    ExportSettings,
    JobsSettings,
    PrivacySettings,
)
from dataintel.settings.group import PREFIX, SettingsGroup, deprecated_options, option_name
from dataintel.settings.platform import (
    CacheSettings,
    ObservabilitySettings,
    RedisSettings,
    StoreSettings,
)
from dataintel.settings.serving import (
    GraphQLSettings,
    HttpSettings,
    LimitsSettings,
    RateLimitSettings,
    ServerSettings,
)


@dataclass(frozen=True, slots=True)
class Option:
    """One option: its variable's name without the prefix, and where it lives."""

    name: str
    group: str
    field: str
    deprecated: tuple[str, ...] = ()

    @property
    def variable(self) -> str:
        """The environment variable that sets it."""
        return PREFIX + self.name.upper()

    @property
    def path(self) -> str:
        """Where code reads it: ``group.field``."""
        return f"{self.group}.{self.field}"


class Settings(BaseModel):
    """Every option of the gateway, by group; documented group by group in docs/configuration.md."""

    model_config = ConfigDict(frozen=True)

    server: ServerSettings
    http: HttpSettings
    graphql: GraphQLSettings
    limits: LimitsSettings
    rate_limit: RateLimitSettings
    store: StoreSettings
    redis: RedisSettings
    cache: CacheSettings
    observability: ObservabilitySettings
    auth: AuthSettings
    analytics: AnalyticsSettings
    catalogs: CatalogSettings
    privacy: PrivacySettings
    jobs: JobsSettings
    export: ExportSettings

    def __init__(self, **options: Any) -> None:
        super().__init__(**_build_groups(options))

    @classmethod
    def options(cls) -> Iterator[Option]:
        """Every option, group by group, in the order the groups declare them."""
        for group_name, group in _groups():
            for name, field in group.model_fields.items():
                yield Option(option_name(name, field), group_name, name, deprecated_options(field))

    @property
    def production(self) -> bool:
        """Whether the defaults that are unsafe in production are off."""
        return self.server.production

    @property
    def jobs_use_redis(self) -> bool:
        """Whether jobs go through SAQ on Redis to worker processes."""
        return self.jobs.runs_on_redis(self.redis.url)

    @property
    def seeds_demo_data(self) -> bool:
        """Whether `dataintel serve` seeds an empty store with the demo data."""
        if self.store.auto_seed is not None:
            return self.store.auto_seed
        return not self.production

    @property
    def graphiql_enabled(self) -> bool:
        """Whether browsers get the GraphiQL page."""
        if self.http.graphiql is not None:
            return self.http.graphiql
        return not self.production

    @property
    def effective_anonymous_roles(self) -> list[str]:
        """The roles @auth grants anonymous requests."""
        if self.auth.anonymous_roles is not None:
            return self.auth.anonymous_roles
        return [] if self.production else ["viewer", "analyst"]


def deprecated_variables(environ: Mapping[str, str]) -> list[tuple[str, str]]:
    """(deprecated variable, its replacement) for each deprecated variable that is set."""
    found = []
    names = {name.upper() for name in environ}
    for option in Settings.options():
        for old in option.deprecated:
            if PREFIX + old.upper() in names:
                found.append((PREFIX + old.upper(), option.variable))
    return found


def _groups() -> Iterator[tuple[str, type[SettingsGroup]]]:
    for name, field in Settings.model_fields.items():
        group = field.annotation
        assert isinstance(group, type)
        assert issubclass(group, SettingsGroup)
        yield name, group


def _build_groups(options: Mapping[str, Any]) -> dict[str, SettingsGroup]:
    """Each group from the environment and the options given for it, errors all together.

    An error names the option's flat name, as a single settings object's error did, so it
    reads as the variable to fix.
    """
    by_name = {option.name: option for option in Settings.options()}
    given: dict[str, dict[str, Any]] = {}
    errors: list[InitErrorDetails] = []
    for name, value in options.items():
        option = by_name.get(name)
        if option is None:
            errors.append({"type": "extra_forbidden", "loc": (name,), "input": value})
            continue
        given.setdefault(option.group, {})[option.field] = value
    groups: dict[str, SettingsGroup] = {}
    for group_name, group in _groups():
        try:
            groups[group_name] = group(**given.get(group_name, {}))
        except ValidationError as error:
            errors.extend(_named_by_option(error, group))
    if errors:
        raise ValidationError.from_exception_data(Settings.__name__, errors)
    return groups


def _named_by_option(error: ValidationError, group: type[SettingsGroup]) -> list[InitErrorDetails]:
    # A field read through an alias reports the variable it was read from, or its own name.
    names: dict[str, str] = {}
    for name, field in group.model_fields.items():
        option = option_name(name, field)
        names[name] = option
        names[PREFIX.lower() + option] = option
    details: list[InitErrorDetails] = []
    for problem in error.errors():
        first, *rest = problem["loc"]
        named = names.get(first.lower(), first) if isinstance(first, str) else first
        detail: InitErrorDetails = {
            "type": problem["type"],
            "loc": (named, *rest),
            "input": problem["input"],
        }
        if "ctx" in problem:
            detail["ctx"] = problem["ctx"]
        details.append(detail)
    return details

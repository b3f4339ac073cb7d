"""What every settings group shares: the ``DATAINTEL_`` environment, read without nesting.

Each group is its own ``BaseSettings`` with the root's prefix, so an option keeps its one
flat variable (``DATAINTEL_CACHE_TTL_SECONDS``) however the group names its field
(``cache.ttl_seconds``); pydantic-settings' nested models would need ``DATAINTEL_CACHE__TTL``.
"""

from __future__ import annotations

from pydantic import AliasChoices
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict

PREFIX = "DATAINTEL_"


class SettingsGroup(BaseSettings):
    """A group of options, each read from ``DATAINTEL_<OPTION>``."""

    model_config = SettingsConfigDict(
        env_prefix=PREFIX, env_file=None, extra="ignore", populate_by_name=True
    )


def env(option: str, *deprecated: str) -> AliasChoices:
    """Reads a field whose name drops its group's prefix from its option's variable.

    Deprecated options come after, so the current name wins when both are set.
    """
    return AliasChoices(*(PREFIX + name.upper() for name in (option, *deprecated)))


def option_name(field_name: str, field: FieldInfo) -> str:
    """The option a field is set by: its variable without ``DATAINTEL_``, in lower case."""
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        first = alias.choices[0]
        if isinstance(first, str) and first.upper().startswith(PREFIX):
            return first[len(PREFIX) :].lower()
    return field_name


def deprecated_options(field: FieldInfo) -> tuple[str, ...]:
    """The options a field is still read from for one release, besides its own."""
    alias = field.validation_alias
    if not isinstance(alias, AliasChoices) or option_name("", field) == "":
        return ()
    names = [c for c in alias.choices[1:] if isinstance(c, str) and c.upper().startswith(PREFIX)]
    return tuple(name[len(PREFIX) :].lower() for name in names)

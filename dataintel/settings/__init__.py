"""The gateway's settings, in groups, read from the environment (prefix ``DATAINTEL_``)."""

from dataintel.settings.domains import (
    AnalyticsSettings,
    AuthSettings,
    CatalogSettings,
    ExportSettings,
    JobsSettings,
    JwtAlgorithm,
    PrivacySettings,
)
from dataintel.settings.group import SettingsGroup
from dataintel.settings.platform import (
    DEFAULT_DATABASE_URL,
    CacheSettings,
    ObservabilitySettings,
    RedisSettings,
    StoreSettings,
)
from dataintel.settings.root import Option, Settings, deprecated_variables
from dataintel.settings.serving import (
    GraphQLSettings,
    HttpSettings,
    LimitsSettings,
    RateLimitSettings,
    ServerSettings,
)

__all__ = [
    "DEFAULT_DATABASE_URL",
    "AnalyticsSettings",
    "AuthSettings",
    "CacheSettings",
    "CatalogSettings",
    "ExportSettings",
    "GraphQLSettings",
    "HttpSettings",
    "JobsSettings",
    "JwtAlgorithm",
    "LimitsSettings",
    "ObservabilitySettings",
    "Option",
    "PrivacySettings",
    "RateLimitSettings",
    "RedisSettings",
    "ServerSettings",
    "Settings",
    "SettingsGroup",
    "StoreSettings",
    "deprecated_variables",
]

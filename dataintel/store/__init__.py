"""The SQL store: tables, engine, migrations and the demo seed (SQLite or PostgreSQL)."""

from dataintel.store.engine import create_engine
from dataintel.store.migrate import current_revision, upgrade
from dataintel.store.seed import SeedSummary, is_seeded, seed
from dataintel.store.tables import metadata
from dataintel.store.types import UTCDateTime

__all__ = [
    "SeedSummary",
    "UTCDateTime",
    "create_engine",
    "current_revision",
    "is_seeded",
    "metadata",
    "seed",
    "upgrade",
]

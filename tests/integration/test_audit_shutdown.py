"""A graceful shutdown writes out the audit writer's queue before the store closes."""

from __future__ import annotations

import sqlalchemy as sa

from dataintel.app import create_app
from dataintel.services.audit import DENIED, AuditEvent, SqlAuditService
from dataintel.store import tables
from dataintel.store.engine import create_engine
from tests.plugins.app import SettingsFactory, serving
from tests.plugins.faults import runtime_of

QUEUED = 2000


async def test_entries_still_queued_at_shutdown_are_written(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(audit_batch_size=100)
    app = create_app(settings)
    async with serving(app):
        audit = runtime_of(app).services.audit
        # Submitted without yielding: all of them are still queued when the lifespan ends.
        for number in range(QUEUED):
            event = AuditEvent("client:test", "policy.denied", f"field:Query.f{number}", DENIED)
            assert audit.submit(event)
    engine = create_engine(settings.store)
    try:
        async with engine.connect() as connection:
            written = await connection.scalar(
                sa.select(sa.func.count())
                .select_from(tables.audit_log)
                .where(tables.audit_log.c.actor == "client:test")
            )
        assert written == QUEUED
        report = await SqlAuditService(engine).verify()
        assert report.intact
    finally:
        await engine.dispose()

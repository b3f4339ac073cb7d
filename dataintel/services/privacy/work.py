"""The work of a subject request, as job functions: ``run(context, params) -> result``.

A run that raises leaves the request IN_PROGRESS: the job system retries it (both runs are
safe to repeat) and, once it gives up, the kind's cleanup marks the request FAILED.

``run_access`` builds and stores the access package; ``run_erasure`` erases dataset by
dataset, records the subject as suppressed from exports, and invalidates every cached
entry that could still show the subject (entity entries, pages, responses, online features)
on every replica. Both move the request IN_PROGRESS, then to its final state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dataintel.cache import TwoLevelCache, dataset_tag, entity_tag, features_tag
from dataintel.cache.store_tags import bump_tags
from dataintel.errors import BadUserInputError, NotFoundError
from dataintel.observability.logging import get_logger
from dataintel.services.artifacts import ArtifactStorage, StoredPart
from dataintel.services.jobs import JobFailure
from dataintel.services.privacy.access import build_package, subject_rows
from dataintel.services.privacy.erasure import DatasetErasure, erase_dataset
from dataintel.services.privacy.privacy_map import PrivacyMap
from dataintel.services.privacy.requests import (
    RequestStatus,
    SubjectRequestRecord,
    SubjectRequestService,
    counts_of,
)
from dataintel.store import tables
from dataintel.store.guarded import StoreEngine

PACKAGE_MEDIA_TYPE = "application/zip"
PACKAGE_PART = 1
"""The access package is the job's one file."""

_log = get_logger("dataintel.privacy")


class WorkContext(Protocol):
    """What a job function is given about its run (the job system's JobContext)."""

    @property
    def job_id(self) -> str: ...

    @property
    def requested_by(self) -> str: ...

    async def report_progress(self, fraction: float) -> None: ...

    def cancelled(self) -> bool: ...

    def raise_if_cancelled(self) -> None: ...


class CacheInvalidator(Protocol):
    """Drops cached entries by tag on every replica; False when some could not be told."""

    async def invalidate(self, tags: Sequence[str]) -> bool: ...


class ReplicaInvalidator:
    """Invalidates through this process's cache (and Redis), or the store's tag versions.

    With Redis, a bump reaches every replica's entries at their next read. Without it,
    other processes poll the store's tag versions, so the bump is written there too.
    """

    def __init__(self, engine: AsyncEngine, cache: TwoLevelCache | None) -> None:
        self._engine = engine
        self._cache = cache

    async def invalidate(self, tags: Sequence[str]) -> bool:
        told = True
        if self._cache is not None:
            told = await self._cache.invalidate(tags)
        if self._cache is None or self._cache.shared is None:
            await bump_tags(self._engine, tags)
        return told


def subject_tags(privacy_map: PrivacyMap, customer_id: int) -> list[str]:
    """Every cache tag under which an entry could show the subject."""
    table_names = dict.fromkeys(dataset.table.name for dataset in privacy_map.datasets)
    return [
        entity_tag("customer", customer_id),
        features_tag("customer"),
        *(dataset_tag(name) for name in table_names),
    ]


@dataclass(frozen=True, slots=True)
class PrivacyWork:
    """The job functions of subject requests and what they work with."""

    engine: StoreEngine
    requests: SubjectRequestService
    privacy_map: PrivacyMap
    key: bytes
    invalidator: CacheInvalidator
    storage: ArtifactStorage

    async def run_access(
        self, context: WorkContext, params: Mapping[str, Any]
    ) -> Mapping[str, Any]:
        """Builds the subject's access package, stores it, completes the request."""
        record = await self._start(context, params, "ACCESS")
        contents = []
        datasets = self.privacy_map.datasets
        for done, dataset in enumerate(datasets, start=1):
            context.raise_if_cancelled()
            rows = await subject_rows(self.engine, self.privacy_map, dataset, record.customer_id)
            contents.append((dataset, rows))
            await context.report_progress(done / (len(datasets) + 1))
        package = build_package(record.id, record.customer_id, datetime.now(UTC), contents)
        name = f"subject-access-{record.id}.zip"
        part = await asyncio.to_thread(self._store_package, context.job_id, name, package.content)
        outcomes = [
            {"dataset": item.dataset, "table": item.table, "rows": item.rows, "sha256": item.sha256}
            for item in package.datasets
        ]
        result = {
            "type": "ACCESS",
            "subjectRequestId": record.id,
            "package": {
                "file": name,
                "bytes": part.bytes,
                "sha256": part.sha256,
                "part": part.number,
            },
            "parts": [part.to_json()],
            "datasets": outcomes,
        }
        counts = {"datasets": len(outcomes), **counts_of(outcomes)}
        await self.requests.finish(record.id, context.requested_by, "COMPLETED", result, counts)
        return result

    def _store_package(self, job_id: str, name: str, content: bytes) -> StoredPart:
        with self.storage.write_part(job_id, PACKAGE_PART) as sink:
            sink.write(content)
        return StoredPart(PACKAGE_PART, name, PACKAGE_MEDIA_TYPE, sink.written, sink.hexdigest())

    async def run_erasure(
        self, context: WorkContext, params: Mapping[str, Any]
    ) -> Mapping[str, Any]:
        """Erases the subject's data per the map, suppresses it from exports, invalidates."""
        record = await self._start(context, params, "ERASURE")
        outcomes: list[DatasetErasure] = []
        cancelled = False
        datasets = self.privacy_map.datasets
        for done, dataset in enumerate(datasets, start=1):
            if context.cancelled():
                # Each dataset done so far is committed; the rest are reported as not done.
                cancelled = True
                break
            try:
                outcome = await erase_dataset(
                    self.engine, self.privacy_map, dataset, record.customer_id, self.key
                )
            except sa.exc.SQLAlchemyError as error:
                # The statement's parameters may hold personal data: only the kind of error.
                _log.warning(
                    "erasure of a dataset failed",
                    subject_request=record.id,
                    dataset=dataset.name,
                    error=type(error).__name__,
                )
                outcome = DatasetErasure(
                    dataset.name,
                    dataset.table.name,
                    dataset.erasure,
                    error=f"the store refused the change ({type(error).__name__})",
                )
            outcomes.append(outcome)
            await context.report_progress(done / (len(datasets) + 1))
        # Suppressed and invalidated even when some datasets failed: what was erased must
        # not be served from a cache, and exports leave out what failed to be erased.
        await self._suppress(record)
        told = await self.invalidator.invalidate(subject_tags(self.privacy_map, record.customer_id))
        failed = [outcome for outcome in outcomes if outcome.error is not None]
        status: RequestStatus = "COMPLETED"
        if cancelled or failed:
            status = "PARTIALLY_COMPLETED" if len(failed) < len(outcomes) else "FAILED"
        plain = [outcome.as_json() for outcome in outcomes]
        result = {
            "type": "ERASURE",
            "subjectRequestId": record.id,
            "datasets": plain,
            "suppressedFromExports": True,
            "cachesInvalidated": told,
            "cancelled": cancelled,
        }
        counts = counts_of(plain)
        counts["failedDatasets"] = len(failed)
        error_text = "cancelled" if cancelled else None
        if failed and error_text is None:
            error_text = f"{len(failed)} datasets could not be erased"
        await self.requests.finish(
            record.id, context.requested_by, status, result, counts, error_text
        )
        return result

    async def _start(
        self, context: WorkContext, params: Mapping[str, Any], expected: str
    ) -> SubjectRequestRecord:
        request_id = int(params["subjectRequestId"])
        try:
            record = await self.requests.start(request_id, context.requested_by)
        except (BadUserInputError, NotFoundError) as error:
            # Denied (or gone) between verification and the job's start: nothing to retry.
            raise JobFailure("SUBJECT_REQUEST_NOT_STARTABLE", error.message) from None
        if record.type != expected:
            raise JobFailure(
                "SUBJECT_REQUEST_MISMATCH",
                f"Subject request {request_id} is {record.type}, not {expected}.",
            )
        return record

    async def _suppress(self, record: SubjectRequestRecord) -> None:
        suppressions = tables.export_suppressions
        async with self.engine.begin() as connection:
            exists = await connection.scalar(
                sa.select(suppressions.c.customer_id).where(
                    suppressions.c.customer_id == record.customer_id
                )
            )
            if exists is None:
                await connection.execute(
                    sa.insert(suppressions).values(
                        customer_id=record.customer_id,
                        subject_request_id=record.id,
                        suppressed_at=datetime.now(UTC),
                    )
                )


async def suppressed_customer_ids(engine: StoreEngine) -> frozenset[int]:
    """Every customer whose data was erased: exports leave their rows out."""
    async with engine.connect() as connection:
        rows = (await connection.execute(sa.select(tables.export_suppressions.c.customer_id))).all()
    return frozenset(int(row[0]) for row in rows)

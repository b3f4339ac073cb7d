"""The audit log's one writer: entries queue up and commit in batches, one transaction each.

Appending used to take the log's lock, read its tail, insert and commit once per entry, so
concurrent appends waited on each other's commits. Now an entry joins a bounded queue, and
one writer task takes what has gathered (up to a batch), locks once, chains the batch's
hashes from the tail and commits once. The chain stays one chain: the writer's transactions
take the same lock as ``transaction()`` blocks, so the two never interleave.

A caller that needs its entry durable before answering awaits ``append``: it returns once
the batch holding the entry has committed (and raises if that batch failed), and it waits
for room when the queue is full. ``submit`` is for entries nobody waits for (denials seen
by the gateway): on a full queue it drops the entry and counts the drop, and an entry in a
batch the store refused is counted as dropped too.

The writer runs only while there is something to write; ``flush`` waits until the queue is
empty, which the app's lifespan does before it closes the store, so a graceful shutdown
loses nothing. A crash loses what was still queued: awaited entries whose callers had not
been answered yet, and submitted ones.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dataintel.observability.drops import AUDIT_QUEUE_OVERFLOW, AUDIT_WRITE_FAILED, Drops
from dataintel.observability.logging import get_logger

if TYPE_CHECKING:
    from dataintel.services.audit import AuditEvent, AuditRecord

_log = get_logger("dataintel.audit")

WriteBatch = Callable[[Sequence["AuditEvent"]], Awaitable[Sequence["AuditRecord"]]]


@dataclass(slots=True)
class _Queued:
    event: AuditEvent
    written: asyncio.Future[AuditRecord] | None
    """Resolved when the entry's batch commits; None when nobody waits for it."""


class AuditWriter:
    """Batches appends to the audit log through one writer task (see the module docstring)."""

    def __init__(
        self,
        write_batch: WriteBatch,
        *,
        queue_size: int = 10_000,
        batch_size: int = 500,
        drops: Drops | None = None,
    ) -> None:
        self._write_batch = write_batch
        self._queue: deque[_Queued] = deque()
        self._queue_size = queue_size
        self._batch_size = batch_size
        self._drops = drops or Drops()
        self._task: asyncio.Task[None] | None = None
        self._room = asyncio.Event()
        self._room.set()
        self.batches = 0
        """Transactions committed so far: fewer than entries when appends overlapped."""

    @property
    def queued(self) -> int:
        """Entries waiting for the writer."""
        return len(self._queue)

    async def append(self, event: AuditEvent) -> AuditRecord:
        """Queues an entry and returns it once committed; waits for room when the queue is full."""
        while len(self._queue) >= self._queue_size:
            self._room.clear()
            await self._room.wait()
        written: asyncio.Future[AuditRecord] = asyncio.get_running_loop().create_future()
        self._queue.append(_Queued(event, written))
        self._start()
        # A caller that gives up cancels only its wait: the entry stays in its batch.
        return await written

    def submit(self, event: AuditEvent) -> bool:
        """Queues an entry nobody waits for; False (and counted) when the queue is full."""
        if len(self._queue) >= self._queue_size:
            self._drops.count(AUDIT_QUEUE_OVERFLOW)
            _log.warning("audit entry dropped: the queue is full", action=event.action)
            return False
        self._queue.append(_Queued(event, None))
        self._start()
        return True

    async def flush(self) -> None:
        """Waits until every queued entry has been written (or has failed)."""
        while self._task is not None:
            await asyncio.shield(self._task)

    def _start(self) -> None:
        if self._task is None:
            # A context of its own: the writer's log lines and spans belong to no request (a
            # copy of the first caller's would carry that request's id and trace).
            self._task = asyncio.get_running_loop().create_task(
                self._drain(), name="audit-writer", context=contextvars.Context()
            )

    async def _drain(self) -> None:
        try:
            # No await between the emptiness check and the end of the task: an entry queued
            # while a batch was being written is always seen here.
            while self._queue:
                size = min(self._batch_size, len(self._queue))
                batch = [self._queue.popleft() for _ in range(size)]
                self._room.set()
                await self._write(batch)
        finally:
            self._task = None

    async def _write(self, batch: list[_Queued]) -> None:
        try:
            records = await self._write_batch([queued.event for queued in batch])
        except asyncio.CancelledError:
            for queued in batch:
                if queued.written is not None:
                    queued.written.cancel()
            raise
        except Exception as error:
            if len(batch) > 1:
                # One bad entry must not fail the others written with it: each on its own.
                _log.warning(
                    "audit batch not written; writing its entries one by one",
                    entries=len(batch),
                    error=type(error).__name__,
                )
                for queued in batch:
                    await self._write([queued])
                return
            self._failed(batch[0], error)
            return
        self.batches += 1
        for queued, record in zip(batch, records, strict=True):
            if queued.written is not None and not queued.written.done():
                queued.written.set_result(record)

    def _failed(self, queued: _Queued, error: Exception) -> None:
        if queued.written is None:
            self._drops.count(AUDIT_WRITE_FAILED, 1)
        elif not queued.written.done():
            queued.written.set_exception(error)
        _log.warning(
            "audit entry not written",
            action=queued.event.action,
            awaited=queued.written is not None,
            error=type(error).__name__,
        )

"""The probe job kind: runs nothing but time, to check that jobs run end to end.

Its parameters: ``seconds`` to run (reporting progress in ``steps``), and ``failures``,
the number of first attempts that fail (retryable), to see retries work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from dataintel.services.jobs.kinds import JobContext, JobFailure, JobKind

PROBE_KIND = "probe"
_MAX_SECONDS = 3600.0


async def _run(context: JobContext, params: Mapping[str, Any]) -> Mapping[str, Any]:
    seconds = min(max(float(params.get("seconds", 0)), 0.0), _MAX_SECONDS)
    steps = max(int(params.get("steps", 10)), 1)
    if context.attempt <= int(params.get("failures", 0)):
        raise JobFailure(
            "PROBE_FAILURE", f"Attempt {context.attempt} fails on purpose.", retryable=True
        )
    for step in range(1, steps + 1):
        await asyncio.sleep(seconds / steps)
        context.raise_if_cancelled()
        await context.report_progress(step / steps)
    return {"seconds": seconds, "attempt": context.attempt}


def probe_kind(heartbeat_timeout_seconds: float) -> JobKind:
    """The probe kind: three attempts, short backoff, results kept for a day."""
    return JobKind(
        name=PROBE_KIND,
        run=_run,
        timeout_seconds=_MAX_SECONDS + 60,
        max_attempts=3,
        retry_delay_seconds=0.2,
        retry_backoff_max_seconds=5.0,
        result_ttl_seconds=86_400,
        heartbeat_timeout_seconds=heartbeat_timeout_seconds,
    )

"""Tracing and metrics as observers of the request pipeline (gateway/pipeline.py).

They see the stages finish and the outcome; the stages never call them. A new per-request
measurement is one more observer, or one more line in these.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from opentelemetry.trace import Status, StatusCode, get_current_span

from dataintel.observability.metrics import GatewayMetrics
from dataintel.observability.tracing import operation_span

if TYPE_CHECKING:
    from dataintel.gateway.pipeline import PipelineOutcome, PipelineState

_DESCRIBING_STAGES = frozenset({"check_operation", "cost", "response_cache"})
"""The stages after which the operation's span learns something."""


class TracingObserver:
    """One ``graphql.operation`` span per run, named and described as the stages learn."""

    def around(self) -> AbstractContextManager[object]:
        """The operation's span, current for the whole run (loader spans are its children)."""
        return operation_span()

    def stage_finished(self, stage: str, state: PipelineState) -> None:
        """Names the span once the operation is known; adds the cost once it is measured."""
        if stage not in _DESCRIBING_STAGES:
            return
        span = get_current_span()
        if not span.is_recording():
            return
        if stage == "check_operation" and state.prepared is not None:
            name = state.operation_name
            span.update_name(f"{state.operation_type} {name or 'anonymous'}")
            span.set_attributes(
                {
                    "graphql.operation.type": state.operation_type,
                    "graphql.operation.name": name or "",
                    "graphql.document.hash": state.prepared.document_hash,
                }
            )
        elif stage == "cost" and state.cost is not None:
            span.set_attribute("dataintel.cost", state.cost)
        elif stage == "response_cache" and state.cache_key is not None:
            if state.response is not None:
                span.set_attribute("dataintel.response_cache", "hit")
            elif state.cache_generation is not None:
                span.set_attribute("dataintel.response_cache", "miss")

    def finished(self, outcome: PipelineOutcome) -> None:
        """Marks a persisted request, and the span of an operation that failed."""
        span = get_current_span()
        if not span.is_recording():
            return
        span.set_attribute("dataintel.persisted", outcome.persisted)
        if outcome.errors:
            span.set_attribute("dataintel.error_count", len(outcome.errors))
            codes = sorted({str(e.get("extensions", {}).get("code")) for e in outcome.errors})
            span.set_status(Status(StatusCode.ERROR, ",".join(codes)))


class MetricsObserver:
    """Counts each operation, its duration and its errors."""

    outcome_only = True
    """Nothing held open, nothing per stage: a kept request's run calls ``finished`` only."""

    def __init__(self, metrics: GatewayMetrics) -> None:
        self._metrics = metrics
        # GatewayMetrics.operation's bound label, and record_operation: one call less each.
        self._label = metrics.operation_names.label
        self._record = metrics.record_operation

    def around(self) -> AbstractContextManager[object]:
        """Nothing to hold open."""
        return _NOTHING

    def stage_finished(self, stage: str, state: PipelineState) -> None:
        """Nothing per stage (yet): the operation's duration is one histogram."""

    def finished(self, outcome: PipelineOutcome) -> None:
        """One operation answered, labelled by its (bounded) name and type."""
        self._record(
            self._label(outcome.operation_name),
            outcome.operation_type,
            outcome.seconds,
            outcome.errors,
        )


class _Nothing(AbstractContextManager[object]):
    def __exit__(self, *_: object) -> None:
        return None


_NOTHING = _Nothing()

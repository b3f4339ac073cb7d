"""graphql-core's ``execute``, answered from a plan when the plan covers the operation."""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Awaitable
from typing import Any, cast

from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
)
from graphql.execution import Executor
from graphql.execution.values import get_variable_values
from graphql.pyutils import AwaitableOrValue
from opentelemetry.trace import get_current_span

from dataintel.gateway.planned.plan import OperationPlan, Planner, ResolverKinds
from dataintel.gateway.planned.run import PlanRun

PLANNED = "planned"


class PlannedExecution:
    """Executes validated documents from plans; what a plan does not cover runs on graphql-core.

    Plans are kept per document and operation name, as many as the document cache holds. The
    outcome of every call is counted in ``outcomes``: ``planned``, or the fallback's reason
    (``mutation``, ``subscription``, ``introspection``, ``defer_stream``, ``no_operation``).
    """

    def __init__(self, schema: GraphQLSchema, size: int = 1000) -> None:
        self._schema = schema
        self._kinds = ResolverKinds(schema)
        self._planner = Planner(schema, self._kinds)
        self._plans: OrderedDict[tuple[int, str | None], OperationPlan] = OrderedDict()
        self._size = max(size, 1)
        self.outcomes: Counter[str] = Counter()

    @property
    def planner(self) -> Planner:
        """What builds the plans' field lists (for tests and tools that inspect plans)."""
        return self._planner

    def execute_raw(
        self,
        document: DocumentNode,
        operation_name: str | None,
        context: Any,
        raw_variables: dict[str, Any] | None,
        hide_suggestions: bool,
        max_coercion_errors: int,
    ) -> Awaitable[ExecutionResult] | list[GraphQLError] | None:
        """The plan's run, with the variables coerced here; their errors when they do not
        coerce; None when no plan covers the operation (the caller builds graphql-core's
        executor and calls ``execute_coerced``).

        Building graphql-core's executor only to coerce the variables cost more than a
        tenth of a small warm request: the schema check, the walk over the definitions and
        the executor's own state, none of which a plan needs.
        """
        plan = self.plan(document, operation_name)
        if plan is None or plan.fallback is not None:
            return None
        if any(fragment.variable_definitions for fragment in plan.fragments.values()):
            # Fragment variables are checked by graphql-core's executor as it is built.
            return None
        variables = get_variable_values(
            self._schema,
            plan.operation.variable_definitions or (),
            raw_variables or {},
            max_errors=max_coercion_errors,
            hide_suggestions=hide_suggestions,
        )
        if isinstance(variables, list):
            return variables
        self._count(PLANNED)
        return PlanRun(
            self._schema,
            self._planner,
            self._kinds,
            plan,
            context,
            variables,
            hide_suggestions,
        ).run()

    def execute_coerced(
        self,
        executor: Executor[Any],
        document: DocumentNode,
        operation_name: str | None,
        hide_suggestions: bool,
    ) -> AwaitableOrValue[ExecutionResult]:
        """What ``executor.execute_operation()`` answers, from a plan when one covers it.

        The executor was built by the caller, so its variables are coerced already.
        """
        plan = self.plan(document, operation_name)
        reason = "no_operation" if plan is None else plan.fallback
        if plan is None or reason is not None:
            self._count(reason or "unknown")
            # A query or mutation without @defer/@stream: never incremental (GatedExecutor throws).
            return cast("AwaitableOrValue[ExecutionResult]", executor.execute_operation())
        self._count(PLANNED)
        return PlanRun(
            executor.schema,
            self._planner,
            self._kinds,
            plan,
            executor.context_value,
            executor.variable_values,
            hide_suggestions,
        ).run()

    def _count(self, outcome: str) -> None:
        self.outcomes[outcome] += 1
        span = get_current_span()
        if span.is_recording():
            span.set_attribute("dataintel.execution", outcome)

    def plan(self, document: DocumentNode, operation_name: str | None) -> OperationPlan | None:
        """The operation's plan, built on first use; None when the document has no such one."""
        key = (id(document), operation_name)
        plan = self._plans.get(key)
        if plan is not None and plan.document is document:
            self._plans.move_to_end(key)
            return plan
        operation = _operation(document, operation_name)
        if operation is None:
            return None
        plan = self._planner.plan(document, operation)
        self._plans[key] = plan
        if len(self._plans) > self._size:
            self._plans.popitem(last=False)
        return plan


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        return operations[0] if len(operations) == 1 else None
    return next((o for o in operations if o.name and o.name.value == name), None)

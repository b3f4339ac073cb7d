"""graphql-core's ``execute``, answered from a plan when the plan covers the operation."""

from __future__ import annotations

from collections import Counter, OrderedDict
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLSchema,
    OperationDefinitionNode,
    execute,
)
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

    def execute(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        *,
        context_value: Any = None,
        variable_values: dict[str, Any] | None = None,
        operation_name: str | None = None,
        hide_suggestions: bool = False,
        max_coercion_errors: int = 50,
        **graphql_core: Any,
    ) -> AwaitableOrValue[ExecutionResult]:
        """What ``graphql.execute`` answers for the same arguments (see docs/performance.md)."""
        plan = self.plan(document, operation_name) if schema is self._schema else None
        reason: str | None
        if plan is None:
            reason = "schema" if schema is not self._schema else "no_operation"
        else:
            reason = plan.fallback
        if plan is not None and reason is None:
            variables = get_variable_values(
                schema,
                plan.operation.variable_definitions or (),
                variable_values or {},
                max_errors=max_coercion_errors,
                hide_suggestions=hide_suggestions,
            )
            if isinstance(variables, list):
                self._count("variables")
                return ExecutionResult(data=None, errors=variables)
            self._count(PLANNED)
            run = PlanRun(
                schema,
                self._planner,
                self._kinds,
                plan,
                context_value,
                variables,
                hide_suggestions,
            )
            return run.run()
        self._count(reason or "unknown")
        return execute(
            schema,
            document,
            context_value=context_value,
            variable_values=variable_values,
            operation_name=operation_name,
            hide_suggestions=hide_suggestions,
            max_coercion_errors=max_coercion_errors,
            **graphql_core,
        )

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

"""An executor that answers denied fields with their error, without running their resolvers."""

from __future__ import annotations

from typing import Any

from graphql import GraphQLObjectType
from graphql.execution.collect_fields import FieldDetailsList
from graphql.execution.executor_throwing_on_incremental import ExecutorThrowingOnIncremental
from graphql.pyutils import AwaitableOrValue, Path, Undefined, UndefinedType

from dataintel.context import RequestContext


class GatedExecutor(ExecutorThrowingOnIncremental):
    """Fields whose node the policy denied before execution resolve to null with its error.

    The decision is made once per field of the operation (see gateway/policy); here it is
    one dictionary lookup, and none at all when nothing was denied.
    """

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: FieldDetailsList,
        path: Path,
        position_context: Any,
    ) -> AwaitableOrValue[Any] | UndefinedType:
        context: RequestContext = self.context_value
        if context.denied_fields:
            node = field_details_list[0].node
            error = context.denied_fields.for_node(node)
            if error is not None:
                field = self.schema.get_field(parent_type, node.name.value)
                if field is None:
                    return Undefined
                self.handle_field_error(error, field.type, field_details_list, path)
                return None
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )

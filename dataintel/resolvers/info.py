"""The Info type every resolver takes: Strawberry's, typed with the gateway's context."""

from typing import Any

import strawberry

from dataintel.context import RequestContext

Info = strawberry.Info[RequestContext, Any]

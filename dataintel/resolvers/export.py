"""Resolvers of exports: check the request, apply RBAC, enqueue the job, audit the request."""

from __future__ import annotations

from dataintel.errors import ForbiddenError
from dataintel.resolvers.auth import actor
from dataintel.resolvers.info import Info
from dataintel.resolvers.jobs import requester
from dataintel.services.export import EXPORT_KIND, ExportRequest
from dataintel.services.jobs import Job

PERSONAL_DATA_ROLES = frozenset({"data_engineer", "admin"})
"""Roles that may export datasets holding personal data."""


async def export_dataset(info: Info, request: ExportRequest, idempotency_key: str | None) -> Job:
    """Enqueues an export job and answers it at once; BAD_USER_INPUT or FORBIDDEN first."""
    services = info.context.services
    services.export.check(request)
    viewer = info.context.viewer
    if services.export.is_personal(request.dataset) and not viewer.roles & PERSONAL_DATA_ROLES:
        raise ForbiddenError(
            f"dataset: {request.dataset} holds personal data; exporting it needs the"
            " data_engineer or admin role.",
            domain="export",
            details={"field": "dataset"},
        )
    job = await services.jobs.enqueue(
        EXPORT_KIND,
        request.to_params(),
        requester(info),
        idempotency_key=idempotency_key,
        request_id=info.context.request_id,
    )
    await services.audit.append(
        actor(info).audit_event(
            "export.request",
            f"job:{job.id}",
            details={
                "dataset": request.dataset,
                "filter": request.filter,
                "columns": list(request.columns) if request.columns is not None else None,
                "format": request.format,
                "compression": request.compression,
                "partRows": request.part_rows,
                "ip": info.context.client_address,
            },
        )
    )
    return job

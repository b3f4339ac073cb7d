"""GET /exports/{jobId}/parts/{n}: a job's file, by a signed and expiring URL.

The URL's signature is the credential (it is issued by the GraphQL API to who may read the
job), so the route takes no bearer token. It serves Range requests (206), answers
If-None-Match with 304, names the file in Content-Disposition, and writes one audit entry
per download (the part's hash and size, never its content).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from dataintel.observability.logging import get_logger
from dataintel.services import Services
from dataintel.services.artifacts import SignatureProblem, parts_of
from dataintel.services.audit import AuditEvent
from dataintel.services.jobs import JobStatus

_log = get_logger("dataintel.downloads")


def _refusal(status: int, code: str, message: str) -> Response:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def download_endpoint(services: Callable[[], Services]) -> Callable[[Request], Awaitable[Response]]:
    """The download route's handler over the app's services."""

    async def download(request: Request) -> Response:
        job_id = request.path_params["job_id"]
        raw_number = request.path_params["number"]
        if not raw_number.isdecimal() or int(raw_number) < 1:
            return _refusal(404, "NOT_FOUND", f"'{raw_number}' is not a part number.")
        number = int(raw_number)
        registry = services()
        try:
            registry.downloads.check(
                job_id,
                number,
                request.query_params.get("expires"),
                request.query_params.get("signature"),
            )
        except SignatureProblem as problem:
            return _refusal(403, "FORBIDDEN", str(problem))
        job = await registry.jobs.get(job_id)
        if job is None:
            return _refusal(404, "NOT_FOUND", f"There is no job '{job_id}'.")
        if job.status is JobStatus.EXPIRED:
            return _refusal(410, "EXPIRED", "The job's files were deleted after its retention.")
        if job.status is not JobStatus.SUCCEEDED:
            return _refusal(404, "NOT_FOUND", f"Job '{job_id}' has no files ({job.status}).")
        part = next((item for item in parts_of(job.result) if item.number == number), None)
        path = registry.artifacts.path(job_id, number)
        if part is None or path is None:
            return _refusal(404, "NOT_FOUND", f"Job '{job_id}' has no part {number}.")
        etag = f'"{part.sha256}"'
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"etag": etag})
        client = request.client.host if request.client else None
        await registry.audit.append(
            AuditEvent(
                actor=job.requested_by,
                action=f"{job.kind}.download",
                target=f"job:{job_id}/part:{number}",
                outcome="served",
                request_id=request.headers.get("x-request-id"),
                details={
                    "jobId": job_id,
                    "part": number,
                    "bytes": part.bytes,
                    "sha256": part.sha256,
                    "range": request.headers.get("range"),
                    "ip": client,
                    "via": "signed url",
                },
            )
        )
        return FileResponse(
            path,
            media_type=part.content_type,
            filename=part.file_name,
            headers={"etag": etag, "cache-control": "private, no-store"},
        )

    return download

"""Resolvers of the status domain."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dataintel.services.status import GatewayStatus

if TYPE_CHECKING:
    from dataintel.resolvers.info import Info


async def gateway_status(info: Info) -> GatewayStatus:
    """The gateway's version, uptime and dependencies."""
    return await info.context.services.status.status()

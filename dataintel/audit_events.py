"""What an audit entry says before it is written: the vocabulary the gateway and services share.

Depends on nothing in the project: the gateway's security audit (denials, rate-limit
refusals) builds its entries from here, so it never imports the audit service for them;
``services/audit.py`` writes, chains and queries them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SUCCESS = "success"
FAILURE = "failure"
DENIED = "denied"
OUTCOMES = (SUCCESS, FAILURE, DENIED)
"""The outcomes the gateway writes; the column itself accepts any short word."""


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """What happened, before it is written: who, what, to what, how it ended, in which request."""

    actor: str
    action: str
    target: str
    outcome: str
    request_id: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

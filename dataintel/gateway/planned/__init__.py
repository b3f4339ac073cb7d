"""Planned execution: validated operations run from a plan built once, breadth-first."""

from dataintel.gateway.planned.execution import PlannedExecution

__all__ = ["PlannedExecution"]

"""Circuit breakers and time budgets around the gateway's dependencies."""

from dataintel.resilience.dependency import (
    BreakerSnapshot,
    BreakerState,
    Dependencies,
    Dependency,
    DependencyPolicy,
)

__all__ = ["BreakerSnapshot", "BreakerState", "Dependencies", "Dependency", "DependencyPolicy"]

"""The per-request loaders bundle; built fresh for every request, never shared."""

from __future__ import annotations

from dataclasses import dataclass

from dataintel.loaders.commerce import CommerceLoaders, create_commerce_loaders
from dataintel.loaders.features import FeatureLoaders, create_feature_loaders
from dataintel.services import Services
from dataintel.settings import Settings


@dataclass(frozen=True, slots=True)
class Loaders:
    """Every dataloader of one request."""

    commerce: CommerceLoaders
    features: FeatureLoaders


def create_loaders(services: Services, settings: Settings) -> Loaders:
    """A fresh set of loaders, bound to the running event loop."""
    size, batch = settings.loader_max_batch_size, settings.loader_batching
    return Loaders(
        commerce=create_commerce_loaders(services.commerce, max_batch_size=size, batch=batch),
        features=create_feature_loaders(services.features, max_batch_size=size, batch=batch),
    )

"""The per-request loaders bundle; built fresh for every request, never shared."""

from __future__ import annotations

from dataintel.loaders.commerce import CommerceLoaders, create_commerce_loaders
from dataintel.loaders.features import FeatureLoaders, create_feature_loaders
from dataintel.services import Services
from dataintel.settings import GraphQLSettings


class Loaders:
    """Every dataloader of one request, each group made when first used.

    A request answered from the response cache, or one reading no entity, makes none:
    building a dozen dataloaders costs more than the rest of such a request.
    """

    __slots__ = ("_batch", "_commerce", "_features", "_services", "_size")

    def __init__(self, services: Services, *, max_batch_size: int, batch: bool) -> None:
        self._services = services
        self._size = max_batch_size
        self._batch = batch
        self._commerce: CommerceLoaders | None = None
        self._features: FeatureLoaders | None = None

    @property
    def commerce(self) -> CommerceLoaders:
        """Customers, products, orders and what hangs off them."""
        if self._commerce is None:
            self._commerce = create_commerce_loaders(
                self._services.commerce, max_batch_size=self._size, batch=self._batch
            )
        return self._commerce

    @property
    def features(self) -> FeatureLoaders:
        """Online feature values."""
        if self._features is None:
            self._features = create_feature_loaders(
                self._services.features, max_batch_size=self._size, batch=self._batch
            )
        return self._features


def create_loaders(services: Services, graphql: GraphQLSettings) -> Loaders:
    """A fresh set of loaders, bound to the running event loop when first used."""
    return Loaders(
        services,
        max_batch_size=graphql.loader_max_batch_size,
        batch=graphql.loader_batching,
    )

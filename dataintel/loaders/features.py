"""Loaders of online feature values: one store statement per entity type and name set."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dataintel.loaders.batching import GroupedLoader
from dataintel.services.features import FeatureService, FeatureValueRecord

FeatureSelection = tuple[str, tuple[str, ...]]
"""An entity type and the feature names asked for, in order."""


def _no_values() -> Sequence[FeatureValueRecord]:
    return ()


@dataclass(frozen=True, slots=True)
class FeatureLoaders:
    """By-entity reads of online feature values."""

    online: GroupedLoader[str, FeatureSelection, Sequence[FeatureValueRecord]]


def create_feature_loaders(
    service: FeatureService, *, max_batch_size: int, batch: bool
) -> FeatureLoaders:
    """Fresh loaders for one request."""

    async def online(
        entity_ids: Sequence[str], selection: FeatureSelection
    ) -> Mapping[str, Sequence[FeatureValueRecord]]:
        entity_type, names = selection
        return await service.online(entity_type, entity_ids, names)

    return FeatureLoaders(
        online=GroupedLoader(online, _no_values, max_batch_size=max_batch_size, batch=batch),
    )

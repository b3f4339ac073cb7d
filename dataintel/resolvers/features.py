"""Resolvers of online features: arguments to the feature loader and catalog, records back."""

from __future__ import annotations

from collections.abc import Sequence

from dataintel.errors import BadUserInputError
from dataintel.loaders.features import FeatureSelection
from dataintel.resolvers.freshness import load, mark_stale
from dataintel.resolvers.global_ids import decode_global_id
from dataintel.resolvers.info import Info
from dataintel.services.features import FeatureValueRecord, FeatureView

MAX_ENTITIES = 1000
"""Most entities one onlineFeatures call may ask for."""


def entity_key(entity_type: str, raw: str) -> str:
    """The feature store's key of an entity id: a global id of the type, or the plain key."""
    if raw.isdecimal():
        return raw
    try:
        found = decode_global_id(raw)
    except BadUserInputError:
        return raw
    return str(found.key) if found.type_name.lower() == entity_type else raw


def selection(info: Info, entity_type: str, names: Sequence[str] | None) -> FeatureSelection:
    """The validated features asked for; BAD_USER_INPUT names the valid ones on a typo."""
    definitions = info.context.services.features.catalog.select(entity_type, names)
    return entity_type, tuple(definition.name for definition in definitions)


async def online_features(
    info: Info, entity_type: str, entity_ids: Sequence[str], names: Sequence[str] | None
) -> list[tuple[str, Sequence[FeatureValueRecord]]]:
    """Many entities' features in one batch, in the order the ids were given."""
    if len(entity_ids) > MAX_ENTITIES:
        raise BadUserInputError(
            f"At most {MAX_ENTITIES} entities per call; {len(entity_ids)} were given.",
            domain="features",
            details={"argument": "entityIds", "maximum": MAX_ENTITIES},
        )
    chosen = selection(info, entity_type, names)
    loader = info.context.loaders.features.online
    keys = [entity_key(entity_type, entity_id) for entity_id in entity_ids]
    values = await loader.load_many([(key, chosen) for key in keys])
    for index, key in enumerate(keys):
        mark_stale(info, loader.stale_read((key, chosen)), (index,))
    # Each answer names the entity by the id it was asked with.
    return list(zip(entity_ids, values, strict=True))


async def for_entity(
    info: Info, entity_type: str, entity_id: str, names: Sequence[str] | None
) -> Sequence[FeatureValueRecord]:
    """One entity's features, batched with every other entity's in the request."""
    chosen = selection(info, entity_type, names)
    return await load(info, info.context.loaders.features.online, (entity_id, chosen))


def feature_views(info: Info, entity_type: str | None) -> Sequence[FeatureView]:
    """The feature views in force, of one entity type or all."""
    return info.context.services.features.catalog.views_of(entity_type)

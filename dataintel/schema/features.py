"""Online features (after Feast): feature views and many entities x many features at once."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated

import strawberry

from dataintel.directives.auth import ANALYSTS
from dataintel.directives.cache_control import CacheControl
from dataintel.directives.cost import Cost
from dataintel.resolvers import features as resolvers
from dataintel.resolvers.info import Info
from dataintel.services import features as records


@strawberry.enum(description="The type of a feature's values; says which *Value field holds it.")
class FeatureValueType(enum.Enum):
    FLOAT = strawberry.enum_value("float", description="A number, in floatValue.")
    INT = strawberry.enum_value("int", description="A whole number, in intValue.")
    STRING = strawberry.enum_value("string", description="Text, in stringValue.")
    BOOL = strawberry.enum_value("bool", description="True or false, in boolValue.")


@strawberry.enum(description="What the online store holds for one feature of one entity.")
class FeatureStatus(enum.Enum):
    PRESENT = strawberry.enum_value("present", description="A fresh value.")
    NULL_VALUE = strawberry.enum_value(
        "null_value", description="Fresh, but the feature has no value for the entity."
    )
    NOT_FOUND = strawberry.enum_value(
        "not_found",
        description="Never materialized for the entity (or no such entity); stale, all null.",
    )
    OUTSIDE_MAX_AGE = strawberry.enum_value(
        "outside_max_age",
        description="Materialized longer ago than the view's TTL; the last value is given; stale.",
    )


@strawberry.type(
    description="One feature's online value for one entity, with its freshness.",
    directives=[CacheControl(max_age=300)],
)
class FeatureValue:
    name: str = strawberry.field(description="The feature's name.")
    view: str = strawberry.field(description="The feature view it belongs to.")
    value_type: FeatureValueType = strawberry.field(description="Which *Value field holds it.")
    float_value: float | None = strawberry.field(description="The value of a FLOAT feature.")
    int_value: int | None = strawberry.field(description="The value of an INT feature.")
    string_value: str | None = strawberry.field(description="The value of a STRING feature.")
    bool_value: bool | None = strawberry.field(description="The value of a BOOL feature.")
    timestamp: datetime | None = strawberry.field(
        description="The as-of time the value describes (UTC); null when NOT_FOUND."
    )
    materialized_at: datetime | None = strawberry.field(
        description="When the value was computed and written (UTC); null when NOT_FOUND."
    )
    stale: bool = strawberry.field(
        description="True when missing or materialized longer ago than the view's TTL."
    )
    status: FeatureStatus = strawberry.field(description="What the online store held.")

    @classmethod
    def from_record(cls, record: records.FeatureValueRecord) -> FeatureValue:
        value = record.value
        return cls(
            name=record.name,
            view=record.view,
            value_type=FeatureValueType(record.value_type),
            float_value=value if isinstance(value, float) else None,
            int_value=value if isinstance(value, int) and not isinstance(value, bool) else None,
            string_value=value if isinstance(value, str) else None,
            bool_value=value if isinstance(value, bool) else None,
            timestamp=record.timestamp,
            materialized_at=record.materialized_at,
            stale=record.stale,
            status=FeatureStatus(record.status.value),
        )


@strawberry.type(
    description="The requested features of one entity.", directives=[CacheControl(max_age=300)]
)
class EntityFeatures:
    entity_type: str = strawberry.field(description="The entity type, e.g. customer.")
    entity_id: strawberry.ID = strawberry.field(description="The entity's id.")
    features: list[FeatureValue] = strawberry.field(
        description="One value per requested feature, in the order requested."
    )


@strawberry.type(
    description="A feature a view defines.", directives=[CacheControl(inherit_max_age=True)]
)
class FeatureDefinition:
    name: str = strawberry.field(description="The name to ask for it by.")
    view: str = strawberry.field(description="The view it belongs to.")
    value_type: FeatureValueType = strawberry.field(description="The type of its values.")
    description: str = strawberry.field(description="What it means, with its unit.")
    formula: str | None = strawberry.field(
        description="How it is computed from the view's other features; null for aggregates."
    )

    @classmethod
    def from_record(cls, record: records.FeatureDefinition) -> FeatureDefinition:
        return cls(
            name=record.name,
            view=record.view,
            value_type=FeatureValueType(record.value_type),
            description=record.description,
            formula=record.formula,
        )


@strawberry.type(
    description="Features of one entity type computed together, sharing one TTL.",
    directives=[CacheControl(max_age=3600)],
)
class FeatureView:
    name: str = strawberry.field(description="The view's name.")
    entity_type: str = strawberry.field(description="The type of entity it describes.")
    description: str = strawberry.field(description="What the view is about.")
    ttl_seconds: int = strawberry.field(
        description="Seconds after materialization before its values are stale."
    )
    features: list[FeatureDefinition] = strawberry.field(description="Its features, in order.")

    @classmethod
    def from_record(cls, record: records.FeatureView) -> FeatureView:
        return cls(
            name=record.name,
            entity_type=record.entity_type,
            description=record.description,
            ttl_seconds=int(record.ttl.total_seconds()),
            features=[FeatureDefinition.from_record(feature) for feature in record.features],
        )


FeatureNamesArgument = Annotated[
    list[str] | None,
    strawberry.argument(description="Feature names, in the order wanted; null asks for all."),
]


@strawberry.type
class FeaturesQuery:
    @strawberry.field(
        description="Online feature values of many entities in one round trip, in the order"
        " of entityIds; BAD_USER_INPUT names the valid types and features on a typo.",
        directives=[ANALYSTS, Cost(list_size_argument="entityIds")],
    )
    async def online_features(
        self,
        info: Info,
        entity_type: Annotated[
            str, strawberry.argument(description="The entity type: customer or product.")
        ],
        entity_ids: Annotated[
            list[strawberry.ID],
            strawberry.argument(
                description=f"The entities' ids or databaseIds (at most {resolvers.MAX_ENTITIES})."
            ),
        ],
        features: FeatureNamesArgument = None,
    ) -> list[EntityFeatures] | None:
        found = await resolvers.online_features(info, entity_type, entity_ids, features)
        return [
            EntityFeatures(
                entity_type=entity_type,
                entity_id=strawberry.ID(entity_id),
                features=[FeatureValue.from_record(value) for value in values],
            )
            for entity_id, values in found
        ]

    @strawberry.field(
        description="The feature views in force, with their features and TTLs.",
        directives=[ANALYSTS],
    )
    def feature_views(
        self,
        info: Info,
        entity_type: Annotated[
            str | None, strawberry.argument(description="Only views of this entity type.")
        ] = None,
    ) -> list[FeatureView] | None:
        return [
            FeatureView.from_record(view) for view in resolvers.feature_views(info, entity_type)
        ]

"""The published ErrorCode enum, so clients can generate types for their error handling."""

import strawberry
from strawberry.types.enum import has_enum_definition

from dataintel.errors import ERROR_CODE_DESCRIPTIONS
from dataintel.errors import ErrorCode as _ErrorCode

ErrorCode = strawberry.enum(
    _ErrorCode, name="ErrorCode", description="Every error's extensions.code."
)

# The Python enum stays free of Strawberry (services raise it), so value docs are attached here.
assert has_enum_definition(ErrorCode)
for _value in ErrorCode.__strawberry_definition__.values:
    _value.description = ERROR_CODE_DESCRIPTIONS[_ErrorCode[_value.name]]

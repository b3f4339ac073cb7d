"""A REST request's path, query string or JSON body as a published operation's variables.

Text from the path and the query string is read by the variable's GraphQL type (a list
variable repeats its parameter: ``?status=PAID&status=SHIPPED``; an input object is JSON);
graphql-core then coerces the values as for any request. The bounds a published operation
adds (``minimum``, ``maxLength``...) are checked here, so every value the OpenAPI document
rejects is a 400 before anything runs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from graphql import (
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
)

from dataintel.errors import BadUserInputError
from dataintel.gateway.published_operations import PublishedOperation, PublishedVariable

_INTEGER = re.compile(r"[+-]?[0-9]+")
_JSON_TEXT_SCALARS = frozenset({"JSON"})


def variables_from_text(
    operation: PublishedOperation,
    path_parameters: Mapping[str, str],
    query_parameters: Mapping[str, Sequence[str]],
) -> dict[str, Any]:
    """The variables of a GET: path parameters, then query parameters; absent ones omitted."""
    variables: dict[str, Any] = {}
    for variable in operation.variables:
        if variable.location == "path":
            texts: Sequence[str] = [path_parameters[variable.name]]
        else:
            texts = query_parameters.get(variable.name, ())
        if not texts:
            continue
        value = _from_texts(variable, texts)
        check_constraints(variable, value)
        variables[variable.name] = value
    return variables


def variables_from_body(operation: PublishedOperation, body: bytes) -> dict[str, Any]:
    """The variables of a POST: a JSON object of them, nothing else in it."""
    try:
        parsed = orjson.loads(body) if body.strip() else {}
    except orjson.JSONDecodeError as error:
        raise BadUserInputError(f"The body is not valid JSON: {error.msg}.") from None
    if not isinstance(parsed, dict):
        raise BadUserInputError("The body must be a JSON object of the operation's variables.")
    known = {variable.name: variable for variable in operation.variables}
    unknown = sorted(set(parsed) - set(known))
    if unknown:
        raise BadUserInputError(
            f"Unknown properties in the body: {', '.join(unknown)}.",
            details={"allowed": sorted(known)},
        )
    for name, value in parsed.items():
        check_constraints(known[name], value)
    return parsed


def check_constraints(variable: PublishedVariable, value: Any) -> None:
    """Raises BAD_USER_INPUT when a value breaks a bound the published operation declares."""
    bounds = variable.constraints
    if not bounds or value is None:
        return
    problem = _violation(bounds, value)
    if problem is not None:
        raise BadUserInputError(
            f"'{variable.name}' {problem}.", details={"parameter": variable.name}
        )


def _violation(bounds: Mapping[str, Any], value: Any) -> str | None:
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if is_number and "minimum" in bounds and value < bounds["minimum"]:
        return f"must be at least {bounds['minimum']}"
    if is_number and "maximum" in bounds and value > bounds["maximum"]:
        return f"must be at most {bounds['maximum']}"
    if isinstance(value, str):
        if "minLength" in bounds and len(value) < bounds["minLength"]:
            return f"must have at least {bounds['minLength']} characters"
        if "maxLength" in bounds and len(value) > bounds["maxLength"]:
            return f"must have at most {bounds['maxLength']} characters"
        if "pattern" in bounds and re.search(bounds["pattern"], value) is None:
            return f"must match {bounds['pattern']}"
    if isinstance(value, list):
        if "minItems" in bounds and len(value) < bounds["minItems"]:
            return f"must have at least {bounds['minItems']} items"
        if "maxItems" in bounds and len(value) > bounds["maxItems"]:
            return f"must have at most {bounds['maxItems']} items"
    return None


def _from_texts(variable: PublishedVariable, texts: Sequence[str]) -> Any:
    graphql_type = _without_non_null(variable.type)
    if isinstance(graphql_type, GraphQLList):
        item_type = _without_non_null(graphql_type.of_type)
        return [_from_text(variable.name, item_type, text) for text in texts]
    if len(texts) > 1:
        raise BadUserInputError(
            f"The parameter '{variable.name}' is given {len(texts)} times; it takes one value.",
            details={"parameter": variable.name},
        )
    return _from_text(variable.name, graphql_type, texts[0])


def _without_non_null(graphql_type: GraphQLInputType) -> GraphQLInputType:
    return graphql_type.of_type if isinstance(graphql_type, GraphQLNonNull) else graphql_type


def _from_text(name: str, graphql_type: GraphQLInputType, text: str) -> Any:
    """One value from its text; what the type cannot read is BAD_USER_INPUT naming it."""
    if isinstance(graphql_type, GraphQLInputObjectType | GraphQLList) or (
        isinstance(graphql_type, GraphQLScalarType) and graphql_type.name in _JSON_TEXT_SCALARS
    ):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            raise _unreadable(name, "JSON") from None
    if isinstance(graphql_type, GraphQLScalarType):
        if graphql_type.name == "Int":
            if _INTEGER.fullmatch(text) is None:
                raise _unreadable(name, "an integer")
            return int(text)
        if graphql_type.name == "Float":
            try:
                number = float(text)
            except ValueError:
                raise _unreadable(name, "a number") from None
            if not math.isfinite(number):
                raise _unreadable(name, "a finite number")
            return number
        if graphql_type.name == "Boolean":
            if text not in ("true", "false"):
                raise _unreadable(name, "true or false")
            return text == "true"
    # Strings, ids, enum values and the other scalars are read from their text as it is.
    return text


def _unreadable(name: str, what: str) -> BadUserInputError:
    return BadUserInputError(f"The parameter '{name}' must be {what}.", details={"parameter": name})

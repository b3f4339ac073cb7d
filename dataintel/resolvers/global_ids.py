"""Global object ids: the type name and the key of an object in one opaque ID.

A global id is the standard base64 of ``"<TypeName>:<key>"``, e.g. ``Q3VzdG9tZXI6NDI=`` for
``Customer:42``, the encoding of graphql-relay and Strawberry's relay module. Clients treat
it as opaque; the gateway decodes it for ``node``, ``nodes`` and every argument that takes
an object's id, which also accept the plain key (``42``) for the clients of 0.1.0.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from dataintel.errors import BadUserInputError


@dataclass(frozen=True, slots=True)
class GlobalId:
    """A decoded global id: the GraphQL type name and the object's integer key."""

    type_name: str
    key: int


def encode_global_id(type_name: str, key: int | str) -> str:
    """The opaque global id of an object of the named type."""
    return base64.b64encode(f"{type_name}:{key}".encode()).decode()


def decode_global_id(raw: str) -> GlobalId:
    """The type name and key inside a global id; anything else is BAD_USER_INPUT."""
    try:
        text = base64.b64decode(raw.encode("ascii"), validate=True).decode("utf-8")
        type_name, _, key = text.partition(":")
        if not type_name.isidentifier() or not key.isdecimal() or int(key) < 1:
            raise ValueError(text)
        return GlobalId(type_name, int(key))
    except (ValueError, UnicodeError, binascii.Error):
        raise BadUserInputError(f"'{raw}' is not a global id of this gateway.") from None


def object_key(raw: str, type_name: str, kind: str) -> int:
    """The key in an ID argument: a global id of the type, or (0.1.0) the plain key."""
    if raw.isdecimal() and not raw.startswith("0"):
        return int(raw)
    try:
        found = decode_global_id(raw)
    except BadUserInputError:
        raise BadUserInputError(f"'{raw}' is not a {kind} id.") from None
    if found.type_name != type_name:
        raise BadUserInputError(
            f"'{raw}' is the id of a {found.type_name}, not of a {type_name}.",
            details={"expected": type_name, "given": found.type_name},
        )
    return found.key


def text_key(raw: str, type_name: str) -> str | None:
    """The key inside a global id of a type keyed by text (a job's UUID), None when ``raw``
    is no global id of that type."""
    try:
        text = base64.b64decode(raw.encode("ascii"), validate=True).decode("utf-8")
    except (ValueError, UnicodeError, binascii.Error):
        return None
    found_type, separator, key = text.partition(":")
    if found_type != type_name or not separator or not key:
        return None
    return key

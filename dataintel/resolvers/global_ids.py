"""Global object ids: the type name and the key of an object in one opaque ID.

A global id is the standard base64 of ``"<TypeName>:<key>"``, e.g. ``Q3VzdG9tZXI6NDI=`` for
``Customer:42`` (a key is an integer, or the declared id of a quality check or comparison),
the encoding of graphql-relay and Strawberry's relay module. Clients treat
it as opaque; the gateway decodes it for ``node``, ``nodes`` and every argument that takes
an object's id, which also accept the plain key (``42``) for the clients of 0.1.0.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from dataintel.errors import BadUserInputError


@dataclass(frozen=True, slots=True)
class GlobalId:
    """A decoded global id: the GraphQL type name and the object's key."""

    type_name: str
    key: int | str
    """An integer; or text: the declared id of a declared thing, or a job's UUID."""


_DECLARED_KEY = re.compile(r"[a-z][a-z0-9_]*")
_UUID_KEY = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def encode_global_id(type_name: str, key: int | str) -> str:
    """The opaque global id of an object of the named type."""
    return base64.b64encode(f"{type_name}:{key}".encode()).decode()


def decode_global_id(raw: str) -> GlobalId:
    """The type name and key inside a global id; anything else is BAD_USER_INPUT."""
    try:
        text = base64.b64decode(raw.encode("ascii"), validate=True).decode("utf-8")
        type_name, _, key = text.partition(":")
        if not type_name.isidentifier():
            raise ValueError(text)
        if _DECLARED_KEY.fullmatch(key) or _UUID_KEY.fullmatch(key):
            return GlobalId(type_name, key)
        if not key.isdecimal() or int(key) < 1:
            raise ValueError(text)
        return GlobalId(type_name, int(key))
    except (ValueError, UnicodeError, binascii.Error):
        raise BadUserInputError(f"'{raw}' is not a global id of this gateway.") from None


def _key_of(found: GlobalId, raw: str, type_name: str) -> int | str:
    # The key of a global id that must name the given type.
    if found.type_name != type_name:
        raise BadUserInputError(
            f"'{raw}' is the id of a {found.type_name}, not of a {type_name}.",
            details={"expected": type_name, "given": found.type_name},
        )
    return found.key


def object_key(raw: str, type_name: str, kind: str) -> int:
    """The key in an ID argument: a global id of the type, or (0.1.0) the plain key."""
    if raw.isdecimal() and not raw.startswith("0"):
        return int(raw)
    try:
        found = decode_global_id(raw)
    except BadUserInputError:
        raise BadUserInputError(f"'{raw}' is not a {kind} id.") from None
    key = _key_of(found, raw, type_name)
    if not isinstance(key, int):
        raise BadUserInputError(f"'{raw}' is not a {kind} id.")
    return key


def declared_key(raw: str, type_name: str) -> str:
    """The declared id in an ID argument: a global id of the type, or the plain declared id."""
    if _DECLARED_KEY.fullmatch(raw):
        return raw
    key = _key_of(decode_global_id(raw), raw, type_name)
    if not isinstance(key, str) or not _DECLARED_KEY.fullmatch(key):
        raise BadUserInputError(f"'{raw}' is not a global id of this gateway.")
    return key


def uuid_key(raw: str, type_name: str) -> str | None:
    """The UUID in an ID argument: a global id of the type, or the plain UUID; None when
    ``raw`` is neither (the caller answers as for an id that names nothing)."""
    if _UUID_KEY.fullmatch(raw):
        return raw
    try:
        key = _key_of(decode_global_id(raw), raw, type_name)
    except BadUserInputError:
        return None
    return key if isinstance(key, str) and _UUID_KEY.fullmatch(key) else None

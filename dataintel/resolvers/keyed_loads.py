"""Fields whose value is one loader read at a key of their parent object, declared once.

``Order.customer`` is the customer loader read at the order's ``customer_id``, made a
``Customer``. Declared as a ``KeyedLoad`` (in the field's Strawberry metadata, under
``KEYED_LOAD``), such a field runs two ways from one description: graphql-core calls
``resolve`` once per parent, each ``load`` batched by the loader; the planned executor
(gateway/planned) collects the keys of every parent of a level and makes one ``load_all`` per
loader, with no coroutine or future per field.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from dataintel.cache import StaleRead
from dataintel.loaders import Loaders
from dataintel.resolvers.freshness import load
from dataintel.resolvers.info import Info

KEYED_LOAD = "dataintel.keyed_load"
"""The Strawberry field metadata key that holds a field's KeyedLoad."""

S = TypeVar("S")
K = TypeVar("K")
V = TypeVar("V")
R = TypeVar("R")
K_contra = TypeVar("K_contra", contravariant=True)
V_co = TypeVar("V_co", covariant=True)


class KeyLoader(Protocol[K_contra, V_co]):
    """A per-request loader that also loads whole lists of keys (see loaders/batching)."""

    def load(self, key: K_contra) -> Awaitable[V_co]: ...

    def load_all(self, keys: Sequence[K_contra]) -> Awaitable[Sequence[V_co | Exception]]: ...

    def stale_read(self, key: K_contra) -> StaleRead | None: ...

    def stale_reads(self) -> Mapping[Any, StaleRead]: ...


@dataclass(frozen=True, slots=True)
class KeyedLoad(Generic[S, K, V, R]):
    """A field's value: ``convert(loader.load(key(parent)))``; null when the key is None."""

    loader: Callable[[Loaders], KeyLoader[K, V]]
    key: Callable[[S], K | None]
    convert: Callable[[V], R]
    converted: Callable[[Sequence[V]], Sequence[R] | None] | None = None
    """``convert`` of each of a list of values when every one is already converted and kept
    (``MadeOnce.made``), else None: the planned executor then skips a call per parent."""

    @property
    def metadata(self) -> dict[str, Any]:
        """What the field's ``strawberry.field(metadata=...)`` carries."""
        return {KEYED_LOAD: self}

    async def resolve(self, parent: S, info: Info) -> R | None:
        """The field's value for one parent, as graphql-core resolves it."""
        key = self.key(parent)
        if key is None:
            return None
        return self.convert(await load(info, self.loader(info.context.loaders), key))

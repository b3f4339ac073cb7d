"""Which reads were served from cache, told upward without the services knowing GraphQL.

Two context variables carry it. ``observe()`` opens a scope around one read (a resolver
awaiting a loader or a service): a value served past its TTL because its source failed is
reported into the innermost scope, by key when a batch serves many. ``trace_request()``
spans a whole request and gathers the tags of everything read, so that a cached response
is invalidated with the data it was built from.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from contextlib import AbstractContextManager
from contextvars import ContextVar, Token
from dataclasses import dataclass
from itertools import chain
from operator import attrgetter
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class StaleRead:
    """A value served from cache past its TTL because loading it afresh failed."""

    age_seconds: float
    code: str
    """The ErrorCode of the failure it stands in for: DEPENDENCY_UNAVAILABLE or TIMEOUT."""
    dependency: str | None


class Observation:
    """The stale reads reported inside one ``observe()`` scope."""

    __slots__ = ("by_key", "reads")

    def __init__(self) -> None:
        self.reads: list[StaleRead] = []
        self.by_key: dict[Hashable, StaleRead] = {}

    def add(self, read: StaleRead, key: Hashable | None) -> None:
        """Records one stale read, under its key when it has one."""
        self.reads.append(read)
        if key is not None:
            self.by_key[key] = read

    @property
    def oldest(self) -> StaleRead | None:
        """The stale read with the greatest age, or None when everything was fresh."""
        return max(self.reads, key=lambda read: read.age_seconds, default=None)


class Tagged(Protocol):
    """A cache entry's tags, and their versions when it was stored (None: unknown)."""

    @property
    def tags(self) -> tuple[str, ...]: ...

    @property
    def versions(self) -> tuple[str, ...] | None: ...


_versions_of = attrgetter("versions")
_tags_of = attrgetter("tags")


class RequestTrace:
    """What one request read through the cache: its tags with their versions, any staleness.

    The entries a read noted are kept as they came and their tags gone through only when
    ``versions`` or ``consistent`` is read (the response cache, when it keeps a response):
    with the response cache off nothing reads them, and the tags of every entity of a page
    cost a pass per request for nothing. Gone through later, in the order they were noted,
    they give the same versions and the same consistency (entries are not changed once made).
    """

    __slots__ = ("_consistent", "_pending", "_versioned", "_versions", "stale")

    def __init__(self) -> None:
        self._versions: dict[str, str | None] = {}
        self.stale = False
        self._consistent = True
        self._versioned = False
        """Whether any tag was noted with a version (only then can a None one disagree)."""
        self._pending: list[list[Tagged]] = []
        """Entries noted and not yet gone through, a list per ``note_entries``."""

    @property
    def versions(self) -> dict[str, str | None]:
        """Each tag read, with its version then; None when Redis could not tell it."""
        if self._pending:
            self._settle()
        return self._versions

    @property
    def consistent(self) -> bool:
        """False when one tag was read under two versions: an invalidation raced the request."""
        if self._pending:
            self._settle()
        return self._consistent

    @consistent.setter
    def consistent(self, value: bool) -> None:
        if self._pending:
            self._settle()
        self._consistent = value

    def noted_versions(self) -> None:
        """Says tags are being noted with versions: a tag noted without one is compared."""
        if self._pending:
            self._settle()
        self._versioned = True

    def note_entries(self, entries: Iterable[Tagged]) -> None:
        """Records the tags of cache entries read, with the versions they were read under."""
        self._pending.append(entries if type(entries) is list else list(entries))

    def _settle(self) -> None:
        pending, self._pending = self._pending, []
        for entries in pending:
            self._note(entries)

    def _note(self, entries: list[Tagged]) -> None:
        known = self._versions
        if not self._versioned and not any(map(_versions_of, entries)):
            # No tag read under a version yet, nor now (no Redis, the usual case): nothing
            # to compare, the tags only noted, in C.
            known.update(dict.fromkeys(chain.from_iterable(map(_tags_of, entries))))
            return
        for entry in entries:
            versions = entry.versions
            if versions is None:
                for tag in entry.tags:
                    if known.setdefault(tag, None) is not None:
                        self._consistent = False
                continue
            self._versioned = True
            for tag, version in zip(entry.tags, versions, strict=True):
                if known.setdefault(tag, version) != version:
                    self._consistent = False


_observation: ContextVar[Observation | None] = ContextVar("dataintel_observation", default=None)
_trace: ContextVar[RequestTrace | None] = ContextVar("dataintel_request_trace", default=None)


class _Scope(Generic[T]):
    """Sets a context variable to a value for the span of a ``with`` block.

    Written as a class: the generator that ``contextlib.contextmanager`` drives costs several
    times as much, and these scopes open a few times per request.
    """

    __slots__ = ("_token", "_value", "_variable")

    def __init__(self, variable: ContextVar[T | None], value: T) -> None:
        self._variable = variable
        self._value = value
        self._token: Token[T | None] | None = None

    def __enter__(self) -> T:
        self._token = self._variable.set(self._value)
        return self._value

    def __exit__(self, *_: object) -> None:
        assert self._token is not None
        self._variable.reset(self._token)


def observe() -> AbstractContextManager[Observation]:
    """A scope that collects the stale reads of the reads awaited inside it."""
    return _Scope(_observation, Observation())


def trace_request() -> AbstractContextManager[RequestTrace]:
    """A scope spanning one request's execution."""
    return _Scope(_trace, RequestTrace())


def report_stale(read: StaleRead, key: Hashable | None = None) -> None:
    """Tells the current scopes that a value was served stale."""
    observation = _observation.get()
    if observation is not None:
        observation.add(read, key)
    trace = _trace.get()
    if trace is not None:
        trace.stale = True


def current_trace() -> RequestTrace | None:
    """The trace of the request being executed, if one is."""
    return _trace.get()


def note_tags(tags: Iterable[str], versions: Mapping[str, str] | None) -> None:
    """Tells the current request which tags its data depends on, and their versions."""
    trace = _trace.get()
    if trace is None:
        return
    if versions is not None:
        trace.noted_versions()
    for tag in tags:
        version = versions.get(tag) if versions is not None else None
        seen = trace.versions.setdefault(tag, version)
        if seen != version:
            trace.consistent = False

"""One GraphQL request through named stages: the one way the gateway answers a request.

Every transport calls ``RequestPipeline.run(PipelineInput) -> PipelineOutcome``: the HTTP
endpoint once per request and once per item of a batch, an adapter for REST routes once per
call, the tests directly. The stages, in order (``STAGES``):

``authenticate``       the credential in the headers -> the Viewer (skipped when given)
``resolve_persisted``  a ``documentId`` or APQ hash -> the document's text
``prepare_document``   parse, structure limits, validate (cached by hash), introspection
``check_operation``    the operation the name picks, allowed for the transport's method;
                       its analysis (cost plan, policy shape, cache policy), once per
                       document and operation (analysis.py)
``cost``               the operation's cost against ``max_cost``
``policy``             @auth and @rateLimit -> the denied fields; schema usage counts
``response_cache``     a whole cached response, when the operation and viewer allow one
``execute``            graphql-core with the GatedExecutor, within the request timeout
``format``             errors to entries (at most ``max_errors``); the response is cached

A stage that refuses the request raises RequestRejected; ``run`` turns it into the
outcome's ``rejection`` (with its formatted errors), so a caller never handles exceptions.
HTTP framing (reading the body, CSRF, media types, status codes, headers) stays in
``http/graphql_endpoint.py``. Tracing and metrics are PipelineObservers: they see each
stage finish and the outcome, and are never called from the stages themselves.

A kept request (``PreparedRequest``) watched only by observers of outcomes (metrics) runs
its stages one after another, in the same order, without the loop that reports each to the
observers. The policy stage makes the request's context only when something is denied or
counted for the viewer; otherwise the execute stage makes it, and a response-cache hit never
needs one.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from graphql import GraphQLSchema, OperationDefinitionNode, OperationType

from dataintel.context import RequestContext, Viewer
from dataintel.errors import BadUserInputError
from dataintel.gateway.analysis import DocumentAnalyzer, OperationAnalysis
from dataintel.gateway.cost import OperationCost
from dataintel.gateway.documents import DocumentCache, PreparedDocument
from dataintel.gateway.error_format import format_error
from dataintel.gateway.execution import ExecutedOperation, GraphQLResponse, OperationExecution
from dataintel.gateway.introspection import IntrospectionPolicy
from dataintel.gateway.persisted_queries import PersistedQueries, persisted_query_hash
from dataintel.gateway.policy import FieldGate
from dataintel.gateway.request import DocumentRejected, GraphQLRequest, RequestRejected
from dataintel.gateway.response_cache import (
    UNDECIDED,
    Audience,
    CachedResponse,
    CachePolicy,
    ResponseCache,
)
from dataintel.gateway.trusted_documents import SHA256_PREFIX
from dataintel.settings import GraphQLSettings, LimitsSettings

JSON = "application/json"
ANY_OPERATION = frozenset(OperationType)
QUERIES_ONLY = frozenset({OperationType.QUERY})

STAGES = (
    "authenticate",
    "resolve_persisted",
    "prepare_document",
    "check_operation",
    "cost",
    "policy",
    "response_cache",
    "execute",
    "format",
)
"""The stages of ``RequestPipeline.run``, in the order they run."""
_KEPT_STAGES = frozenset({"resolve_persisted", "prepare_document", "check_operation", "cost"})
"""The stages whose findings depend on the request alone (``PreparedRequest``)."""
LONGEST_KEPT_REQUEST = 8192
"""Longer raw requests are prepared every time, by default (``prepared_request_max_bytes``):
the memo's entries stay small."""

MemoKey = tuple[bytes, frozenset[OperationType]] | tuple[bytes, frozenset[OperationType], bool]
"""A raw query string and the operation types allowed; for a POST's body, with ``True`` after
them: a query string and a body of the same bytes are different requests (and a tuple of
two is never equal to one of three)."""


class Authenticates(Protocol):
    """Reads a request's credential (http/authentication.py's Authenticator is one)."""

    def viewer(self, headers: Mapping[str, str]) -> Awaitable[Viewer]:
        """The viewer the credential names; raises RequestRejected when it is bad."""
        ...


class BuildsContexts(Protocol):
    """Builds one request's context (context.py's RequestContexts is the app's)."""

    def new(
        self,
        request_id: str,
        viewer: Viewer,
        client_address: str | None,
        client_name: str | None,
    ) -> RequestContext:
        """A context with its own loaders over the services in force."""
        ...


class RecordsUsage(Protocol):
    """Counts the schema coordinates requests use (services/schema_usage.py's recorder)."""

    def record(self, coordinates: frozenset[str], user_id: str | None, name: str | None) -> None:
        """Counts one request's coordinates for this viewer and client name."""
        ...


# Not frozen, as no record made per request is: a frozen dataclass sets each field through
# object.__setattr__, about a microsecond per record. Nothing assigns to one once made
# (dataclasses.replace makes another).
@dataclass(slots=True)
class PipelineInput:
    """One GraphQL request and what the transport knows about who sent it."""

    request: GraphQLRequest
    request_id: str
    headers: Mapping[str, str] = field(default_factory=dict)
    """Where the authenticate stage reads the credential (Authorization, X-API-Key)."""
    viewer: Viewer | None = None
    """Who is asking, when the caller already knows: the authenticate stage is skipped."""
    client_address: str | None = None
    client_name: str | None = None
    allowed: frozenset[OperationType] = ANY_OPERATION
    """The operation types the transport may run (a GET runs queries only)."""
    media_type: str = JSON
    """The response's media type: how some persisted-query errors are answered depends on it."""
    operator_document: bool = False
    """The document comes from the operator's own configuration (a published REST operation),
    not from the client: it is trusted as registered and there is nothing to resolve."""
    raw_request: bytes | None = None
    """The request as the transport read it (a GET's query string), when equal raw requests
    are the same request: what the stages that depend on nothing else found is kept by it.
    A POST's body is given to ``run`` beside the input instead (``body``)."""


@dataclass(frozen=True, slots=True)
class PreparedRequest:
    """What the stages that depend on the request alone found for one raw request.

    ``resolve_persisted``, ``prepare_document`` (less the viewer's introspection check),
    ``check_operation`` and ``cost`` give the same answer for the same raw request and
    allowed operation types, as long as the document's text is named by its content.
    """

    request: GraphQLRequest
    prepared: PreparedDocument
    operation: OperationDefinitionNode
    analysis: OperationAnalysis
    cost: int
    sent: GraphQLRequest
    """The request as read from the raw request, before ``resolve_persisted``: a kept
    body is not parsed again (``RequestPipeline.kept_request``)."""
    operation_name: str | None = None
    """The name of the operation that runs (``PipelineState.operation_name``)."""
    operation_type: str = "unknown"
    """query, mutation or subscription (``PipelineState.operation_type``)."""
    persisted_by_id: bool = False
    """``PipelineOutcome.persisted_by_id`` of the request (read from it alone)."""
    persisted: bool = False
    """``PipelineOutcome.persisted`` of the request (read from it alone)."""
    cache_keys: dict[Audience, str] = field(default_factory=dict, compare=False)
    """The response cache's key per audience met so far (at most ``KEPT_AUDIENCES``)."""
    decided: ViewerDecisions = field(default_factory=lambda: ViewerDecisions(), compare=False)
    """The viewer's checks as last decided for this request (``ViewerDecisions``)."""


@dataclass(slots=True)
class ViewerDecisions:
    """What the checks that depend on the viewer decided for a kept request, the last time
    it came from this viewer (the same object: the anonymous viewer, or one kept by the
    identity cache). Each depends on the document and the viewer's roles, scopes and
    anonymity alone, and the viewer is immutable: another viewer, or the same user with
    other roles (another object), is decided again. A viewer refused (introspection) is
    never kept here: refused again every time."""

    viewer: Viewer | None = None
    hides_suggestions: bool = False
    """``IntrospectionPolicy.hides_suggestions``."""
    needs_context: bool = False
    """``FieldGate.needs_context``: something denied or counted for this viewer."""
    cache_key: str | None = None
    """The response cache's key for this viewer (None: not cached for it), as decided
    while the response cache was enabled as ``keyed_while``; None: not decided yet."""
    keyed_while: bool | None = None


KEPT_AUDIENCES = 16
"""Cache keys kept per raw request: a PRIVATE response has one audience per viewer."""


@dataclass(slots=True)
class PipelineState:
    """What the stages have found so far; each stage reads earlier fields and sets its own."""

    input: PipelineInput
    request: GraphQLRequest
    started: float
    viewer: Viewer | None = None
    hide_suggestions: bool = False
    prepared: PreparedDocument | None = None
    operation: OperationDefinitionNode | None = None
    analysis: OperationAnalysis | None = None
    cost: int | None = None
    context: RequestContext | None = None
    cache_policy: CachePolicy | None = None
    cache_key: str | None = None
    cache_generation: int | None = None
    result: ExecutedOperation | None = None
    response: GraphQLResponse | None = None
    kept: PreparedRequest | None = None
    """What the request-only stages found for the same raw request before, if kept."""

    @property
    def operation_name(self) -> str | None:
        """The name of the operation that runs, once check_operation picked it."""
        if self.operation is not None:
            return self.operation.name.value if self.operation.name else None
        return self.request.operation_name

    @property
    def operation_type(self) -> str:
        """query, mutation or subscription; ``unknown`` until check_operation."""
        return self.operation.operation.value if self.operation is not None else "unknown"


@dataclass(slots=True)  # Not frozen: see PipelineInput.
class PipelineOutcome:
    """How one request ended: a response with data, or a rejection with only errors."""

    response: GraphQLResponse | None
    rejection: RequestRejected | None
    errors: list[dict[str, Any]]
    """The formatted error entries of either."""
    operation_name: str | None
    operation_type: str
    viewer: Viewer | None
    """None when the request was refused before (or by) authentication."""
    persisted_by_id: bool
    """The request named its document (``documentId`` or an APQ hash) instead of sending it."""
    persisted: bool
    """By id, or with the APQ extension (registering its text)."""
    document_hash: str | None = None
    seconds: float = 0.0

    @property
    def body(self) -> dict[str, Any]:
        """The JSON body of this request's answer (an item of a batch's array)."""
        if self.response is not None:
            return self.response.to_dict()
        return {"errors": self.errors}

    def encoded(self) -> bytes:
        """``body`` as JSON bytes."""
        if self.response is not None:
            return self.response.encoded()
        return orjson.dumps(self.body)


class PipelineObserver(Protocol):
    """Tracing, metrics or a test, watching the pipeline without being in its stages.

    An observer whose class sets ``outcome_only = True`` holds nothing open in ``around``
    and does nothing in ``stage_finished``: a run watched only by such observers may call
    neither (a kept request's run does not).
    """

    def around(self) -> AbstractContextManager[object]:
        """Entered for the whole run (an operation span is current inside it)."""
        ...

    def stage_finished(self, stage: str, state: PipelineState) -> None:
        """Called after each stage that succeeded, with what is known so far."""
        ...

    def finished(self, outcome: PipelineOutcome) -> None:
        """Called once per run, inside ``around``, with the outcome."""
        ...


Stage = Callable[[PipelineState], Awaitable[None]]


def _viewer_unknown(_: Mapping[str, str]) -> Viewer | None:
    """An authenticator without ``viewer_now``: its ``viewer`` is always awaited."""
    return None


class RequestPipeline:
    """Answers GraphQL requests; every collaborator is given, none is made up here."""

    def __init__(
        self,
        *,
        schema: GraphQLSchema,
        graphql: GraphQLSettings,
        limits: LimitsSettings,
        production: bool,
        documents: DocumentCache,
        persisted: PersistedQueries,
        authenticator: Authenticates,
        contexts: BuildsContexts,
        analyzer: DocumentAnalyzer,
        cost: OperationCost,
        gate: FieldGate,
        responses: ResponseCache | None,
        usage: RecordsUsage | None,
        observers: Sequence[PipelineObserver] = (),
        prepared_requests: int = 1024,
        longest_kept_request: int = LONGEST_KEPT_REQUEST,
    ) -> None:
        self.schema = schema
        self.graphql = graphql
        self.limits = limits
        self.documents = documents
        self.persisted = persisted
        self.analyzer = analyzer
        self.cost = cost
        self.gate = gate
        self._authenticator = authenticator
        # A request without a credential is anonymous without a coroutine, when the
        # authenticator says so (http/authentication.py's does).
        self._viewer_now: Callable[[Mapping[str, str]], Viewer | None] = getattr(
            authenticator, "viewer_now", _viewer_unknown
        )
        self._contexts = contexts
        self._responses = responses
        self._usage = usage
        self._introspection = IntrospectionPolicy(graphql, production=production)
        self.execution = OperationExecution(schema, graphql, max_errors=limits.max_errors)
        self._max_errors = limits.max_errors
        self.observers = list(observers)
        self._prepared_requests_size = prepared_requests
        self._longest_kept_request = longest_kept_request
        self._prepared_requests: OrderedDict[MemoKey, PreparedRequest] = OrderedDict()
        self._stages: tuple[tuple[str, Stage], ...] = (
            ("authenticate", self._authenticate),
            ("resolve_persisted", self._resolve_persisted),
            ("prepare_document", self._prepare_document),
            ("check_operation", self._check_operation),
            ("cost", self._cost),
            ("policy", self._policy),
            ("response_cache", self._response_cache),
            ("execute", self._execute),
            ("format", self._format),
        )

    async def run(
        self, pipeline_input: PipelineInput, body: bytes | None = None
    ) -> PipelineOutcome:
        """Runs every stage; a refusal ends the run with the rejection in the outcome.

        ``body``: the POST body the request was read from, when equal bodies are the same
        request (kept as ``raw_request`` is; not a field of the input, which every GET
        would pay for).
        """
        started = time.perf_counter()
        memo_key = self._memo_key(pipeline_input, body)
        kept = None
        if memo_key is not None:
            kept = self._prepared_requests.get(memo_key)
            if kept is not None:
                self._prepared_requests.move_to_end(memo_key)
                if self._outcomes_only():
                    hit = self._kept_hit(pipeline_input, kept, started)
                    if type(hit) is PipelineOutcome:
                        outcome = hit
                    elif hit is None:
                        state = PipelineState(pipeline_input, pipeline_input.request, started)
                        state.kept = kept
                        outcome = await self._run_kept(state, kept)
                    else:
                        assert isinstance(hit, PipelineState)
                        outcome = await self._run_kept_unanswered(hit, kept)
                    for observer in self.observers:
                        observer.finished(outcome)
                    return outcome
        state = PipelineState(pipeline_input, pipeline_input.request, started)
        state.kept = kept
        with ExitStack() as stack:
            for observer in self.observers:
                stack.enter_context(observer.around())
            try:
                for name, stage in self._stages:
                    if kept is not None and name in _KEPT_STAGES:
                        self._kept_stage(name, state, kept)
                    else:
                        await stage(state)
                    for observer in self.observers:
                        observer.stage_finished(name, state)
                    if name == "cost" and kept is None and memo_key is not None:
                        self._keep(memo_key, state)
                assert state.response is not None
                outcome = self._outcome(state, state.response, None, state.response.errors)
            except RequestRejected as rejected:
                outcome = self._refused(state, rejected)
            for observer in self.observers:
                observer.finished(outcome)
        return outcome

    def _outcomes_only(self) -> bool:
        # Asked on every kept request: a loop, not a generator.
        for observer in self.observers:  # noqa: SIM110
            if not getattr(observer, "outcome_only", False):
                return False
        return True

    def _kept_hit(
        self, pipeline_input: PipelineInput, kept: PreparedRequest, started: float
    ) -> PipelineOutcome | PipelineState | None:
        """``_run_kept``'s outcome when it is a hit in memory for a viewer decided before
        (no credential to read, nothing to enforce, the key kept), made without the
        request's ``PipelineState``; None, with nothing done, when ``_run_kept`` must run;
        the state ``_run_kept`` would have after an in-memory lookup that answered no
        response (counted), for ``_run_kept_unanswered`` to execute.

        The same stages with the same outcome: the viewer's checks and the key as
        ``_run_kept`` reuses them, the usage counted, the same response. The in-memory
        lookup comes before the usage count here, not after: neither can fail nor wait, and
        nothing runs between them, so only the order of two counts within one step differs,
        which nothing can see; a lookup that cannot answer in memory changes nothing, and
        ``_run_kept`` then runs as before."""
        responses = self._responses
        if responses is None:
            return None
        viewer = pipeline_input.viewer
        if viewer is None:
            viewer = self._viewer_now(pipeline_input.headers)
        decided = kept.decided
        key = decided.cache_key
        if (
            decided.viewer is not viewer
            or viewer is None
            or decided.needs_context
            or key is None
            or decided.keyed_while is not responses.enabled
        ):
            return None
        cached = responses.lookup_in_memory(key)
        if cached is UNDECIDED:
            return None
        analysis = kept.analysis
        if self._usage is not None:
            self._usage.record(analysis.coordinates, viewer.user_id, pipeline_input.client_name)
        if not isinstance(cached, CachedResponse):
            # No response to answer with: executed from here as ``_run_kept`` would be.
            state = PipelineState(pipeline_input, kept.request, started, viewer)
            state.kept = kept
            state.hide_suggestions = decided.hides_suggestions
            state.prepared = kept.prepared
            state.operation = kept.operation
            state.analysis = analysis
            state.cost = kept.cost
            state.cache_policy = analysis.cache_policy
            state.cache_key = key
            self._cached_answer(state, None)
            return state
        # _cached_answer's response (no context is made for a hit: no extensions), then
        # _run_kept's outcome, each by position in their fields' order.
        response = GraphQLResponse(
            cached.data,  # data
            [],  # errors
            {},  # extensions
            kept.operation_name,  # operation_name
            analysis.cache_policy,  # cache_policy
            cached.age_seconds,  # cached_age_seconds
            kept.operation_type,  # operation_type
            kept.cost,  # cost
            "hit",  # response_cache
            cached.encoded_data,  # encoded_data
        )
        return _kept_outcome(kept, response, viewer, started)

    async def _run_kept_unanswered(
        self, state: PipelineState, kept: PreparedRequest
    ) -> PipelineOutcome:
        """A kept request from its execute stage on, when the response cache answered
        nothing (looked up by ``_run_kept`` or ``_kept_hit``)."""
        try:
            await self._execute(state)
            await self._format(state)
        except RequestRejected as rejected:
            return self._refused(state, rejected)
        response = state.response
        assert response is not None
        return _kept_outcome(kept, response, state.viewer, state.started)

    async def _run_kept(self, state: PipelineState, kept: PreparedRequest) -> PipelineOutcome:
        """The stages of ``STAGES``, in order, for a kept request: each called directly, the
        viewer's checks as decided before for the same viewer, and without a coroutine for
        what need not wait (no credential to read, nothing to enforce, a hit in memory)."""
        pipeline_input = state.input
        try:
            viewer = pipeline_input.viewer
            if viewer is None:
                viewer = self._viewer_now(pipeline_input.headers)
                if viewer is None:
                    viewer = await self._authenticator.viewer(pipeline_input.headers)
            state.viewer = viewer
            # resolve_persisted, prepare_document, check_operation and cost, as _kept_stage
            # answers each of them.
            state.request = kept.request
            decided = kept.decided
            if decided.viewer is viewer:
                state.hide_suggestions = decided.hides_suggestions
                state.prepared = kept.prepared
            else:
                state.hide_suggestions = self._introspection.hides_suggestions(viewer)
                state.prepared = kept.prepared
                self._introspection.check(kept.prepared.uses_introspection, viewer)
                decided.needs_context = self.gate.needs_context(kept.analysis, viewer)
                decided.hides_suggestions = state.hide_suggestions
                # The last viewer's cache key is not this one's: decided again below.
                decided.cache_key = None
                decided.keyed_while = None
                decided.viewer = viewer
            state.operation = kept.operation
            analysis = state.analysis = kept.analysis
            state.cost = kept.cost
            # The policy stage (_policy), its decision kept.
            if decided.needs_context:
                await self.gate.enforce(analysis, self._new_context(state))
            if self._usage is not None:
                self._usage.record(analysis.coordinates, viewer.user_id, pipeline_input.client_name)
            if not self._response_cache_now(state):
                await self._response_cache_lookup(state)
        except RequestRejected as rejected:
            return self._refused(state, rejected)
        response = state.response
        if response is None:
            return await self._run_kept_unanswered(state, kept)
        # Execution and formatting do nothing for a response the cache answered: not even
        # awaited.
        return _kept_outcome(kept, response, viewer, state.started)

    def _refused(self, state: PipelineState, rejected: RequestRejected) -> PipelineOutcome:
        request_id = state.input.request_id
        entries = [format_error(error, request_id) for error in rejected.errors]
        return self._outcome(state, None, rejected, entries)

    @property
    def kept_requests(self) -> int:
        """How many raw requests' ``PreparedRequest`` are kept now."""
        return len(self._prepared_requests)

    def kept_request(
        self, raw: bytes, allowed: frozenset[OperationType], *, body: bool
    ) -> GraphQLRequest | None:
        """The request read before from the same raw request, if its stages are kept: the
        transport need not read it again (a POST's body is not parsed twice)."""
        if len(raw) > self._longest_kept_request:
            return None
        kept = self._prepared_requests.get((raw, allowed, True) if body else (raw, allowed))
        return kept.sent if kept is not None else None

    def _memo_key(self, pipeline_input: PipelineInput, body: bytes | None) -> MemoKey | None:
        raw = pipeline_input.raw_request if body is None else body
        if (
            raw is None
            or len(raw) > self._longest_kept_request
            or not self._prepared_requests_size
            or pipeline_input.operator_document
        ):
            return None
        if body is not None:
            return raw, pipeline_input.allowed, True
        return raw, pipeline_input.allowed

    def _keep(self, memo_key: MemoKey, state: PipelineState) -> None:
        """Keeps what the request-only stages found, when the text is named by its content.

        A document id that is a name may be registered again with another text, and a
        safelist may drop a document: those are resolved on every request.
        """
        sent = state.input.request
        document_id = sent.document_id
        # A text sent with its hash registers it (in Redis, for the other replicas, with a
        # TTL): every such request must register again, so it is never answered from here.
        registering = sent.query is not None and persisted_query_hash(sent.extensions) is not None
        if (
            self.graphql.trusted_documents_only
            or registering
            or (document_id is not None and not document_id.startswith(SHA256_PREFIX))
        ):
            return
        prepared, operation, analysis, cost = (
            _prepared(state),
            _operation(state),
            _analysis(state),
            state.cost,
        )
        assert cost is not None, "the cost stage comes first"
        apq, by_id = _persisted(sent)
        self._prepared_requests[memo_key] = PreparedRequest(
            state.request,
            prepared,
            operation,
            analysis,
            cost,
            sent,
            operation_name=state.operation_name,
            operation_type=state.operation_type,
            persisted_by_id=by_id,
            persisted=by_id or apq,
        )
        if len(self._prepared_requests) > self._prepared_requests_size:
            self._prepared_requests.popitem(last=False)

    def _kept_stage(self, name: str, state: PipelineState, kept: PreparedRequest) -> None:
        """A request-only stage answered from what it found before for the same raw request;
        the viewer's part of ``prepare_document`` (introspection) still runs."""
        if name == "resolve_persisted":
            state.request = kept.request
        elif name == "prepare_document":
            viewer = _viewer(state)
            state.hide_suggestions = self._introspection.hides_suggestions(viewer)
            state.prepared = kept.prepared
            self._introspection.check(kept.prepared.uses_introspection, viewer)
        elif name == "check_operation":
            state.operation = kept.operation
            state.analysis = kept.analysis
        elif name == "cost":
            state.cost = kept.cost
        else:
            raise AssertionError(f"no kept outcome for the stage {name!r}")

    def rejected(self, pipeline_input: PipelineInput, rejected: RequestRejected) -> PipelineOutcome:
        """The outcome of a request its transport refused before ``run`` (a bad body, CSRF),
        shown to the observers as any other, so it is counted and traced the same way."""
        state = PipelineState(pipeline_input, pipeline_input.request, time.perf_counter())
        entries = [format_error(error, pipeline_input.request_id) for error in rejected.errors]
        outcome = self._outcome(state, None, rejected, entries)
        with ExitStack() as stack:
            for observer in self.observers:
                stack.enter_context(observer.around())
            for observer in self.observers:
                observer.finished(outcome)
        return outcome

    async def authenticate(self, headers: Mapping[str, str]) -> Viewer:
        """The authenticate stage on its own: a batch authenticates once for all its items."""
        return await self._authenticator.viewer(headers)

    def _outcome(
        self,
        state: PipelineState,
        response: GraphQLResponse | None,
        rejection: RequestRejected | None,
        errors: list[dict[str, Any]],
    ) -> PipelineOutcome:
        apq, by_id = _persisted(state.input.request)
        return PipelineOutcome(
            response=response,
            rejection=rejection,
            errors=errors,
            operation_name=state.operation_name,
            # Metrics label a refused request by no type, wherever it was refused.
            operation_type=state.operation_type if rejection is None else "unknown",
            viewer=state.viewer,
            persisted_by_id=by_id,
            persisted=by_id or apq,
            document_hash=state.prepared.document_hash if state.prepared else None,
            seconds=time.perf_counter() - state.started,
        )

    # --- The stages, in order -----------------------------------------------------------

    async def _authenticate(self, state: PipelineState) -> None:
        given = state.input.viewer
        state.viewer = (
            given if given is not None else await self._authenticator.viewer(state.input.headers)
        )

    async def _resolve_persisted(self, state: PipelineState) -> None:
        if state.input.operator_document:
            return
        state.request = await self.persisted.resolve(state.request, state.input.media_type)

    async def _prepare_document(self, state: PipelineState) -> None:
        if state.request.query is None:
            raise RequestRejected([BadUserInputError("The 'query' parameter is required.")])
        viewer = _viewer(state)
        state.hide_suggestions = self._introspection.hides_suggestions(viewer)
        state.prepared = self.documents.get(
            state.request.query, hide_suggestions=state.hide_suggestions
        )
        self._introspection.check(state.prepared.uses_introspection, viewer)

    async def _check_operation(self, state: PipelineState) -> None:
        prepared = _prepared(state)
        operation = prepared.operation(state.request.operation_name)
        if operation is None:
            raise DocumentRejected(
                [unknown_operation(state.request.operation_name, prepared.operations)]
            )
        state.operation = operation
        state.analysis = self.analyzer.analyze(prepared, operation)
        if operation.operation not in state.input.allowed:
            raise RequestRejected(
                [
                    BadUserInputError(
                        f"A {operation.operation.value} cannot be sent with this method."
                    )
                ],
                status=405,
                headers={"Allow": "POST"},
            )

    async def _cost(self, state: PipelineState) -> None:
        state.cost = self.cost.check(_analysis(state).cost, state.request.variables)

    async def _policy(self, state: PipelineState) -> None:
        viewer = _viewer(state)
        analysis = _analysis(state)
        # Nothing denied or counted for this viewer (decided once per operation and
        # identity): the context is made when something executes, never for a cache hit.
        if self.gate.needs_context(analysis, viewer):
            await self.gate.enforce(analysis, self._new_context(state))
        if self._usage is not None:
            self._usage.record(analysis.coordinates, viewer.user_id, state.input.client_name)

    def _new_context(self, state: PipelineState) -> RequestContext:
        context = self._contexts.new(
            state.input.request_id,
            _viewer(state),
            state.input.client_address,
            state.input.client_name,
        )
        state.context = context
        return context

    async def _executing_context(self, state: PipelineState) -> RequestContext:
        """The request's context, made now if the policy stage had no need of it."""
        if state.context is not None:
            return state.context
        context = self._new_context(state)
        # Denies and counts nothing (the policy stage found so): gives the context the
        # gate's rule for what resolvers read by type (node, nodes).
        await self.gate.enforce(_analysis(state), context)
        return context

    async def _response_cache(self, state: PipelineState) -> None:
        if not self._response_cache_now(state):
            await self._response_cache_lookup(state)

    def _response_cache_now(self, state: PipelineState) -> bool:
        """The response_cache stage when it need not wait (True): nothing to look up, or
        the in-process level answers; False when the lookup must be awaited
        (``_response_cache_lookup``)."""
        # Whole-response caching comes after every check that may reject the request.
        if self._responses is None:
            return True
        context = state.context
        state.cache_policy = _analysis(state).cache_policy
        kept = state.kept
        viewer = _viewer(state)
        decided = kept.decided if kept is not None else None
        enabled = self._responses.enabled
        if decided is not None and decided.viewer is viewer and decided.keyed_while is enabled:
            # The key (or none) depends on the request, the viewer and whether the cache is
            # enabled alone: as decided the last time.
            state.cache_key = decided.cache_key
        else:
            self._cache_key(state, viewer)
            if decided is not None and decided.viewer is viewer:
                decided.cache_key = state.cache_key
                decided.keyed_while = enabled
        # A denied or rate-limited field must not be answered from another request's response.
        if state.cache_key is None or (context is not None and context.denied_fields):
            return True
        cached = self._responses.lookup_in_memory(state.cache_key)
        if cached is UNDECIDED:
            return False
        self._cached_answer(state, cached if isinstance(cached, CachedResponse) else None)
        return True

    def _cache_key(self, state: PipelineState, viewer: Viewer) -> None:
        assert self._responses is not None
        assert state.cache_policy is not None
        audience = self._responses.audience(viewer, state.cache_policy)
        if audience is not None:
            # Hashed once per raw request and audience: the key depends on nothing else.
            kept = state.kept
            key = kept.cache_keys.get(audience) if kept is not None else None
            if key is None:
                key = self._responses.audience_key(
                    _prepared(state), state.operation_name, state.request.variables, audience
                )
                if kept is not None and len(kept.cache_keys) < KEPT_AUDIENCES:
                    kept.cache_keys[audience] = key
            state.cache_key = key

    async def _response_cache_lookup(self, state: PipelineState) -> None:
        assert self._responses is not None
        assert state.cache_key is not None
        self._cached_answer(state, await self._responses.lookup(state.cache_key))

    def _cached_answer(self, state: PipelineState, cached: CachedResponse | None) -> None:
        assert self._responses is not None
        if cached is not None:
            context = state.context
            kept = state.kept
            # Every field by position, in their order (see _run_kept's outcome).
            state.response = GraphQLResponse(
                cached.data,  # data
                [],  # errors
                # Only resolvers add extensions: a context made before execution has none.
                dict(context.response_extensions) if context is not None else {},  # extensions
                kept.operation_name if kept is not None else state.operation_name,
                state.cache_policy,  # cache_policy
                cached.age_seconds,  # cached_age_seconds
                kept.operation_type if kept is not None else state.operation_type,
                state.cost,  # cost
                "hit",  # response_cache
                cached.encoded_data,  # encoded_data
            )
            return
        state.cache_generation = self._responses.generation()

    async def _execute(self, state: PipelineState) -> None:
        if state.response is not None:
            return
        context = await self._executing_context(state)
        state.result = await self.execution.run(
            _prepared(state), state.request, context, state.hide_suggestions
        )

    async def _format(self, state: PipelineState) -> None:
        if state.response is not None:
            return
        context = _context(state)
        executed = state.result
        assert executed is not None
        raw_errors = executed.errors
        extensions = dict(context.response_extensions)
        if len(raw_errors) > self._max_errors:
            # A list of a thousand failing items must not answer a thousand errors.
            extensions["omittedErrors"] = len(raw_errors) - self._max_errors
            raw_errors = raw_errors[: self._max_errors]
        errors = [format_error(error, context.request_id) for error in raw_errors]
        data = executed.data
        if self._responses and state.cache_key and state.cache_policy and data and not errors:
            await self._responses.store(
                state.cache_key, data, executed.trace, state.cache_policy, state.cache_generation
            )
        state.response = GraphQLResponse(
            data=data,
            errors=errors,
            extensions=extensions,
            operation_name=state.operation_name,
            cache_policy=state.cache_policy,
            operation_type=state.operation_type,
            cost=state.cost,
            response_cache="miss" if state.cache_generation is not None else "bypass",
        )


def _persisted(request: GraphQLRequest) -> tuple[bool, bool]:
    """Whether the request carries the APQ extension, and whether it names its document
    (``documentId`` or an APQ hash) instead of sending it."""
    apq = bool(request.extensions and "persistedQuery" in request.extensions)
    by_id = request.query is None and (request.document_id is not None or apq)
    return apq, by_id


def _viewer(state: PipelineState) -> Viewer:
    assert state.viewer is not None, "the authenticate stage comes first"
    return state.viewer


def _prepared(state: PipelineState) -> PreparedDocument:
    assert state.prepared is not None, "the prepare_document stage comes first"
    return state.prepared


def _operation(state: PipelineState) -> OperationDefinitionNode:
    assert state.operation is not None, "the check_operation stage comes first"
    return state.operation


def _analysis(state: PipelineState) -> OperationAnalysis:
    assert state.analysis is not None, "the check_operation stage comes first"
    return state.analysis


def _context(state: PipelineState) -> RequestContext:
    assert state.context is not None, "the execute stage comes first"
    return state.context


def unknown_operation(
    name: str | None, operations: Mapping[str | None, OperationDefinitionNode]
) -> BadUserInputError:
    """The error for an operation name that picks none of the document's operations."""
    named = sorted(n for n in operations if n is not None)
    if name is None:
        return BadUserInputError(
            "The document holds several operations; name one in operationName.",
            details={"operations": named},
        )
    return BadUserInputError(f"Unknown operation named '{name}'.", details={"operations": named})


def _kept_outcome(
    kept: PreparedRequest, response: GraphQLResponse, viewer: Viewer | None, started: float
) -> PipelineOutcome:
    """``RequestPipeline._outcome`` of a kept request, with what it reads of the request alone
    kept. Every field by position, in their order: a class called with keywords has them made
    into a dictionary and back (a few thousand instructions a record)."""
    return PipelineOutcome(
        response,  # response
        None,  # rejection
        response.errors,  # errors
        kept.operation_name,  # operation_name
        kept.operation_type,  # operation_type
        viewer,  # viewer
        kept.persisted_by_id,  # persisted_by_id
        kept.persisted,  # persisted
        kept.prepared.document_hash,  # document_hash
        time.perf_counter() - started,  # seconds
    )

"""The planned executor answers exactly what graphql-core answers: the differential test.

Every query operation of the suite, the bench and the docs (planned_operations.graphql), and
operations generated from the real schema by hypothesis-graphql, reworked here with aliases,
named fragments, variables and @skip/@include, run through both engines in the same app over
the same seeded store, for the same actor; ``data`` must be identical (key order included)
and errors identical by message, path and code. The actors include one without a credential
and one whose role is denied fields, and a run with the store broken.

The generated operations the suite runs are committed (planned_generated_operations.jsonl.gz,
2,400 generated from a fixed seed; generating them takes minutes on a busy machine): rewrite
them with ``python -m tests.gateway.test_planned_execution``. To run more, generated afresh,
set ``DATAINTEL_DIFFERENTIAL_EXAMPLES`` (how many) and ``DATAINTEL_DIFFERENTIAL_SEED``.
"""

from __future__ import annotations

import gzip
import json
import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import graphql
import httpx
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from hypothesis_graphql import nodes, queries
from starlette.applications import Starlette

from dataintel.app import create_app
from dataintel.cache import PartialResult, StaleRead, entity_tag, report_stale
from dataintel.errors import DependencyUnavailableError
from dataintel.gateway.execution import OperationExecution
from dataintel.gateway.gated_executor import GatedExecutor
from dataintel.gateway.planned.kept import kept_many
from dataintel.gateway.planned.plan import ATTRIBUTE, DIRECT, KEYED, METHOD
from dataintel.gateway.planned.run import PlanRun
from dataintel.services.auth import OPERATOR, NewUser, SqlAuthService
from dataintel.services.commerce import CustomerRecord, OrderFilter, OrderRecord
from dataintel.services.pagination import Page, PageRequest
from dataintel.services.tokens import TokenCodec
from dataintel.store import tables
from tests.plugins.app import SettingsFactory, serving
from tests.plugins.faults import UnreadableStore, runtime_of

OPERATIONS = Path(__file__).with_name("planned_operations.graphql")
CORPUS = Path(__file__).with_name("planned_generated_operations.jsonl.gz")
EXAMPLES = int(os.environ.get("DATAINTEL_DIFFERENTIAL_EXAMPLES", "0"))
SEED = int(os.environ.get("DATAINTEL_DIFFERENTIAL_SEED", "20261201"))
# Root fields whose answers change between two requests by design (uptime, the usage and
# audit records every request adds, the viewer's own keys): not comparable run to run.
VOLATILE_ROOTS = frozenset({"status", "schemaUsage", "auditLog", "me", "apiKeys", "datasetHealth"})
ACTORS = ("analyst", "viewer", "anonymous")


def suite_operations() -> list[str]:
    """The curated operations, one per block."""
    text = OPERATIONS.read_text()
    blocks = [block for block in text.split("\n# ----\n") if block.strip()]
    return [
        "\n".join(line for line in block.splitlines() if not line.startswith("# "))
        for block in blocks
    ]


@dataclass
class Engines:
    """One app and a way to send the same request through either engine."""

    app: Starlette
    client: httpx.AsyncClient
    tokens: dict[str, str]
    compared: int = 0
    mismatches: list[str] = field(default_factory=list)

    @property
    def executor(self) -> OperationExecution:
        execution: OperationExecution = self.app.state.pipeline.execution
        return execution

    async def send(
        self, query: str, variables: dict[str, Any] | None, actor: str, planned: bool
    ) -> dict[str, Any]:
        executor = self.executor
        executor.planned_enabled = planned
        headers = {}
        if actor in self.tokens:
            headers["Authorization"] = f"Bearer {self.tokens[actor]}"
        body: dict[str, Any] = {"query": query}
        if variables:
            body["variables"] = variables
        response = await self.client.post("/graphql", json=body, headers=headers)
        return {"status": response.status_code, **response.json()}

    async def compare(
        self, query: str, variables: dict[str, Any] | None = None, actor: str = "analyst"
    ) -> None:
        expected = await self.send(query, variables, actor, planned=False)
        planned_before = self.executor.planned.outcomes["planned"]
        actual = await self.send(query, variables, actor, planned=True)
        self.compared += 1
        if canonical(expected) != canonical(actual):
            self.mismatches.append(
                f"{actor} {query} {json.dumps(variables)}\n"
                f"graphql-core: {json.dumps(canonical(expected))[:2000]}\n"
                f"planned:      {json.dumps(canonical(actual))[:2000]}"
            )
        assert self.executor.planned.outcomes["planned"] >= planned_before


def canonical(body: dict[str, Any]) -> dict[str, Any]:
    """Status, data as sent (key order kept), errors by message, path and code, sorted."""
    errors = sorted(
        (
            error["message"],
            json.dumps(error.get("path")),
            error.get("extensions", {}).get("code"),
        )
        for error in body.get("errors", [])
    )
    return {"status": body["status"], "data": json.dumps(body.get("data")), "errors": errors}


@pytest.fixture
async def engines(make_settings: SettingsFactory, tmp_path: Path) -> AsyncIterator[Engines]:
    # Response cache off: both engines must run every time. Entity cache on, as served.
    settings = make_settings(
        response_cache_enabled=False, anonymous_roles=[], rate_limit_enabled=False
    )
    app = create_app(settings)
    async with serving(app) as client:
        auth: SqlAuthService = app.state.runtime.services.auth
        codec = TokenCodec.from_settings(settings.auth, production=settings.production)
        tokens = {}
        for role in ("analyst", "viewer"):
            user = await auth.create_user(OPERATOR, NewUser(f"{role}@example.com", roles=(role,)))
            tokens[role] = codec.issue(str(user.id)).token
        yield Engines(app, client, tokens)


def report(engines: Engines) -> str:
    shown = "\n\n".join(engines.mismatches[:5])
    return f"{len(engines.mismatches)} of {engines.compared} operations differ:\n\n{shown}"


async def test_every_suite_operation_answers_the_same(engines: Engines) -> None:
    operations = suite_operations()
    assert len(operations) >= 50
    for index, query in enumerate(operations):
        await engines.compare(query, actor=ACTORS[index % len(ACTORS)])
    assert not engines.mismatches, report(engines)
    assert engines.executor.planned.outcomes["planned"] >= len(operations) * 0.9


# Non-null fields that fail: `history` is non-null, so a bad page size nulls the check or
# the report around it; `nodes` is [Node]!, so a failure inside nulls only the item.
EDGE_CASES: list[tuple[str, dict[str, Any] | None]] = [
    ("{ qualityChecks { id history(first: 100000) { totalCount } } }", None),
    ("{ reconciliations { id history(first: -1) { totalCount } } }", None),
    ('{ nodes(ids: ["T3JkZXI6MQ==", "bm9wZTox", "1"]) { id ... on Order { total } } }', None),
    (
        "query Q($first: Int = 3, $with: Boolean!, $skip: Boolean = false) {"
        " a: orders(first: $first) { nodes { id ...O @include(if: $with) } }"
        " b: orders(first: 2) @skip(if: $skip) { totalCount nodes { status } } }"
        " fragment O on Order { total customer { ... on Node { id } name tier } }",
        {"with": True},
    ),
    (
        "query Q($with: Boolean!) { orders(first: 2) { nodes { id status @include(if: $with)"
        " ... on Order @skip(if: $with) { channel } } } }",
        {"with": False},
    ),
    ("query Q($first: Int!) { orders(first: $first) { nodes { id } } }", {"first": "x"}),
    ("query Q($first: Int!) { orders(first: $first) { nodes { id } } }", {"first": 100000}),
    ("{ orders(first: 2) { __typename nodes { __typename id } } }", None),
    ("{ users(first: 1) { nodes { id email } } orders(first: 1) { nodes { id } } }", None),
    ("{ __typename orders(first: 1) { nodes { id } } }", None),
]


@pytest.mark.parametrize("actor", ACTORS)
async def test_denials_variables_and_non_null_failures_answer_the_same(
    engines: Engines, actor: str
) -> None:
    for query, variables in EDGE_CASES:
        await engines.compare(query, variables, actor)
    assert not engines.mismatches, report(engines)


async def test_a_broken_store_answers_the_same(
    make_settings: SettingsFactory, seeded_sqlite_url: str
) -> None:
    settings = make_settings(response_cache_enabled=False, cache_enabled=False)
    app = create_app(settings)
    path = Path(seeded_sqlite_url.split("///", 1)[1])
    async with serving(app) as client:
        engines = Engines(app, client, {})
        store = UnreadableStore(app, path)
        await store.break_()
        try:
            queries_ = [q for q in suite_operations() if "orders" in q or "customer" in q][:8]
            # The breaker's state must be the same for both runs: let it open first.
            for query in queries_:
                await engines.send(query, None, "anonymous", planned=False)
            for query in queries_:
                await engines.compare(query, actor="anonymous")
        finally:
            await store.restore()
    assert engines.compared == len(queries_)
    assert not engines.mismatches, report(engines)


async def test_fields_are_planned_by_how_they_resolve(engines: Engines) -> None:
    # Attributes are read, plain methods of the object called, KeyedLoad fields loaded per
    # level; only the root field goes through Strawberry's arguments and Info.
    planned = engines.executor.planned
    schema = engines.app.state.schema._schema
    document = graphql.parse(
        "{ orders(first: 50) { nodes { id total status customer { id name tier } } } }"
    )
    plan = planned.plan(document, None)
    assert plan is not None
    [orders] = planned.planner.root_fields(plan, schema.query_type, {}).fields
    assert orders.kind == DIRECT
    assert orders.object_type is not None
    [nodes] = planned.planner.subfields(plan, orders, orders.object_type, ()).fields
    assert nodes.kind == METHOD
    order_fields = planned.planner.subfields(plan, nodes, schema.get_type("Order"), ()).fields
    assert {field.key: field.kind for field in order_fields} == {
        "id": ATTRIBUTE,
        "total": METHOD,
        "status": ATTRIBUTE,
        "customer": KEYED,
    }
    customer = order_fields[-1]
    assert customer.object_type is not None
    customer_fields = planned.planner.subfields(plan, customer, customer.object_type, ()).fields
    assert all(field.serialize is not None for field in customer_fields)


async def test_what_the_plan_does_not_cover_runs_on_graphql_core(engines: Engines) -> None:
    outcomes = engines.executor.planned.outcomes
    await engines.compare("{ __schema { queryType { name } } }")
    await engines.compare('{ __type(name: "Order") { name } orders(first: 1) { nodes { id } } }')
    await engines.compare("mutation { logout }", actor="anonymous")
    assert outcomes["introspection"] == 2
    assert outcomes["mutation"] == 1
    assert not engines.mismatches, report(engines)


async def test_a_planned_operation_coerces_its_variables_without_graphql_cores_executor(
    engines: Engines, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_executor(*_: object, **__: object) -> None:
        raise AssertionError("graphql-core's executor was built for a planned operation")

    monkeypatch.setattr(GatedExecutor, "build", no_executor)
    query = "query ($n: Int) { orders(first: $n) { nodes { id customer { id name } } } }"
    answered = await engines.send(query, {"n": 2}, "analyst", planned=True)
    assert len(answered["data"]["orders"]["nodes"]) == 2
    refused = await engines.send(query, {"n": "two"}, "analyst", planned=True)
    assert "data" not in refused
    assert refused["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "$n" in refused["errors"][0]["message"]


async def test_leaves_and_keyed_loads_are_completed_without_a_trip_through_the_queue(
    engines: Engines, monkeypatch: pytest.MonkeyPatch
) -> None:
    queued: list[list[str]] = []
    drain = PlanRun._drain

    def counted(run: PlanRun) -> None:
        queued.append([entry[0].name for entry in run._queue])
        drain(run)

    query = "{ orders(first: 3) { nodes { id status customer { id name tier } } } }"
    # The first run learns which classes are Orders and Customers (is_type_of, once).
    await engines.send(query, None, "analyst", planned=True)
    monkeypatch.setattr(PlanRun, "_drain", counted)
    answered = await engines.send(query, None, "analyst", planned=True)
    assert [node["customer"]["name"] for node in answered["data"]["orders"]["nodes"]]
    # The root, then the connection; the orders and their customers were never queued.
    assert queued == [["Query"], ["OrderConnection"], []]
    await engines.compare(query)
    assert not engines.mismatches, report(engines)


async def test_variables_that_do_not_coerce_answer_the_same(engines: Engines) -> None:
    query = "query ($n: Int!, $s: [OrderStatus!]) { orders(first: $n, filter: {status: $s}) {"
    query += " nodes { id status } } }"
    for variables in ({"n": "x"}, {}, {"n": 1, "s": ["LOST"]}, {"n": 1, "s": ["PAID"]}):
        await engines.compare(query, variables)
    assert not engines.mismatches, report(engines)
    paid = await engines.send(query, {"n": 1, "s": ["PAID"]}, "analyst", planned=True)
    assert paid["data"]["orders"]["nodes"][0]["status"] == "PAID"


# -- generated operations ----------------------------------------------------------------

CUSTOM_SCALARS = {
    "DateTime": st.sampled_from(
        ["2026-05-01T00:00:00Z", "2026-06-15T12:30:00+00:00", "2026-07-01T00:00:00Z"]
    ).map(nodes.String),
    "JSON": st.sampled_from([nodes.Int(1), nodes.String("a"), nodes.Boolean(True)]),
}


def generated_operations(schema: graphql.GraphQLSchema, count: int, from_seed: int) -> list[str]:
    """``count`` valid queries, each over one comparable root field, from a fixed seed."""
    roots = [name for name in schema.query_type.fields if name not in VOLATILE_ROOTS]  # type: ignore[union-attr]
    by_root = {
        root: queries(
            schema, fields=[root], custom_scalars=CUSTOM_SCALARS, allow_x00=False, codec="ascii"
        )
        for root in roots
    }
    found: list[str] = []

    @seed(from_seed)
    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.sampled_from(roots).flatmap(by_root.__getitem__))
    def collect(query: str) -> None:
        found.append(query)

    collect()
    return found


class Rework:
    """Turns a generated query into one with aliases, named fragments, variables and
    @skip/@include, keeping it valid (checked by the caller)."""

    def __init__(self, schema: graphql.GraphQLSchema, rng: random.Random) -> None:
        self._schema = schema
        self._rng = rng

    def __call__(self, query: str) -> tuple[str, dict[str, Any]]:
        document = graphql.parse(query)
        variables: dict[str, Any] = {}
        definitions: list[graphql.VariableDefinitionNode] = []
        fragments: list[graphql.FragmentDefinitionNode] = []
        type_info = graphql.TypeInfo(self._schema)
        rng = self._rng
        counter = iter(range(10_000))

        class Visitor(graphql.Visitor):
            def enter_argument(self, node: graphql.ArgumentNode, *_: Any) -> Any:
                argument = type_info.get_argument()
                if argument is None or rng.random() > 0.5:
                    return None
                name = f"v{next(counter)}"
                value = graphql.value_from_ast_untyped(node.value)
                type_node = graphql.parse_type(str(argument.type))
                default: Any = None
                if rng.random() < 0.3:
                    default = node.value
                else:
                    variables[name] = value
                definitions.append(
                    graphql.VariableDefinitionNode(
                        variable=graphql.VariableNode(name=graphql.NameNode(value=name)),
                        type=type_node,
                        default_value=default,
                        directives=(),
                    )
                )
                return graphql.ArgumentNode(
                    name=node.name,
                    value=graphql.VariableNode(name=graphql.NameNode(value=name)),
                )

            def enter_field(self, node: graphql.FieldNode, *_: Any) -> Any:
                changed = False
                alias = node.alias
                directives = tuple(node.directives or ())
                selection_set = node.selection_set
                roll = rng.random()
                if node.alias is None and roll < 0.2:
                    alias = graphql.NameNode(value=f"a{next(counter)}_{node.name.value}")
                    changed = True
                if roll > 0.85:
                    flag = f"c{next(counter)}"
                    directive = "include" if rng.random() < 0.5 else "skip"
                    variables[flag] = rng.random() < 0.5
                    definitions.append(
                        graphql.VariableDefinitionNode(
                            variable=graphql.VariableNode(name=graphql.NameNode(value=flag)),
                            type=graphql.parse_type("Boolean!"),
                            directives=(),
                        )
                    )
                    directives = (
                        *directives,
                        graphql.DirectiveNode(
                            name=graphql.NameNode(value=directive),
                            arguments=(
                                graphql.ArgumentNode(
                                    name=graphql.NameNode(value="if"),
                                    value=graphql.VariableNode(name=graphql.NameNode(value=flag)),
                                ),
                            ),
                        ),
                    )
                    changed = True
                parent = type_info.get_type()
                named = graphql.get_named_type(parent) if parent is not None else None
                if (
                    selection_set is not None
                    and isinstance(named, graphql.GraphQLObjectType | graphql.GraphQLInterfaceType)
                    and rng.random() < 0.25
                ):
                    fragment = f"F{next(counter)}"
                    fragments.append(
                        graphql.FragmentDefinitionNode(
                            name=graphql.NameNode(value=fragment),
                            type_condition=graphql.NamedTypeNode(
                                name=graphql.NameNode(value=named.name)
                            ),
                            selection_set=selection_set,
                            directives=(),
                        )
                    )
                    selection_set = graphql.SelectionSetNode(
                        selections=(
                            graphql.FragmentSpreadNode(
                                name=graphql.NameNode(value=fragment), directives=()
                            ),
                        )
                    )
                    changed = True
                if not changed:
                    return None
                return graphql.FieldNode(
                    alias=alias,
                    name=node.name,
                    arguments=node.arguments,
                    directives=directives,
                    selection_set=selection_set,
                )

        reworked = graphql.visit(document, graphql.TypeInfoVisitor(type_info, Visitor()))
        operation = reworked.definitions[0]
        operation = graphql.OperationDefinitionNode(
            operation=operation.operation,
            name=graphql.NameNode(value="Generated"),
            variable_definitions=tuple(definitions),
            directives=(),
            selection_set=operation.selection_set,
        )
        result = graphql.DocumentNode(definitions=(operation, *fragments))
        return graphql.print_ast(result), variables


def reworked_operations(
    schema: graphql.GraphQLSchema, count: int, from_seed: int
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Generated queries, most reworked (the others as generated when a rework is invalid)."""
    rework = Rework(schema, random.Random(from_seed))
    for query in generated_operations(schema, count, from_seed):
        try:
            text, variables = rework(query)
            valid = not graphql.validate(schema, graphql.parse(text))
        except graphql.GraphQLError:
            valid = False
        yield (text, variables) if valid else (query, {})


def corpus(schema: graphql.GraphQLSchema) -> list[tuple[str, dict[str, Any]]]:
    """The committed operations (see write_corpus) that are still valid against the schema."""
    with gzip.open(CORPUS, "rt") as lines:
        entries = [json.loads(line) for line in lines]
    return [
        (entry["query"], entry["variables"])
        for entry in entries
        if not graphql.validate(schema, graphql.parse(entry["query"]))
    ]


def write_corpus(count: int = 2400) -> None:
    """Regenerates the corpus from SEED: ``python -m tests.gateway.test_planned_execution``."""
    from dataintel.schema import build_schema

    schema = build_schema()._schema
    with gzip.open(CORPUS, "wt") as out:
        for query, variables in reworked_operations(schema, count, SEED):
            out.write(json.dumps({"query": query, "variables": variables}) + "\n")


async def test_generated_operations_answer_the_same(engines: Engines) -> None:
    schema = engines.app.state.schema._schema
    operations = corpus(schema)
    # A schema change that invalidates many committed operations needs a new corpus.
    assert len(operations) >= 2000, "regenerate: python -m tests.gateway.test_planned_execution"
    if EXAMPLES:
        operations += reworked_operations(schema, EXAMPLES, SEED)
    reworked = sum(1 for _, variables in operations if variables)
    for index, (query, variables) in enumerate(operations):
        await engines.compare(query, variables or None, ACTORS[index % len(ACTORS)])
    assert not engines.mismatches, report(engines)
    assert reworked > len(operations) / 4
    assert engines.executor.planned.outcomes["planned"] >= len(operations) * 0.9


if __name__ == "__main__":
    write_corpus()


def failing_and_stale(
    customers_by_id: Callable[[Sequence[int]], Awaitable[Mapping[int, CustomerRecord]]],
) -> Callable[[Sequence[int]], Awaitable[Mapping[int, CustomerRecord]]]:
    """``customers_by_id`` where every third customer asked for fails and the one after each
    is read stale."""

    async def some_customers_fail(ids: Sequence[int]) -> Mapping[int, CustomerRecord]:
        found = await customers_by_id(ids)
        chosen = sorted(set(ids))
        failing, stale = set(chosen[::3]), set(chosen[1::3])
        for key in stale:
            report_stale(StaleRead(12.5, "DEPENDENCY_UNAVAILABLE", "store"), key)
        raise PartialResult(
            {key: value for key, value in found.items() if key not in failing},
            {key: DependencyUnavailableError("the store is down") for key in failing},
        )

    return some_customers_fail


async def test_errors_stale_marks_and_nulls_inside_a_page_have_graphql_cores_paths(
    engines: Engines, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The planned executor makes the path of a list item, and of its keyed fields, only when
    # an error, a stale mark or a null needs it: they must be the paths graphql-core gives.
    commerce = engines.app.state.runtime.services.commerce
    orders, customers_by_id = commerce.orders, commerce.customers_by_id

    async def a_total_fails(where: OrderFilter, page: PageRequest) -> Page[OrderRecord]:
        found: Page[OrderRecord] = await orders(where, page)
        items = [
            # A total that cannot be read (its record's cents are not a number).
            replace(record, total_cents=cast(int, None)) if index == 2 else record
            for index, record in enumerate(found.items)
        ]
        return replace(found, items=items)

    query = "{ orders(first: 9) { nodes { id total status customer { id name tier } } } }"
    # `total` is non-null, and so are the items of `nodes`: the failure nulls through the
    # item's slot (its path made then) up to `orders`.
    monkeypatch.setattr(commerce, "orders", a_total_fails)
    for _ in range(2):  # the first run learns the classes (is_type_of), the second does not
        await engines.compare(query)
    answered = await engines.send(query, None, "analyst", planned=True)
    assert [error["path"] for error in answered["errors"]] == [["orders", "nodes", 2, "total"]]
    assert answered["data"]["orders"] is None

    monkeypatch.setattr(commerce, "orders", orders)
    monkeypatch.setattr(commerce, "customers_by_id", failing_and_stale(customers_by_id))
    for _ in range(2):
        await engines.compare(query)
    assert not engines.mismatches, report(engines)
    expected = await engines.send(query, None, "analyst", planned=False)
    answered = await engines.send(query, None, "analyst", planned=True)
    paths = [error["path"] for error in answered["errors"]]
    assert paths
    assert all(path[:2] == ["orders", "nodes"] and path[3] == "customer" for path in paths)
    stale = answered["extensions"]["cache"]["stale"]
    assert stale
    assert all(entry["path"][-1] == "customer" for entry in stale)
    assert sorted(map(json.dumps, stale)) == sorted(
        map(json.dumps, expected["extensions"]["cache"]["stale"])
    )


async def test_a_page_whose_leaves_are_kept_answers_the_same(
    engines: Engines, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A cached page's orders and customers are the same objects request after request: the
    # next run copies their kept leaves (gateway/planned/kept.py) instead of filling them.
    # An error or a stale mark after that must still answer as graphql-core does.
    copied: list[bool] = []

    def counted(sources: Sequence[Any], selection: object) -> list[dict[str, Any]] | None:
        kept = kept_many(sources, selection)
        copied.append(kept is not None)
        return kept

    query = "{ orders(first: 6) { nodes { id total status customer { id name tier } } } }"
    for _ in range(2):  # the first loads into the cache, the second keeps from its records
        await engines.send(query, None, "analyst", planned=True)
    monkeypatch.setattr("dataintel.gateway.planned.run.kept_many", counted)
    await engines.compare(query)
    assert copied == [True, True]

    commerce = engines.app.state.runtime.services.commerce
    customers_by_id = commerce.customers_by_id

    monkeypatch.setattr(commerce, "customers_by_id", failing_and_stale(customers_by_id))
    await engines.compare(query)
    monkeypatch.setattr(commerce, "customers_by_id", customers_by_id)
    await engines.compare(query)
    assert not engines.mismatches, report(engines)


async def test_kept_leaves_go_with_an_invalidated_record(engines: Engines) -> None:
    # The leaves kept for a customer belong to its record object: once the cache entry is
    # invalidated, the record read afresh is another object, and its leaves are filled anew.
    query = "{ orders(first: 3) { nodes { id customer { databaseId name } } } }"
    for _ in range(3):
        answered = await engines.send(query, None, "analyst", planned=True)
    customer = answered["data"]["orders"]["nodes"][0]["customer"]
    runtime = runtime_of(engines.app)
    async with runtime.engine.begin() as connection:
        await connection.execute(
            sa.update(tables.customers)
            .where(tables.customers.c.id == customer["databaseId"])
            .values(name="Renamed Customer")
        )
    assert await runtime.platform.cache.invalidate([entity_tag("customer", customer["databaseId"])])
    answered = await engines.send(query, None, "analyst", planned=True)
    assert answered["data"]["orders"]["nodes"][0]["customer"]["name"] == "Renamed Customer"
    await engines.compare(query)
    assert not engines.mismatches, report(engines)

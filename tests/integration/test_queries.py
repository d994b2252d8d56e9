"""Every named query on the real embedded engine, over a day the project's own builders
made: the values it answers, the tables it reads, the same through the owner's endpoint."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import datetime

import pytest

from core import queries as q
from core.owner import QueryServer, read_query
from core.settings import Settings
from core.store import Store
from schemas.registry import TABLE_BY_EVENT_TYPE
from tests.factories.rows import DayRows, fair_day_rows
from tests.factories.stores import open_store

pytestmark = pytest.mark.integration

@pytest.fixture(scope="module")
def day() -> DayRows:
    return fair_day_rows()


@pytest.fixture(scope="module")
def store(day: DayRows, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """A store holding the day, every row inserted twice (a redelivery): counts must not
    see the second copy, whether or not the engine has merged it away yet."""
    store = open_store(Settings(data_dir=tmp_path_factory.mktemp("queries"),
                                namespace="queries"))
    for _ in range(2):
        for table, rows in day.rows.items():
            store.insert_json_rows(table, rows)
    yield store
    store.close()


# -- what each query must answer, worked out from the day's truth and rows ---------------
def _current_buyer(day: DayRows) -> dict[str, str]:
    """alias -> buyer of its newest alias row (what a merge moved it to)."""
    newest: dict[str, tuple[int, str]] = {}
    for row in day.decoded("buyer_aliases"):
        if row["alias"] not in newest or row["version"] >= newest[row["alias"]][0]:
            newest[row["alias"]] = (row["version"], row["buyer_id"])
    return {alias: buyer for alias, (_, buyer) in newest.items()}


def _busiest_cluster(day: DayRows) -> str:
    by_minute = day.sim.ground_truth["expected_by_cluster_minute"]
    return max(sorted(by_minute), key=lambda c: len(by_minute[c]))


def _minute(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(second=0, microsecond=0)


def _leads_by_minute(day: DayRows) -> dict[datetime, dict[str, int]]:
    cluster = _busiest_cluster(day)
    truth = day.sim.ground_truth["expected_by_cluster_minute"][cluster]
    badges: dict[datetime, set[str]] = defaultdict(set)
    for row in day.decoded("scans"):
        if row["cluster_id"] == cluster:
            badges[_minute(row["occurred_at"])].add(row["badge_id"])
    out = {}
    for minute, counts in truth.items():
        at = datetime.fromisoformat(f"{minute}:00+00:00")
        out[at] = {**dict(zip(q.STREAM_LEAD_COUNTERS, counts, strict=True)),
                   "distinct_badges": len(badges[at])}
    return out


def _unique_buyers_by_cluster(day: DayRows) -> dict[str, int]:
    current = _current_buyer(day)
    buyers: dict[str, set[str]] = defaultdict(set)
    for row in day.decoded("buyer_events"):
        if row["cluster_id"]:
            buyers[row["cluster_id"]].add(current.get(row["alias"], row["buyer_id"]))
    return {cluster: len(ids) for cluster, ids in buyers.items()}


def _badges_seen(day: DayRows) -> int:
    return len({r["badge_id"] for t in ("registrations", "scans") for r in day.decoded(t)})


EXPECTED: dict[str, Callable[[DayRows], object]] = {
    q.EVENTS_STORED.name: lambda day: {
        TABLE_BY_EVENT_TYPE[t].name: n
        for t, n in day.sim.ground_truth["expected_by_type"].items()},
    q.DEAD_LETTERS_BY_REASON.name: lambda day: day.sim.ground_truth["malformed_by_reason"],
    q.LEADS_BY_CLUSTER.name: lambda day: day.sim.ground_truth["expected_by_cluster"],
    q.STREAM_LEADS_BY_CLUSTER.name: lambda day: {
        c: {k: counts[k] for k in q.STREAM_LEAD_COUNTERS}
        for c, counts in day.sim.ground_truth["expected_by_cluster"].items()},
    q.LEADS_BY_MINUTE.name: _leads_by_minute,
    q.BADGES_SEEN.name: _badges_seen,
    q.BUYERS_RESOLVED.name: lambda day: len(set(_current_buyer(day).values())),
    q.BUYER_OF_ALIAS.name: _current_buyer,
    q.UNIQUE_BUYERS_BY_CLUSTER.name: _unique_buyers_by_cluster,
}


def params_for(named: q.NamedQuery, day: DayRows) -> dict[str, object]:
    values = {q.CLUSTER.name: _busiest_cluster(day)}
    return {p.name: values[p.name] for p in named.params}


def test_every_named_query_has_an_expectation_here() -> None:
    assert set(EXPECTED) == set(q.BY_NAME)


def test_the_day_merges_buyers_so_the_buyer_queries_see_merges(day: DayRows) -> None:
    assert day.rows.get("buyer_merges"), "the simulated day has no merge: pick another seed"
    at_resolution = {r["buyer_id"] for r in day.decoded("buyer_events")}
    assert len(set(_current_buyer(day).values())) < len(at_resolution)


@pytest.mark.parametrize("named", q.CATALOGUE, ids=lambda n: n.name)
def test_every_named_query_answers_what_the_day_holds(named: q.NamedQuery, day: DayRows,
                                                      store: Store) -> None:
    values = params_for(named, day)
    result = store.query(named.bind(store.database, values))
    assert tuple(result.columns) == named.columns and result.rows
    assert q.run(named, store.query, store.database, **values) == EXPECTED[named.name](day)


@pytest.mark.parametrize("named", q.CATALOGUE, ids=lambda n: n.name)
def test_the_engine_reads_exactly_the_tables_a_query_declares(named: q.NamedQuery,
                                                              day: DayRows,
                                                              store: Store) -> None:
    sql = named.bind(store.database, params_for(named, day))
    tree = [r[0].split() for r in store.client.query(f"EXPLAIN AST {sql}").result_rows]
    read = {words[1] for words in tree if words[0] == "TableIdentifier"}
    assert read == {f"{store.database}.{t.name}" for t in named.reads}


def test_named_queries_shape_the_same_through_the_owners_endpoint(day: DayRows,
                                                                  store: Store) -> None:
    # Other processes read through the owner (JSON over loopback): same values.
    server = QueryServer(store, store.settings)
    server.start()
    try:
        def remote(sql: str) -> q.QueryResult:
            return read_query(store.settings, sql)

        for named in q.CATALOGUE:
            values = params_for(named, day)
            assert (q.run(named, remote, store.database, **values)
                    == q.run(named, store.query, store.database, **values)), named.name
    finally:
        server.stop()

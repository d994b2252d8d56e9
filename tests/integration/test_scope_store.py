"""Scopes on the real engine: the tables a delegation reads exist with their cluster column,
and a session carrying a scope's filters sees what the scope says, no more."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.settings import Settings
from core.store import Store
from schemas.registry import INQUIRIES, SCANS
from schemas.scope import (
    DELEGATION_TABLES,
    ORGANIZER_SCOPE,
    Scope,
    delegation_scope,
    filters_literal,
)
from tests.factories.rows import DayRows, fair_day_rows
from tests.factories.stores import open_store

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def day() -> DayRows:
    return fair_day_rows(events=1500)


@pytest.fixture(scope="module")
def store(day: DayRows, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    store = open_store(Settings(data_dir=tmp_path_factory.mktemp("scope"), namespace="scope"))
    for table, rows in day.rows.items():
        store.insert_json_rows(table, rows)
    store.refresh_snapshots()
    yield store
    store.close()


def _existing(store: Store) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in
            store.client.query("SELECT database, name FROM system.tables").result_rows]


def _scoped(store: Store, scope: Scope, sql: str) -> list[tuple]:
    filters = scope.table_filters(store.database, _existing(store))
    return store.client.query(
        f"{sql} SETTINGS additional_table_filters = {filters_literal(filters)}").result_rows


def test_every_delegation_table_exists_with_its_column(store: Store) -> None:
    columns = {(r[0], r[1]) for r in store.client.query(
        "SELECT table, name FROM system.columns WHERE database = {db:String}",
        parameters={"db": store.database}).result_rows}
    for table, column in DELEGATION_TABLES.items():
        assert (table, column) in columns, table


def test_delegation_session_sees_its_cluster_only(store: Store, day: DayRows) -> None:
    db = store.database
    clusters = sorted({r["cluster_id"] for r in day.decoded(SCANS.name) if r["cluster_id"]})
    cluster = clusters[0]
    scope = delegation_scope(cluster)
    expected = len({r["event_id"] for r in day.decoded(SCANS.name) if r["cluster_id"] == cluster})
    assert 0 < expected < len(day.decoded(SCANS.name))
    got = _scoped(store, scope, f"SELECT count(), groupUniqArray(cluster_id) FROM {db}.scans FINAL")
    assert got == [(expected, [cluster])]
    # every readable table shows its cluster's rows only; the rest read as empty
    for table in DELEGATION_TABLES:
        rows = _scoped(store, scope, f"SELECT DISTINCT cluster_id FROM {db}.{table}")
        assert {r[0] for r in rows} <= {cluster}, table
    assert _scoped(store, scope, f"SELECT count() FROM {db}.{INQUIRIES.name}") == [(0,)]
    assert _scoped(store, scope, f"SELECT count() FROM {db}.buyers") == [(0,)]
    assert _scoped(store, scope, "SELECT count() FROM system.parts") == [(0,)]
    listed = {r[0] for r in _scoped(store, scope, "SELECT name FROM system.tables")}
    assert listed == set(DELEGATION_TABLES)
    assert _scoped(store, scope, "SELECT name FROM system.databases") == [(db,)]
    columns = _scoped(store, scope, "SELECT DISTINCT table FROM system.columns")
    assert {r[0] for r in columns} == set(DELEGATION_TABLES)
    assert _scoped(store, scope, "SELECT count() FROM information_schema.tables") == [(0,)]
    # filters apply inside views: the view over leads_minute_parts sums the cluster only
    totals = _scoped(store, scope, f"SELECT DISTINCT cluster_id FROM {db}.leads_per_cluster_minute")
    assert totals == [(cluster,)]


def test_organizer_session_reads_its_database_whole(store: Store) -> None:
    db = store.database
    whole = store.client.query(f"SELECT count() FROM {db}.{INQUIRIES.name}").result_rows
    assert whole[0][0] > 0
    assert _scoped(store, ORGANIZER_SCOPE, f"SELECT count() FROM {db}.{INQUIRIES.name}") == whole
    assert _scoped(store, ORGANIZER_SCOPE, "SELECT count() FROM system.parts") == [(0,)]
    listed = {r[0] for r in _scoped(store, ORGANIZER_SCOPE, "SELECT name FROM system.tables")}
    assert INQUIRIES.name in listed and "parts" not in listed

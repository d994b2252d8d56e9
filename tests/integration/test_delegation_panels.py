"""Every delegation dashboard's panels through the HTTP interface as that delegation (its
filters, readonly=1, the pre-check) answer exactly what they answer read directly by the
owner: the engine's filters change no number a delegation's dashboard shows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC
from typing import Any

import clickhouse_connect
import pytest

from core.owner import QueryServer
from core.reads import QueryResult
from core.settings import Settings
from core.store import Store
from core.users import Users
from dashboards.build import build_all
from dashboards.macros import TimeRange
from dashboards.panel_sql import run_panels, variable_values
from schemas.reference import CLUSTERS
from schemas.scope import delegation_scope
from tests.factories.rows import fair_day_rows
from tests.factories.stores import open_store

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def owner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, int]]:
    data = tmp_path_factory.mktemp("panels")
    settings = Settings(data_dir=data, namespace="panels", http_port=0)
    store = open_store(settings)
    for table, rows in fair_day_rows(events=5000).rows.items():
        store.insert_json_rows(table, rows)
    store.refresh_snapshots()
    users = Users()
    for cluster in CLUSTERS:
        users = users.add(f"delegation_{cluster.id}", delegation_scope(cluster.id), "pw")
    users.save(data / "users.json")
    server = QueryServer(store, settings)
    server.start()
    assert server.interface is not None
    yield store, server.interface.port
    server.stop()
    store.close()


@pytest.mark.parametrize("cluster", [c.id for c in CLUSTERS])
def test_every_panel_answers_as_the_direct_read(owner: tuple[Store, int], cluster: str) -> None:
    store, port = owner
    first, last = store.query("SELECT min(occurred_at), max(occurred_at)"
                              " FROM leadloom.scans").rows[0]
    span = TimeRange(first.replace(tzinfo=UTC), last.replace(tzinfo=UTC), interval_s=60)
    built = next(b for b in build_all(store.settings) if b.file.cluster_id == cluster)
    client = clickhouse_connect.get_client(host="127.0.0.1", port=port, password="pw",
                                           username=f"delegation_{cluster}",
                                           database="leadloom")

    def scoped(sql: str, client: Any = client) -> QueryResult:
        result = client.query(sql)
        return QueryResult(list(result.column_names), [list(r) for r in result.result_rows])

    values = variable_values(built, store.query, span)
    direct = run_panels(built, store.query, span, values)
    through = run_panels(built, scoped, span, values)
    assert len(through) == len(built.spec.panels)
    for a, b in zip(direct, through, strict=True):
        assert b.result == a.result, (a.spec.id, a.sql)
    assert any(run.result.rows for run in through)

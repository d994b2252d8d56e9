"""The store on the real embedded engine: migrations, idempotent inserts, one owner."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from core.migrations import migrate
from core.owner import QueryServer, read_query
from core.reads import StoreError
from core.settings import Settings
from core.store import Store
from schemas.registry import ALL_TABLES
from streams.rows import SourceRef, event_row
from streams.validate import Accepted, validate
from tests.factories import events as f
from tests.factories.stores import MIGRATIONS, open_store

pytestmark = pytest.mark.integration


@pytest.fixture
def store(tmp_path):
    settings = Settings(data_dir=tmp_path, namespace="storetest")
    store = open_store(settings)
    yield store
    store.close()


def test_migrations_create_every_registry_table_with_its_columns(store: Store) -> None:
    for table in ALL_TABLES:
        described = store.query(f"DESCRIBE TABLE {store.database}.{table.name}")
        assert [r[0] for r in described.rows] == list(table.columns), table.name


def test_migrations_are_idempotent(store: Store) -> None:
    assert migrate(store.client, store.database, MIGRATIONS) == []
    versions = store.query(f"SELECT version FROM {store.database}.schema_migrations").rows
    assert sorted(v[0] for v in versions) == [m.version for m in MIGRATIONS]


def test_inserting_the_same_rows_twice_counts_once(store: Store) -> None:
    rows = []
    for n in range(50):
        doc = f.scan(badge_id=f"B-{n % 7}")
        outcome = validate(f.encode(doc), "booth_scan", 65536)
        assert isinstance(outcome, Accepted)
        rows.append(orjson.dumps(event_row(outcome.event, outcome.enrichment,
                                           SourceRef("t", 0, n))))
    store.insert_json_rows("scans", rows)
    store.insert_json_rows("scans", rows[:20])  # a retried, partially repeated batch
    db = store.database
    assert store.query(f"SELECT uniqExact(event_id) FROM {db}.scans").rows == [[50]]
    assert store.query(f"SELECT count() FROM {db}.scans FINAL").rows == [[50]]
    assert store.query(f"SELECT uniqExact(badge_id) FROM {db}.scans").rows == [[7]]
    stamp = store.query(f"SELECT any(occurred_at) FROM {db}.scans").rows[0][0]
    assert stamp.replace(tzinfo=UTC) == f.T0


def test_a_second_owner_is_refused_and_readers_go_through_the_owner(store: Store) -> None:
    settings = store.settings
    with pytest.raises(StoreError, match="owned by another process"):
        open_store(settings)
    server = QueryServer(store, settings)
    server.start()
    try:
        result = read_query(settings, f"SELECT count() FROM {store.database}.scans")
        assert result.rows == [[0]]
        with pytest.raises(StoreError, match="only read queries"):
            read_query(settings, f"DROP TABLE {store.database}.scans")
        with pytest.raises(StoreError):
            read_query(settings, "SELECT no_such_column FROM leadloom.scans")
    finally:
        server.stop()


def test_insert_accepts_generated_timestamps(store: Store) -> None:
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    row = {"cluster_id": "keqiao", "minute": "2026-03-26 02:15:00", "source_topic": "t",
           "source_partition": 0, "scans": 3, "inquiries": 0, "procurement_steps": 0,
           "distinct_badges": 2, "version": 5, "updated_at": now}
    older = {**row, "scans": 2, "version": 3}
    store.insert_json_rows("leads_minute_parts", [orjson.dumps(row), orjson.dumps(older)])
    got = store.query(f"SELECT scans, distinct_badges FROM {store.database}."
                      "leads_per_cluster_minute").rows
    assert got == [[3, 2]]

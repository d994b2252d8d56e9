"""Upgrading a store with data: event_id becomes the identity of a stored event (006) and
dead letters collapse on their origin (007), on the real embedded engine.

Each test opens a store at migration 005 (the schema before issue 8), fills it, including
the duplicates the old keys kept apart, and then applies the rest.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from core.migrations import migrate, parse_statements
from core.settings import Settings
from core.store import Store
from schemas.deadletter import Reason
from schemas.registry import ALL_TABLES, DEAD_LETTER_TABLE, EVENT_TABLES, ORIGIN_HEADER
from streams.rows import SourceRef, dead_letter_row, event_row
from streams.validate import Accepted, Rejected, validate
from tests.factories import events as f
from tests.factories.stores import MIGRATIONS

pytestmark = pytest.mark.integration

BEFORE = [m for m in MIGRATIONS if m.version <= 5]
INGESTED = datetime(2026, 3, 26, 4, 0, tzinfo=UTC)  # old rows' ingest time, a fixed past


@pytest.fixture
def old_store(tmp_path) -> Iterator[Store]:
    store = Store(Settings(data_dir=tmp_path, namespace="upgrade"), migrations=BEFORE)
    try:
        _fill(store)
        yield store
    finally:
        store.close()


def _row(doc: dict, offset: int, ingested: datetime, **changes: Any) -> bytes:
    outcome = validate(f.encode(doc), doc["event_type"], 65536)
    assert isinstance(outcome, Accepted), outcome
    row = event_row(outcome.event, outcome.enrichment, SourceRef("t.raw", 0, offset))
    row.update(changes, ingested_at=ingested.isoformat(timespec="milliseconds"))
    return orjson.dumps(row)


def _fill(store: Store) -> None:
    """Rows in every raw table, among them one event stored twice under the old keys: once
    in another cluster (an enrichment fix replayed) and once on another day (a corrected
    device clock). Two dead letters."""
    later = INGESTED + timedelta(minutes=5)
    scans = [_row(f.scan(badge_id=f"B-{n}"), n, INGESTED) for n in range(20)]
    fixed = orjson.loads(scans[0])
    scans.append(_row(f.scan(badge_id="B-0"), 100, later, event_id=fixed["event_id"],
                      cluster_id="humen-not-this-one"))
    moved = orjson.loads(scans[1])
    scans.append(_row(f.scan(badge_id="B-1"), 101, later, event_id=moved["event_id"],
                      occurred_at="2026-03-27T02:15:30.000+00:00"))
    store.insert_json_rows("scans", scans)
    store.insert_json_rows("inquiries", [_row(f.inquiry(), n, INGESTED) for n in range(5)])
    store.insert_json_rows("procurement_steps",
                           [_row(f.procurement(), n, INGESTED) for n in range(5)])
    store.insert_json_rows("registrations",
                           [_row(f.registration(badge_id=f"B-{n}"), n, INGESTED)
                            for n in range(5)])
    store.insert_json_rows("supplier_profiles", [orjson.dumps({
        "event_id": f"profile-{n}", "event_type": "supplier_profile", "fair_id": "CIFW-2026-AW",
        "occurred_at": "2026-03-26T01:00:00.000+00:00", "cluster_id": "keqiao",
        "exhibitor_id": f"EX-{n}", "monthly_capacity": 1000 + n,
        "ingested_at": INGESTED.isoformat(timespec="milliseconds"),
    }) for n in range(3)])
    old_letters = []
    for n in range(2):
        row = dead_letter_row(Rejected(Reason.BAD_JSON, f"bad {n}"),
                              SourceRef("t.raw.scans", 2, 40 + n), b"{", INGESTED)
        # the old table has no origin columns
        old_letters.append(orjson.dumps({k: v for k, v in row.items()
                                         if not k.startswith("origin_")}))
    store.insert_json_rows(DEAD_LETTER_TABLE.name, old_letters)


def _newest_rows(store: Store, table: str, final: bool) -> dict[str, dict[str, Any]]:
    """Every stored event's row; without FINAL the newest ingest of each event_id."""
    result = store.client.query(
        f"SELECT * FROM {store.database}.{table} {'FINAL' if final else ''} "
        "ORDER BY event_id, ingested_at")
    rows: dict[str, dict[str, Any]] = {}
    for values in result.result_rows:
        row = dict(zip(result.column_names, values, strict=True))
        rows[row["event_id"]] = row  # later ingests overwrite earlier ones
    return rows


def _count(store: Store, sql: str) -> int:
    return int(store.client.query(sql.format(db=store.database)).result_rows[0][0])


def _assert_upgraded(store: Store, before: dict[str, dict[str, dict[str, Any]]]) -> None:
    db = store.database
    for table in ALL_TABLES:  # every table and view as the registry spells it
        described = store.client.query(f"DESCRIBE TABLE {db}.{table.name}").result_rows
        assert [r[0] for r in described] == list(table.columns), table.name
    leftovers = store.client.query(
        f"SELECT name FROM system.tables WHERE database = '{db}' AND name LIKE '%\\_\\_00%'")
    assert leftovers.result_rows == []
    for table in EVENT_TABLES:
        keys = store.client.query(
            f"SELECT sorting_key, partition_key FROM system.tables WHERE database = '{db}'"
            f" AND name = '{table.name}'").result_rows
        assert keys == [("event_id", "")], table.name
        after = _newest_rows(store, table.name, final=True)
        # columns added since (017: scans.dwell_seconds; 018: source_line) read as NULL or
        # as their type's default (a line: 0) in the old rows
        added = set(table.optional)
        assert all(row[c] in (None, 0) for row in after.values() for c in added), table.name
        after = {k: {c: v for c, v in row.items() if c not in added}
                 for k, row in after.items()}
        # every event survived, each as its newest row, and duplicates collapsed
        assert after == before[table.name], table.name
        assert _count(store, f"SELECT count() FROM {{db}}.{table.name} FINAL") == len(after)
    letters = store.client.query(
        f"SELECT source_topic, source_partition, source_offset, origin_topic, "
        f"origin_partition, origin_offset, reason FROM {db}.dead_letters FINAL "
        "ORDER BY source_offset").result_rows
    assert letters == [("t.raw.scans", 2, 40, "t.raw.scans", 2, 40, "bad_json"),
                       ("t.raw.scans", 2, 41, "t.raw.scans", 2, 41, "bad_json")]
    # 018: a dead letter's origin includes its line in a batched message
    keys = store.client.query(
        f"SELECT name, sorting_key FROM system.tables WHERE database = '{db}'"
        " AND name IN ('dead_letters', 'dead_letter_retries') ORDER BY name").result_rows
    assert keys == [("dead_letter_retries", "origin_topic, origin_partition, origin_offset,"
                     " raw_sha256, retried_at, audit_id, origin_line"),
                    ("dead_letters", "origin_topic, origin_partition, origin_offset,"
                     " raw_sha256, origin_line")]
    keys = store.client.query(
        f"SELECT sorting_key, partition_key FROM system.tables WHERE database = '{db}'"
        " AND name = 'buyer_events'").result_rows
    assert keys == [("event_id", "")]
    # the views over the tables still answer
    for view in ("leads_per_cluster_minute", "unique_buyers_by_cluster", "unique_buyers_total"):
        store.client.query(f"SELECT * FROM {db}.{view}")


def _snapshot(store: Store) -> dict[str, dict[str, dict[str, Any]]]:
    return {t.name: _newest_rows(store, t.name, final=False) for t in EVENT_TABLES}


def test_the_old_keys_kept_a_replayed_event_twice(old_store: Store) -> None:
    # The defect 006 removes. The event replayed into another cluster has two rows even
    # under FINAL; the one moved to another day collapses under FINAL only, never on disk
    # (merges stay within a partition), so every read without FINAL counts it twice.
    assert _count(old_store, "SELECT uniqExact(event_id) FROM {db}.scans") == 20
    assert _count(old_store, "SELECT count() FROM {db}.scans FINAL") == 21
    old_store.client.command(f"OPTIMIZE TABLE {old_store.database}.scans FINAL")
    assert _count(old_store, "SELECT count() FROM {db}.scans") == 22


def test_upgrade_keeps_every_event_once_as_its_newest_row(old_store: Store) -> None:
    before = _snapshot(old_store)
    assert migrate(old_store.client, old_store.database, MIGRATIONS) == [
        m.version for m in MIGRATIONS if m.version > 5]
    _assert_upgraded(old_store, before)
    scans = _newest_rows(old_store, "scans", final=True)
    assert len(scans) == 20
    assert sum(r["cluster_id"] == "humen-not-this-one" for r in scans.values()) == 1


def test_an_upgrade_interrupted_midway_runs_again_to_the_same_end(old_store: Store) -> None:
    before = _snapshot(old_store)
    db = old_store.database
    six = next(m for m in MIGRATIONS if m.version == 6)
    statements = parse_statements(six.sql.replace("{database}", db))
    # Interrupted after registrations were exchanged (their old table not yet dropped) and
    # scans copied twice (a copy interrupted and started again), before their exchange.
    stop = next(i for i, s in enumerate(statements)
                if s.sql.startswith(f"EXCHANGE TABLES {db}.scans"))
    for statement in statements[:stop]:
        if statement.sql.startswith(f"DROP TABLE IF EXISTS {db}.registrations"):
            continue
        old_store.client.command(statement.sql)
    old_store.client.command(next(s.sql for s in statements
                                  if s.sql.startswith(f"INSERT INTO {db}.scans__006")))
    assert migrate(old_store.client, db, MIGRATIONS) == [m.version for m in MIGRATIONS
                                                         if m.version > 5]
    _assert_upgraded(old_store, before)


def test_after_the_upgrade_a_replayed_event_replaces_its_row(old_store: Store) -> None:
    migrate(old_store.client, old_store.database, MIGRATIONS)
    db = old_store.database
    event = next(iter(_newest_rows(old_store, "scans", final=True).values()))
    replayed = dict(event, cluster_id="shaoxing-fixed", source_offset=777,
                    occurred_at=event["occurred_at"] - timedelta(hours=30))
    replayed.pop("ingested_at")  # set by the insert: the newest ingest wins
    old_store.insert_json_rows("scans", [orjson.dumps(replayed, default=str)])
    rows = old_store.client.query(
        f"SELECT cluster_id, source_offset FROM {db}.scans FINAL "
        f"WHERE event_id = '{event['event_id']}'").result_rows
    assert rows == [("shaoxing-fixed", 777)]
    assert _count(old_store, "SELECT count() FROM {db}.scans FINAL") == 20
    old_store.client.command(f"OPTIMIZE TABLE {db}.scans FINAL")
    assert _count(old_store, "SELECT count() FROM {db}.scans") == 20


def test_after_the_upgrade_a_re_failed_replay_replaces_its_dead_letter(old_store: Store) -> None:
    migrate(old_store.client, old_store.database, MIGRATIONS)
    first = SourceRef("t.raw.scans", 2, 40)
    again = dead_letter_row(Rejected(Reason.INVALID_FIELD, "still bad"),
                            SourceRef("t.raw.scans", 5, 9000), b"{", datetime.now(UTC),
                            headers={ORIGIN_HEADER: str(first).encode()})
    old_store.insert_json_rows(DEAD_LETTER_TABLE.name, [orjson.dumps(again)])
    rows = old_store.client.query(
        f"SELECT source_partition, source_offset, reason FROM {old_store.database}.dead_letters"
        " FINAL WHERE origin_offset = 40").result_rows
    assert rows == [(5, 9000, "invalid_field")]
    assert _count(old_store, "SELECT count() FROM {db}.dead_letters FINAL") == 2


def test_after_the_upgrade_a_replayed_buyer_event_counts_once_where_it_now_belongs(
    old_store: Store,
) -> None:
    migrate(old_store.client, old_store.database, MIGRATIONS)
    db = old_store.database
    event = {"event_id": "scan-replayed", "event_type": "booth_scan",
             "fair_id": "CIFW-2026-AW", "occurred_at": "2026-03-26T02:15:30.000+00:00",
             "cluster_id": "keqiao", "exhibitor_id": "EX-1", "booth_id": "K-1",
             "alias": "rec-1", "buyer_id": "buyer-1",
             "resolved_at": "2026-03-26T02:15:31.000+00:00"}
    old_store.insert_json_rows("buyer_events", [orjson.dumps(event)])
    # replayed after an enrichment fix: another cluster, and a corrected clock (next day)
    fixed = dict(event, cluster_id="humen", occurred_at="2026-03-27T02:15:30.000+00:00")
    old_store.insert_json_rows("buyer_events", [orjson.dumps(fixed)])
    by_cluster = old_store.client.query(
        f"SELECT cluster_id, buyers, events FROM {db}.unique_buyers_by_cluster"
        " ORDER BY cluster_id").result_rows
    assert by_cluster == [("humen", 1, 1)]
    by_hour = old_store.client.query(
        f"SELECT toString(hour) FROM {db}.unique_buyers_by_hour").result_rows
    assert by_hour == [("2026-03-27 02:00:00",)]

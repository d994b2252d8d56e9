"""booth_scan version 2 rolled out mid-stream: nothing lost (real broker, pipeline, engine).

The pipeline starts on a store migrated up to 016 only (its migrations folder holds 001-016);
version 1 scans stream, then version 2 scans (with and without dwell_seconds, under the old
and the new scanner name) while version 1 scans are still in flight. The version 2 rows
that carry dwell_seconds reach a store without the column: the sink holds them (no
store_refused dead letter). Migration 017 is then deployed into the folder while the
pipeline runs; the running owner applies it and the held rows are stored. Every scan is
stored exactly once, the dwell times as sent, leads and scanned badges exact.
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from pathlib import Path

import pytest

from core import queries as q
from core.kafka import producer
from core.settings import Settings
from infra.clickhouse import MIGRATIONS_DIR
from leadloom.pipeline import Pipeline
from schemas.reference import booth_roster
from tests.factories import events as f

pytestmark = pytest.mark.integration


def _scan(n: int, version: int, *, dwell: int | None = None, new_name: bool = False) -> dict:
    booth = booth_roster()[n % 40]
    doc = f.scan(badge_id=f"B-{n % 97:06d}", booth_id=booth.id, scanner_device=f"SCN-{n}")
    doc["schema_version"] = version
    if new_name:
        doc["payload"]["scanner_id"] = doc["payload"].pop("scanner_device")
    if dwell is not None:
        doc["payload"]["dwell_seconds"] = dwell
    return doc


def test_version_2_scans_mid_stream_with_the_migration_applied_while_running(
    pipeline_settings: Settings, tmp_path: Path,
) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    for sql in sorted(MIGRATIONS_DIR.glob("0*.sql")):
        if int(sql.name[:3]) <= 16:
            shutil.copy(sql, folder)
    pipe = Pipeline(pipeline_settings, workers=1, migrations_dir=folder, migration_check_s=1.0)
    pipe.start()
    try:
        _run(pipe, folder)
    finally:
        pipe.stop()


def _run(pipe: Pipeline, folder: Path) -> None:
    assert pipe.store is not None
    query, db = pipe.store.query, pipe.settings.clickhouse_database
    columns = {r[0] for r in query(f"SELECT name FROM system.columns WHERE database = '{db}'"
                                   " AND table = 'scans'").rows}
    assert "scanner_device" in columns and "dwell_seconds" not in columns
    topic = pipe.settings.topics.raw("booth_scan")
    prod = producer(pipe.settings)
    docs: list[dict] = []

    def send(doc: dict) -> None:
        docs.append(doc)
        prod.send(topic, key=doc["payload"]["badge_id"].encode(), value=f.encode(doc))

    for n in range(300):  # version 1 in flight ...
        send(_scan(n, 1))
    for n in range(300, 600):  # ... while version 2 arrives, interleaved with version 1
        kind = n % 4
        if kind == 0:
            send(_scan(n, 1))
        elif kind == 1:
            send(_scan(n, 2, new_name=True))  # no dwell: stored before 017
        elif kind == 2:
            send(_scan(n, 2, dwell=n, new_name=True))
        else:
            send(_scan(n, 2, dwell=n * 7 % 86_401))  # the old scanner name in version 2
    prod.flush()
    # The rows with dwell_seconds meet a store without the column: held, not dead-lettered.
    deadline = time.monotonic() + 120
    while pipe.sink is not None and pipe.sink.stats.pending_migration_retries == 0:
        assert time.monotonic() < deadline, "no row was held for the missing column"
        time.sleep(0.2)
    time.sleep(2)  # held across several retries and migration checks
    assert query(f"SELECT count() FROM {db}.dead_letters").rows[0][0] == 0
    assert "pending migration" in pipe.sink.faults
    for n in range(600, 700):  # more version 1 while the rows wait
        send(_scan(n, 1))
    prod.flush()
    prod.close()
    # Deploy 017: the running owner applies it at its next check (or the sink's next retry).
    shutil.copy(MIGRATIONS_DIR / "017_scan_dwell_seconds.sql", folder)
    assert pipe.wait_idle(180), f"not idle: lag {pipe.lag()}"

    applied = {r[0] for r in query(f"SELECT version FROM {db}.schema_migrations").rows}
    assert 17 in applied
    stored = {r[0]: (r[1], r[2]) for r in query(
        f"SELECT event_id, scanner_device, dwell_seconds FROM {db}.scans FINAL").rows}
    assert query(f"SELECT count() FROM {db}.scans").rows[0][0] == len(docs)  # each once
    expected = {d["event_id"]: (d["payload"].get("scanner_id") or d["payload"]["scanner_device"],
                                d["payload"].get("dwell_seconds")) for d in docs}
    assert stored == expected
    assert sum(v[1] is not None for v in stored.values()) == 150
    assert query(f"SELECT count() FROM {db}.dead_letters").rows[0][0] == 0
    assert "pending migration" not in pipe.sink.faults
    # leads and scanned badges per cluster exact, in the tables and in the stream's aggregate
    booths = {b.id: b.cluster_id for b in booth_roster()}
    by_cluster = Counter(booths[d["payload"]["booth_id"]] for d in docs)
    badges: dict[str, set[str]] = {}
    for d in docs:
        badges.setdefault(booths[d["payload"]["booth_id"]], set()).add(d["payload"]["badge_id"])
    leads = q.run(q.LEADS_BY_CLUSTER, query, db)
    assert {c: v["scans"] for c, v in leads.items() if v["scans"]} == dict(by_cluster)
    assert {c: v["distinct_badges"] for c, v in leads.items() if v["scans"]} == {
        c: len(b) for c, b in badges.items()}
    streamed = q.run(q.STREAM_LEADS_BY_CLUSTER, query, db)
    assert {c: v["scans"] for c, v in streamed.items() if v["scans"]} == dict(by_cluster)


def test_a_running_owner_applies_online_migrations_in_order_only(tmp_path: Path) -> None:
    from core.migrations import Migration, load_migrations
    from core.store import Store

    upto16 = [m for m in load_migrations(MIGRATIONS_DIR) if m.version <= 16]
    offline = Migration(17, "offline", "CREATE TABLE IF NOT EXISTS {database}.x17 (a UInt8)"
                                       " ENGINE = MergeTree ORDER BY a")
    online = Migration(18, "online", "-- online: a new table\nCREATE TABLE IF NOT EXISTS"
                                     " {database}.x18 (a UInt8) ENGINE = MergeTree ORDER BY a")
    source = [*upto16, offline, online]
    store = Store(Settings(data_dir=tmp_path, namespace="online"), migrations=upto16,
                  migrations_source=lambda: source)
    try:
        assert store.apply_online_migrations() == []  # 18 waits behind the offline 17
        source[len(upto16)] = Migration(17, "now online", "-- online: yes\n" + offline.sql)
        assert store.apply_online_migrations() == [17, 18]
        assert store.apply_online_migrations() == []
    finally:
        store.close()

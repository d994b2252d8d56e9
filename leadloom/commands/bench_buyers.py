"""``leadloom bench --unique-buyers``: what honouring merges costs, two ways, at fair scale.

Unique-buyer metrics must follow merges within seconds. Two designs:

- query time: the views resolve every buyer event through the alias -> canonical
  mapping when read (``unique_buyers_by_*``); a merge costs a few alias rows;
- recompute: aggregates are stored, and every merge recomputes the clusters the two
  buyers touched (exact distinct counts cannot be decremented, so an affected cluster
  is aggregated again from its events); reads are then a small table scan.

This fills a fresh embedded store of its own with a synthetic fair of ``events`` buyer
events over ``buyers`` identity records on the real booth roster, then times both.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

from core.migrations import load_migrations
from core.settings import Settings
from core.store import Store
from infra.clickhouse import MIGRATIONS_DIR
from leadloom.commands.session import STAMP_FORMAT, refuse_server_database, run_database
from schemas.events import EventType
from schemas.reference import booth_roster
from schemas.registry import (
    BUYER_ALIASES,
    BUYER_EVENTS_RESOLVED,
    BUYER_EVENTS_TABLE,
    UNIQUE_BUYERS_BY_BOOTH,
    UNIQUE_BUYERS_BY_CLUSTER,
    UNIQUE_BUYERS_BY_HOUR,
    UNIQUE_BUYERS_TOTAL,
)

FAIR = "CIFW-2026-AW"
_MATERIALISED = "bench_unique_buyers_by_cluster"


def run(settings: Settings, events: int, buyers: int, merges: int,
        progress: Callable[[str], None], allow_server_database: bool = False
        ) -> dict[str, object]:
    """Fill a store and database of the benchmark's own and time both designs.

    Like demo and bench, it never writes into the configured database: embedded, a fresh
    store under ``data_dir/bench``; on a server (only with ``allow_server_database``), a
    database ``<namespace>_bench_buyers_<time>``, left for inspection.
    """
    refuse_server_database(settings, allow_server_database, "leadloom bench --unique-buyers")
    stamp = datetime.now(UTC).strftime(STAMP_FORMAT)
    data_dir = settings.data_dir / "bench" / f"{stamp}-buyers"
    db = run_database(f"{settings.namespace}-bench-buyers-{stamp}")
    store = Store(settings.model_copy(update={"data_dir": data_dir, "clickhouse_database": db}),
                  migrations=load_migrations(MIGRATIONS_DIR))
    try:
        progress(f"storing into database {db}")
        progress(f"filling {events} buyer events over {buyers} identity records")
        _fill(store, db, events, buyers)
        result: dict[str, object] = {"database": db, "events": events,
                                     "identity_records": buyers}
        for view in (UNIQUE_BUYERS_BY_CLUSTER, UNIQUE_BUYERS_BY_BOOTH, UNIQUE_BUYERS_BY_HOUR,
                     UNIQUE_BUYERS_TOTAL):
            result[f"query_ms_{view.name}"] = _median_ms(
                lambda v=view: store.query(f"SELECT * FROM {db}.{v.name}"))
        progress(f"{merges} merges, resolved at query time and by recomputing")
        store.client.command(
            f"CREATE TABLE IF NOT EXISTS {db}.{_MATERIALISED} (fair_id String, cluster_id String,"
            " buyers UInt64, version UInt64) ENGINE = ReplacingMergeTree(version)"
            " ORDER BY (fair_id, cluster_id)")
        started = time.perf_counter()
        _recompute(store, db, None, version=0)
        result["recompute_all_ms"] = round((time.perf_counter() - started) * 1000, 1)
        visible, recompute = [], []
        for n in range(1, merges + 1):
            survivor, absorbed = f"r{2 * n}", f"r{2 * n + 1}"
            started = time.perf_counter()
            store.client.command(
                f"INSERT INTO {db}.{BUYER_ALIASES.name} (fair_id, alias, buyer_id, version,"
                f" updated_at) VALUES ('{FAIR}', '{absorbed}', 'buyer:{survivor}', {n + 1},"
                " now64(3))")
            store.query(f"SELECT * FROM {db}.{UNIQUE_BUYERS_BY_CLUSTER.name}")
            visible.append(time.perf_counter() - started)
            started = time.perf_counter()
            clusters = [r[0] for r in store.query(
                f"SELECT DISTINCT cluster_id FROM {db}.{BUYER_EVENTS_TABLE.name}"
                f" WHERE alias IN ('{survivor}', '{absorbed}')").rows]
            _recompute(store, db, clusters, version=n)
            recompute.append(time.perf_counter() - started)
        result["merge_visible_query_time_ms"] = _ms(statistics.median(visible))
        result["merge_recompute_ms"] = _ms(statistics.median(recompute))
        result["query_ms_materialised"] = _median_ms(
            lambda: store.query(f"SELECT * FROM {db}.{_MATERIALISED} FINAL"))
        check = store.query(
            f"SELECT (SELECT groupArray((cluster_id, buyers)) FROM (SELECT cluster_id, buyers"
            f" FROM {db}.{UNIQUE_BUYERS_BY_CLUSTER.name} ORDER BY cluster_id)) ="
            f" (SELECT groupArray((cluster_id, buyers)) FROM (SELECT cluster_id, buyers"
            f" FROM {db}.{_MATERIALISED} FINAL ORDER BY cluster_id))").rows[0][0]
        result["both_agree"] = bool(check)
        return result
    finally:
        store.close()


def _fill(store: Store, db: str, events: int, buyers: int) -> None:
    booths = booth_roster()
    ids = "[" + ",".join(f"'{b.id}'" for b in booths) + "]"
    clusters = "[" + ",".join(f"'{b.cluster_id}'" for b in booths) + "]"
    # Some buyers are far busier than others: aliases follow a skewed (squared) distribution.
    store.client.command(
        f"INSERT INTO {db}.{BUYER_EVENTS_TABLE.name} (event_id, event_type, fair_id,"
        " occurred_at, cluster_id, exhibitor_id, booth_id, alias, buyer_id, resolved_at)"
        f" SELECT toString(number), '{EventType.BOOTH_SCAN.value}', '{FAIR}',"
        " toDateTime64('2026-03-26 01:00:00', 3, 'UTC') + toIntervalSecond(number % 32400),"
        f" {clusters}[1 + cityHash64(number, 1) % {len(booths)}], '',"
        f" {ids}[1 + cityHash64(number, 1) % {len(booths)}],"
        f" concat('r', toString(toUInt64(pow(cityHash64(number, 2) % 1000000 / 1000000, 2)"
        f" * {buyers}))), '', now64(3) FROM numbers({events})")
    store.client.command(
        f"INSERT INTO {db}.{BUYER_ALIASES.name} (fair_id, alias, buyer_id, version, updated_at)"
        f" SELECT '{FAIR}', concat('r', toString(number)), concat('buyer:r', toString(number)),"
        f" 1, now64(3) FROM numbers({buyers})")


def _recompute(store: Store, db: str, clusters: list[str] | None, version: int) -> None:
    where = "" if clusters is None else "WHERE cluster_id IN (" + ",".join(
        f"'{c}'" for c in clusters) + ")"
    store.client.command(
        f"INSERT INTO {db}.{_MATERIALISED} SELECT fair_id, cluster_id, uniqExact(buyer_id),"
        f" {version} FROM {db}.{BUYER_EVENTS_RESOLVED.name} {where} GROUP BY fair_id, cluster_id")


def _median_ms(fn: Callable[[], object], runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return _ms(statistics.median(times))


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)

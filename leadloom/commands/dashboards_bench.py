"""``leadloom bench --dashboards``: how fast every panel of every dashboard answers.

The issue's bar, on the embedded engine and a 1M-event fair: the slowest panel query under
300 ms, the wall's queries together under 1.5 s. The fair is ``bench --views``' own
(``leadloom.commands.bench_views.build_fair``: a fair of ``events`` valid events in a store
and database of the benchmark's own), its snapshots refreshed once before timing, as the
store owner keeps them. The ops tables get what a running pipeline leaves
(``leadloom.commands.ops_history``: 30 days of pipeline metrics and of ops command runs,
dead letters of 1% of the events during the fair).

Each dashboard is built for that database; its variables take the value Grafana would
start with; each panel's SQL from the JSON model is expanded over the whole fair's span
(every day: more than a wall's "today", so an upper bound; the ops dashboard over the last
:data:`OPS_HOURS`, more than its default hour) with the interval Grafana would
pick for about 1,000 points, and run through the store's read path (``Store.query``: the
engine's checks, ``readonly=1``), as ``leadloom sql`` and the owner's endpoint run reads:
one warm-up, then ``RUNS`` runs, the median (p50) reported. The wall's total is the sum of
its panels' medians plus its variable query: what one refresh of the wall costs if the
panels ran one after another.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from core.migrations import load_migrations
from core.settings import Settings
from core.store import Store
from infra.clickhouse import MIGRATIONS_DIR
from leadloom.commands import ops_history
from leadloom.commands.bench_views import build_fair
from leadloom.commands.session import STAMP_FORMAT, refuse_server_database, run_database
from schemas.registry import SCANS

RUNS = 5
PANEL_BAR_MS = 300.0
WALL_BAR_MS = 1500.0
OPS_HOURS = 24  # the ops dashboard's range: a day (its default is the last hour)


def run(settings: Settings, events: int, progress: Callable[[str], None],
        allow_server_database: bool = False) -> dict[str, Any]:
    """Build the fair, refresh its snapshots, time every panel of every dashboard.

    Returns ``{"database", "events", "range", "interval_s", "dashboards", "panels",
    "panels_p50_ms" ({"<uid>/<panel id> <title>": ms}), "slowest" ({"panel", "p50_ms"}),
    "wall_ms" (variable + panels), "dashboard_ms" (per uid), "panel_under_300ms",
    "wall_under_1500ms"}``. Never writes into the configured database (see
    ``bench_views.run``); ``ValueError`` for ``events`` < 1.
    """
    from dashboards.build import build_all
    from dashboards.macros import TimeRange, expand
    from dashboards.ops import OPS_UID
    from dashboards.panel_sql import panel_sql, variable_values
    from dashboards.wall import WALL_UID

    if events < 1:
        raise ValueError("events must be >= 1")
    refuse_server_database(settings, allow_server_database, "leadloom bench --dashboards")
    stamp = datetime.now(UTC).strftime(STAMP_FORMAT)
    db = run_database(f"{settings.namespace}-bench-dash-{stamp}")
    bench_settings = settings.model_copy(update={
        "data_dir": settings.data_dir / "bench" / f"{stamp}-dashboards",
        "clickhouse_database": db})
    store = Store(bench_settings, migrations=load_migrations(MIGRATIONS_DIR))
    try:
        progress(f"storing into database {db}")
        build_fair(store, events, progress)
        progress("refreshing the snapshots")
        store.refresh_snapshots()
        first, last = store.query(f"SELECT min(occurred_at), max(occurred_at)"
                                  f" FROM {db}.{SCANS.name}").rows[0]
        span = TimeRange.spanning(first, last)
        start, end, interval = span.start, span.end, span.interval_s
        now = datetime.now(UTC).replace(microsecond=0)
        metrics = ops_history.write_metrics(store, settings.namespace, now)
        dead = ops_history.write_dead_letters(store, settings.namespace, start, end, events)
        audits = ops_history.write_audit(store, now)
        progress(f"{metrics} pipeline metric rows ({ops_history.RETENTION_DAYS} days),"
                 f" {dead} dead letters, {audits} ops command runs")
        ops_span = TimeRange.spanning(now - timedelta(hours=OPS_HOURS), now)
        built = build_all(bench_settings)
        progress(f"timing {sum(len(b.spec.panels) for b in built)} panels of {len(built)}"
                 f" dashboards over {start.isoformat()} .. {end.isoformat()}")
        panels: dict[str, float] = {}
        per_dashboard: dict[str, float] = {}
        wall_ms = 0.0
        for b in built:
            started = time.perf_counter()
            window = ops_span if b.file.uid == OPS_UID else span
            values = variable_values(b, store.query, window)
            total = (time.perf_counter() - started) * 1000
            for spec, raw in panel_sql(b):
                sql = expand(raw, window, values)
                ms = _p50(partial(store.query, sql))
                panels[f"{b.file.uid}/{spec.id} {spec.en}"] = ms
                total += ms
            per_dashboard[b.file.uid] = round(total, 1)
            if b.file.uid == WALL_UID:
                wall_ms = round(total, 1)
            progress(f"{b.file.uid}: {len(b.spec.panels)} panels, {round(total, 1)} ms")
        slowest = max(panels, key=lambda name: panels[name])
        return {
            "database": db, "events": events,
            "range": [start.isoformat(), end.isoformat()], "interval_s": interval,
            "dashboards": len(built), "panels": len(panels), "panels_p50_ms": panels,
            "slowest": {"panel": slowest, "p50_ms": panels[slowest]},
            "wall_ms": wall_ms, "dashboard_ms": per_dashboard,
            "panel_under_300ms": panels[slowest] < PANEL_BAR_MS,
            "wall_under_1500ms": wall_ms < WALL_BAR_MS,
        }
    finally:
        store.close()


def _p50(fn: Callable[[], object]) -> float:
    fn()  # warm-up
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1000, 1)

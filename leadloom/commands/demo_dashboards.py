"""The demo's last two steps: a live tail for the latency figures, then every dashboard
panel run on what the demo left, as Grafana would send it.

**Why a live tail.** The demo's day is simulated on the fair day
(``producers.simulator.fair.DEFAULT_DAY``) and published now: a backfill. Its events were
received months before they are stored, so the sink leaves them out of the end-to-end
latency (``streams.metrics.LIVE_LATENCY_MAX_MS``), as it would any replay. After the report
is taken, :func:`live_tail` sends :data:`LIVE_EVENTS` scans and inquiries of a fair of
their own (:data:`LIVE_FAIR`, so no figure of the demo's fair changes), stamped as they are
sent, at :data:`LIVE_RATE` per second: what a running fair gives the ops dashboard's
latency panel, measured by the sink as always.

**Which range each dashboard is run on.** Grafana opened after the demo would show the
demo's fair from its first event to now: events are dated on the fair day, dead letters
when they failed (today). The ops dashboard shows the last hour. The fair variable is set
to the demo's fair (its default, the fair with the latest window, is the live tail's).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from core.settings import Settings
from leadloom.pipeline import Pipeline
from producers.simulator.fair import SimulationParams, simulate_fair
from producers.simulator.publish import publish
from producers.simulator.recorder import VALID
from schemas.events import EventType
from schemas.registry import PIPELINE_METRICS, SCANS, Metric

LIVE_FAIR = "LIVE-2026-TL"
LIVE_EVENTS = 1_600  # simulated events, of which the ~1,000 scans and inquiries are sent
LIVE_RATE = 100.0  # per second: about 10 s, two or three of the sink's 5 s intervals
LIVE_TYPES = (EventType.BOOTH_SCAN.value, EventType.ONLINE_INQUIRY.value)  # no profiles:
# a fair's supplier profiles are sent before it; the tail's would join the day's book
METRICS_WAIT_S = 20.0  # the sink writes its latency rows every streams.metrics.INTERVAL_S


class DashboardCheckFailed(RuntimeError):
    """A panel's query failed on the engine (one line, the panel named)."""


def live_tail(pipeline: Pipeline, settings: Settings, seed: int, timeout_s: float,
              progress: Callable[[str], None]) -> dict[str, Any]:
    """Send the live tail, wait until it is stored and the sink has written its latency
    rows; ``{"fair_id", "events", "rate", "intervals", "p50_ms", "p99_ms"}`` (the p50 and
    p99 are the worst of the sink's intervals since the tail began, as the ops panel shows
    a bucket; ``None`` when no interval was written in time)."""
    assert pipeline.store is not None
    params = SimulationParams(max_message_bytes=settings.max_message_bytes)
    tail = [m for m in simulate_fair(LIVE_EVENTS, seed + 1, fair_id=LIVE_FAIR,
                                     params=params).messages
            if m.kind == VALID and m.event_type in LIVE_TYPES]
    progress(f"live tail: {len(tail)} events of fair {LIVE_FAIR} at {LIVE_RATE:.0f}/s,"
             " stamped as sent (for the end-to-end latency)")
    since = datetime.now(UTC)
    publish(tail, settings, rate=LIVE_RATE, restamp_now=True)
    pipeline.wait_idle(timeout_s)
    table = f"{settings.clickhouse_database}.{PIPELINE_METRICS.name}"
    p50, p99 = Metric.E2E_LATENCY_P50_MS.value, Metric.E2E_LATENCY_P99_MS.value
    sql = (f"SELECT countIf(metric = '{p99}'), maxIf(value, metric = '{p50}'),"
           f" maxIf(value, metric = '{p99}') FROM {table}"
           f" WHERE metric IN ('{p50}', '{p99}') AND at >= {_ms(since)}")
    deadline = time.monotonic() + METRICS_WAIT_S
    while True:
        intervals, worst_p50, worst_p99 = pipeline.store.query(sql).rows[0]
        if intervals or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    return {"fair_id": LIVE_FAIR, "events": len(tail), "rate": LIVE_RATE,
            "intervals": int(intervals),
            "p50_ms": float(worst_p50) if intervals else None,
            "p99_ms": float(worst_p99) if intervals else None}


def check_panels(pipeline: Pipeline, settings: Settings, fair_id: str,
                 progress: Callable[[str], None]) -> dict[str, Any]:
    """Run every panel of every dashboard built for the demo's database; ``{"dashboards",
    "panels", "with_rows", "empty" (["<uid> <id> <title>"]), "slowest_ms", "fair_range"}``.
    Raises :class:`DashboardCheckFailed` when a query fails."""
    from dashboards.build import build_all
    from dashboards.macros import TimeRange
    from dashboards.ops import OPS_UID
    from dashboards.panel_sql import PanelQueryError, run_panels, variable_values

    assert pipeline.store is not None
    query, db = pipeline.store.query, settings.clickhouse_database
    pipeline.refresh_views()  # the live tail's rows in the snapshots too
    first = query(f"SELECT min(occurred_at) FROM {db}.{SCANS.name}"
                  f" WHERE fair_id = '{fair_id}'").rows[0][0]
    now = datetime.now(UTC).replace(microsecond=0)
    fair_range = TimeRange.spanning(first, now)
    ops_range = TimeRange.spanning(now - timedelta(hours=1), now)
    built = build_all(settings)
    progress(f"running the {sum(len(b.spec.panels) for b in built)} panel queries of"
             f" {len(built)} dashboards")
    runs = []
    try:
        for b in built:
            span = ops_range if b.file.uid == OPS_UID else fair_range
            values = variable_values(b, query, span)
            if "fair" in values:
                values["fair"] = fair_id
            runs += run_panels(b, query, span, values)
    except PanelQueryError as exc:
        raise DashboardCheckFailed(str(exc)) from None
    empty = [f"{r.dashboard} {r.spec.id} {r.spec.en}" for r in runs if not r.result.rows]
    return {"dashboards": len(built), "panels": len(runs), "with_rows": len(runs) - len(empty),
            "empty": empty, "slowest_ms": max((r.ms for r in runs), default=0.0),
            "fair_range": [fair_range.start.isoformat(), fair_range.end.isoformat()]}


def _ms(moment: datetime) -> str:
    return f"fromUnixTimestamp64Milli({int(moment.timestamp() * 1000)}, 'UTC')"


def print_summary(report: dict[str, Any]) -> None:
    """The demo's lines on the dashboards and the live tail."""
    tail, check = report.get("live_tail"), report.get("dashboards")
    if tail:
        figures = (f"end-to-end p50 {tail['p50_ms']:.0f} ms, p99 {tail['p99_ms']:.0f} ms"
                   f" ({tail['intervals']} sink intervals)" if tail["intervals"]
                   else "no latency interval written in time")
        print(f"Live tail: {tail['events']} events at {tail['rate']:.0f}/s: {figures}")
    if check:
        start, end = check["fair_range"]
        print(f"Dashboards: {check['with_rows']} of {check['panels']} panel queries of"
              f" {check['dashboards']} dashboards returned rows (slowest"
              f" {check['slowest_ms']:.0f} ms) over {start} .. {end}")
        for name in check["empty"]:
            print(f"  no rows: {name}")

"""``leadloom bench``: end-to-end throughput and latency on the real broker and engine.

Phases, in one fresh namespace and a fresh embedded store:
1. warm-up: a small day through the pipeline, so workers hold their partitions;
2. throughput: publish ``--events`` as fast as possible; events/s = messages /
   (time the last row became visible - publish start);
3. baseline: a bare kafka-python consumer reads the same raw messages, at its steady
   rate (clock from its first records, which come after about half a second of
   connecting and fetching metadata: counted apart as ``baseline_startup_s``, so a
   start-up no longer passes for consumer speed); ratio = pipeline / baseline;
4. latency: events stamped *now* at an offered ``--rate``; latency = first visibility
   in ClickHouse (``ingested_at``) - event time (``occurred_at``), p50/p95/p99.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime

from kafka import KafkaConsumer

from core.kafka import bootstrap_list, fetch_sizes
from core.settings import Settings
from leadloom.commands.session import pipeline_session
from leadloom.pipeline import Pipeline, peak_rss_mb
from producers.simulator import SimulationParams, simulate_fair
from producers.simulator.publish import publish
from schemas.registry import EVENT_TABLES, RAW_TOPICS


class BenchFailed(RuntimeError):
    pass


def run_bench(
    settings: Settings,
    args: argparse.Namespace,
    progress: Callable[[str], None],
    emit_json: Callable[[object], None],
) -> int:
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    bench_dir = settings.data_dir / "bench" / stamp  # a fresh store of its own
    with pipeline_session(
        settings, "bench", args.workers, progress,
        allow_server_database=args.allow_server_database, data_dir=bench_dir,
    ) as pipe:
        result = _measure(pipe, pipe.settings, args, progress)
    _print(result)
    if args.json:
        emit_json(result)
    return 0


def _measure(pipeline: Pipeline, settings: Settings, args: argparse.Namespace,
             progress: Callable[[str], None]) -> dict:
    assert pipeline.store is not None
    query, db = pipeline.store.query, settings.clickhouse_database

    params = SimulationParams(max_message_bytes=settings.max_message_bytes)
    progress("warm-up")
    warm_up = simulate_fair(300, seed=1, params=params).messages
    publish(warm_up, settings)
    _wait(pipeline, 300, "warm-up")

    day = simulate_fair(args.events, seed=2, params=params).messages
    progress(f"throughput: publishing {len(day)} messages")
    t0 = time.time()
    publish(day, settings)
    _wait(pipeline, 1800, "throughput run")
    last_visible = _max_ingested(query, db)
    events_per_s = len(day) / max(last_visible - t0, 1e-3)

    baseline, startup = _bare_consumer_rate(settings, len(warm_up) + len(day))

    n_latency = int(args.rate * args.latency_seconds)
    progress(f"latency: {n_latency} events at {args.rate:.0f}/s")
    probe = [m for m in simulate_fair(n_latency, seed=3, params=params).messages
             if m.kind == "valid"]
    lat_start = datetime.now(UTC)
    publish(probe[:n_latency], settings, rate=args.rate, restamp_now=True)
    _wait(pipeline, 600, "latency run")
    p50, p95, p99 = _latency(query, db, lat_start)

    rss = {"sink_and_store": peak_rss_mb(os.getpid())}
    for index, pid in enumerate(pipeline.worker_pids()):
        rss[f"worker_{index}"] = peak_rss_mb(pid)
    return {
        "events": len(day),
        "events_per_s": round(events_per_s, 1),
        "latency_ms": {"p50": p50, "p95": p95, "p99": p99},
        "latency_events": len(probe[:n_latency]),
        "offered_rate": args.rate,
        "baseline_events_per_s": round(baseline, 1),
        "baseline_startup_s": round(startup, 3),
        "ratio": round(events_per_s / baseline, 3) if baseline else None,
        "peak_rss_mb": rss,
        "workers": args.workers,
    }


def _wait(pipeline: Pipeline, timeout_s: float, phase: str) -> None:
    if not pipeline.wait_idle(timeout_s):
        raise BenchFailed(f"the pipeline did not finish the {phase} within {timeout_s:.0f}s")


def _max_ingested(query, db: str) -> float:  # type: ignore[no-untyped-def]
    parts = " UNION ALL ".join(
        f"SELECT max(ingested_at) AS t FROM {db}.{t.name}" for t in EVENT_TABLES
    )
    value = query(f"SELECT toUnixTimestamp64Milli(max(t)) FROM ({parts})").rows[0][0]
    return int(value) / 1000


def _latency(query, db: str, since: datetime) -> tuple[float, float, float]:  # type: ignore[no-untyped-def]
    cutoff = since.strftime("%Y-%m-%d %H:%M:%S")
    parts = " UNION ALL ".join(
        f"SELECT event_id, occurred_at, ingested_at FROM {db}.{t.name} "
        f"WHERE occurred_at >= toDateTime64('{cutoff}', 3, 'UTC')"
        for t in EVENT_TABLES
    )
    sql = (
        "SELECT quantilesExact(0.5, 0.95, 0.99)(ms) FROM ("
        "SELECT event_id, dateDiff('millisecond', any(occurred_at), min(ingested_at)) AS ms "
        f"FROM ({parts}) GROUP BY event_id)"
    )
    values = query(sql).rows[0][0]
    if not values:
        raise BenchFailed("no latency probe event reached the store")
    return tuple(float(v) for v in values)  # type: ignore[return-value]


def _bare_consumer_rate(settings: Settings, expected: int) -> tuple[float, float]:
    """Steady consume rate of the same topics with a bare kafka-python consumer, and its
    start-up: every message now in them, from the beginning. The rate counts the records
    after the first poll that returns any, over the time since that poll; the start-up
    is the time from creating the consumer to that poll."""
    topics = [settings.topics.name(s) for s in RAW_TOPICS]
    created = time.monotonic()
    consumer = KafkaConsumer(
        *topics, bootstrap_servers=bootstrap_list(settings), group_id=None,
        auto_offset_reset="earliest", enable_auto_commit=False,
        **fetch_sizes(settings),
    )
    try:
        seen, started = 0, None
        deadline = created + 300
        while seen < expected and time.monotonic() < deadline:
            got = sum(len(r) for r in consumer.poll(timeout_ms=500, max_records=2_000).values())
            if got and started is None:
                started = time.monotonic()  # the first records: start-up ends here
                expected -= got
                continue
            seen += got
        if started is None:
            return 0.0, time.monotonic() - created
        elapsed = time.monotonic() - started
        return (seen / elapsed if seen and elapsed > 0 else 0.0), started - created
    finally:
        consumer.close()


def _print(result: dict) -> None:
    lat = result["latency_ms"]
    print(
        f"\nend to end: {result['events_per_s']:.0f} events/s over {result['events']} messages; "
        f"bare consumer {result['baseline_events_per_s']:.0f}/s steady (after"
        f" {result['baseline_startup_s']:.2f} s start-up); ratio {result['ratio']}\n"
        f"latency at {result['offered_rate']:.0f}/s offered: p50 {lat['p50']:.0f} ms, "
        f"p95 {lat['p95']:.0f} ms, p99 {lat['p99']:.0f} ms\n"
        f"peak RSS (MiB): {result['peak_rss_mb']}\n"
    )

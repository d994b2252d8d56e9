"""``leadloom bench``: end-to-end throughput and latency on the real broker and engine.

Phases, in one fresh namespace and a fresh embedded store:
1. warm-up: a small day through the pipeline, so workers hold their partitions;
2. offline core: the throughput day's messages through the processing core alone, in this
   process, no Kafka (``bench_core``): the rate the pipeline is compared with;
3. throughput: a publisher in a process of its own (``bench_load``), handed the same
   day before the clock starts, publishes ``--events`` as fast as it can; events/s = events /
   (time the last row became visible - the go); CPU per event of each process over it;
4. baseline: a bare kafka-python consumer reads the same raw messages, at its steady
   rate (clock from its first records, which come after about half a second of
   connecting and fetching metadata: counted apart as ``baseline_startup_s``, so a
   start-up no longer passes for consumer speed); ratio = pipeline / baseline;
5. latency: for each offered rate in ``--rates``, events of a fair of their own
   (:data:`LATENCY_FAIR`) stamped *now* by the publisher process, paced; latency = first
   visibility in ClickHouse (``ingested_at``) - event time (``occurred_at``),
   p50/p95/p99.
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
from infra.kafka_local import port_owner
from leadloom.commands.bench_core import offline_core_rate
from leadloom.commands.bench_load import Load, Publisher, cpu_seconds
from leadloom.commands.session import pipeline_session
from leadloom.pipeline import Pipeline, peak_rss_mb
from producers.simulator import SimulationParams, simulate_fair
from producers.simulator.publish import publish
from schemas.registry import EVENT_TABLES, RAW_TOPICS

# records per poll of the bare consumer at most; a small day's polls are smaller still, so
# that it takes about 20 polls after the first (whose records only end the start-up)
_BASELINE_POLL = 500
# The latency probes' fair. Stamped now, they would otherwise stretch the throughput day's
# fair (simulated on its own date) over months: the intelligence views fill every 5-minute
# window from a fair's first event to its last, and refreshing the snapshots of such a
# fair took 5-6 s of both cores in the middle of the latency runs.
LATENCY_FAIR = "BENCH-2026-LT"


class BenchFailed(RuntimeError):
    pass


def run_bench(
    settings: Settings,
    args: argparse.Namespace,
    progress: Callable[[str], None],
    emit_json: Callable[[object], None],
) -> int:
    if args.batch < 1:
        raise BenchFailed(f"--batch must be at least 1 event per message, not {args.batch}")
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
    warm_up_messages = publish(warm_up, settings, batch=args.batch).kafka_messages
    _wait(pipeline, 300, "warm-up")

    day = simulate_fair(args.events, seed=2, params=params).messages
    progress(f"offline core: {len(day)} messages through the processing core alone")
    core = offline_core_rate(day, settings)

    publisher = Publisher(settings, Load(day, batch=args.batch))
    try:
        processes = _processes(pipeline, settings)
        cpu_before = {name: cpu_seconds(pid) for name, pid in processes.items()}
        progress(f"throughput: publishing {len(day)} events")
        t0 = time.time()
        publisher.go()
        published = publisher.wait(1800)
    finally:
        publisher.close()
    _wait(pipeline, 1800, "throughput run")
    last_visible = _max_ingested(query, db)
    cpu_after = {name: cpu_seconds(pid) for name, pid in processes.items()}
    events_per_s = len(day) / max(last_visible - t0, 1e-3)
    cpu_us = {name: _per_event(cpu_before[name], cpu_after[name], len(day))
              for name in processes}
    cpu_us["publisher"] = _per_event(0.0, published.cpu_s, len(day))  # its own reading

    # the bare consumer reads Kafka messages; in events, as many as the day's messages hold
    records = warm_up_messages + published.messages
    baseline_records, startup = _bare_consumer_rate(settings, records)
    baseline = baseline_records * (len(warm_up) + len(day)) / records

    latency = {}
    for index, rate in enumerate(args.rates):
        n_latency = int(rate * args.latency_seconds)
        progress(f"latency: {n_latency} events at {rate:.0f}/s")
        stamped = [m for m in simulate_fair(n_latency, seed=3 + index, fair_id=LATENCY_FAIR,
                                            params=params).messages
                   if m.kind == "valid"][:n_latency]
        probe = Publisher(settings, Load(stamped, rate=rate, restamp_now=True,
                                         batch=args.batch))
        try:
            lat_start = datetime.now(UTC)
            probe.go()
            probe.wait(args.latency_seconds * 10 + 60)
        finally:
            probe.close()
        _wait(pipeline, 600, "latency run")
        p50, p95, p99 = _latency(query, db, lat_start)
        latency[f"{rate:g}"] = {"p50": p50, "p95": p95, "p99": p99, "events": len(stamped)}

    rss = {"sink_and_store": peak_rss_mb(os.getpid())}
    for index, pid in enumerate(pipeline.worker_pids()):
        rss[f"worker_{index}"] = peak_rss_mb(pid)
    return {
        "events": len(day),
        "batch": args.batch,
        "kafka_messages": published.messages,
        "events_per_s": round(events_per_s, 1),
        "publisher_events_per_s": round(published.events / published.seconds, 1)
        if published.seconds > 0 else None,
        "cpu_us_per_event": cpu_us,
        "latency_ms": latency,
        "core_events_per_s": round(core.events_per_s, 1),
        "core_us_per_event": round(core.us_per_event, 1),
        "core_stage_us_per_event": {k: round(v / core.events * 1e6, 1)
                                    for k, v in core.stages_s.items()},
        "ratio_to_core": round(events_per_s / core.events_per_s, 3)
        if core.events_per_s else None,
        "baseline_events_per_s": round(baseline, 1),
        "baseline_startup_s": round(startup, 3),
        "ratio": round(events_per_s / baseline, 3) if baseline else None,
        "peak_rss_mb": rss,
        "workers": args.workers,
    }


def _processes(pipeline: Pipeline, settings: Settings) -> dict[str, int]:
    """The processes whose CPU the bench reads from /proc: each worker, this one (the sink
    and the store), the broker (when /proc shows who listens on its port). The publisher
    exits when done and reports its own."""
    found = {f"worker_{i}": pid for i, pid in enumerate(pipeline.worker_pids())}
    found["sink_and_store"] = os.getpid()
    for server in bootstrap_list(settings):
        broker = port_owner(int(server.rpartition(":")[2]))
        if broker is not None:
            found[f"broker_{len([k for k in found if k.startswith('broker')])}"] = broker
    return found


def _per_event(before: float | None, after: float | None, events: int) -> float | None:
    """CPU µs per event between two readings (None when the process was not readable)."""
    if before is None or after is None or not events:
        return None
    return round((after - before) / events * 1e6, 1)


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
    per_poll = max(1, min(_BASELINE_POLL, expected // 20))
    try:
        seen, started, last = 0, None, 0.0
        deadline = created + 300
        while seen < expected and time.monotonic() < deadline:
            got = sum(len(r) for r in consumer.poll(timeout_ms=500, max_records=per_poll).values())
            if got and started is None:
                started = time.monotonic()  # the first records: start-up ends here
                expected -= got
                continue
            if started is not None and not got:
                break  # nothing more for half a second: the end of what was published
            seen, last = seen + got, time.monotonic()
        if started is None:
            return 0.0, time.monotonic() - created
        elapsed = last - started
        return (seen / elapsed if seen and elapsed > 0 else 0.0), started - created
    finally:
        consumer.close()


def _print(result: dict) -> None:
    lines = [
        "",
        f"end to end: {result['events_per_s']:.0f} events/s over {result['events']} events"
        f" in {result['kafka_messages']} Kafka messages (up to {result['batch']} a message;"
        f" the publisher, a process of its own, offered {result['publisher_events_per_s']}/s)",
        f"processing core offline: {result['core_events_per_s']:.0f} events/s"
        f" ({result['core_us_per_event']} µs/event: {result['core_stage_us_per_event']});"
        f" ratio to it {result['ratio_to_core']}",
        f"bare consumer {result['baseline_events_per_s']:.0f}/s steady (after"
        f" {result['baseline_startup_s']:.2f} s start-up); ratio {result['ratio']}",
        f"CPU µs per event: {result['cpu_us_per_event']}",
    ]
    for rate, lat in result["latency_ms"].items():
        lines.append(f"latency at {rate}/s offered: p50 {lat['p50']:.0f} ms,"
                     f" p95 {lat['p95']:.0f} ms, p99 {lat['p99']:.0f} ms")
    lines.append(f"peak RSS (MiB): {result['peak_rss_mb']}")
    print("\n".join(lines) + "\n")

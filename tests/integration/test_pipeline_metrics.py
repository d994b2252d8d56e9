"""The pipeline writes its own figures into ``pipeline_metrics`` (the ops dashboard's data).

A small simulated day, stamped at send time (so end-to-end latency is the pipeline's, not
the age of a simulated day), runs through the real broker, a stream worker and the sink
into the embedded engine. Then every metric kind is in the table with values that agree
with what happened: events consumed per raw topic add up to the messages published, the
resolver's merges to the merges stored, every group's lag sampled per partition and back
at zero, a batch time per table stored, and the end-to-end quantiles agree with the same
latency taken from the stored rows the way ``leadloom bench`` reads it.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from core.settings import Settings
from producers.simulator import simulate_fair
from producers.simulator.publish import publish
from schemas.registry import (
    EVENT_TABLES,
    PIPELINE_METRICS,
    RAW_TOPICS,
    Metric,
    worker_source,
)
from streams.metrics import INTERVAL_S
from tests.conftest import running_pipeline
from tests.integration.test_pipeline import settle, stored

pytestmark = pytest.mark.integration


def metric_sum(query, db: str, metric: Metric) -> dict[str, float]:  # type: ignore[no-untyped-def]
    rows = query(f"SELECT topic, sum(value) FROM {db}.{PIPELINE_METRICS.name} FINAL"
                 f" WHERE metric = '{metric}' GROUP BY topic").rows
    return {topic: value for topic, value in rows}


def wait_for(check, timeout_s: float):  # type: ignore[no-untyped-def]
    """``check()`` once it is truthy, or its last value after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.5)


def test_the_pipeline_writes_every_metric_kind_with_values_that_agree_with_the_day(
        pipeline_settings: Settings) -> None:
    settings = pipeline_settings
    day = simulate_fair(3000, seed=11)
    published = Counter(settings.topics.raw(m.event_type) for m in day.messages)
    with running_pipeline(settings, workers=1) as pipe:
        publish(day.messages, settings, restamp_now=True)
        settle(pipe, 300)
        query, db = stored(pipe)
        table = f"{db}.{PIPELINE_METRICS.name}"

        # Workers send their counts every INTERVAL_S after the batch: wait for the last.
        def all_consumed() -> dict[str, float] | None:
            got = metric_sum(query, db, Metric.EVENTS_CONSUMED)
            return got if sum(got.values()) >= sum(published.values()) else None

        consumed = wait_for(all_consumed, 6 * INTERVAL_S)
        assert consumed, metric_sum(query, db, Metric.EVENTS_CONSUMED)
        assert {t: int(v) for t, v in consumed.items() if v} == dict(published)
        assert set(consumed) == {settings.topics.name(t) for t in RAW_TOPICS}
        sources = {r[0] for r in query(f"SELECT DISTINCT source FROM {table}"
                                       f" WHERE metric = '{Metric.EVENTS_CONSUMED}'").rows}
        assert sources == {worker_source(0)}

        merges_stored = query(f"SELECT count() FROM {db}.buyer_merges FINAL").rows[0][0]
        assert merges_stored > 0, "pick a seed whose day merges buyers"
        merges = wait_for(lambda: sum(metric_sum(query, db, Metric.RESOLVER_MERGES).values())
                          == merges_stored or None, 6 * INTERVAL_S)
        assert merges, (metric_sum(query, db, Metric.RESOLVER_MERGES), merges_stored)

        # Lag: every partition of every group sampled; once idle, each one's newest is 0.
        groups = pipe.consumer_groups()
        time.sleep(2 * INTERVAL_S)  # a sample after the last commits
        newest = {(g, t, p): lag for g, t, p, lag in query(
            f"SELECT consumer_group, topic, partition, argMax(value, at) FROM {table}"
            f" WHERE metric = '{Metric.CONSUMER_LAG}' GROUP BY consumer_group, topic,"
            " partition").rows}
        sampled = {(g, t) for g, t, _ in newest}
        assert sampled == {(g, t) for g, topics in groups.items() for t in topics}
        assert {p for g, t, p in newest if t == settings.topics.metrics} == set(range(6))
        behind = {k: v for k, v in newest.items() if v}
        assert not behind, f"partitions still behind after idle: {behind}"

        # Sink batches: one row per table insert, positive times, every raw event table.
        batch = {t: (n, low) for t, n, low in query(
            f"SELECT topic, count(), min(value) FROM {table}"
            f" WHERE metric = '{Metric.SINK_BATCH_MS}' GROUP BY topic").rows}
        assert {t.name for t in EVENT_TABLES} <= set(batch)
        assert all(n >= 1 and low > 0 for n, low in batch.values()), batch

        # End-to-end latency per sink interval, against the stored rows (bench's reading).
        p50s = [v for (v,) in query(f"SELECT value FROM {table}"
                                    f" WHERE metric = '{Metric.E2E_LATENCY_P50_MS}'").rows]
        pairs = query(f"SELECT maxIf(value, metric = '{Metric.E2E_LATENCY_P50_MS}'),"
                      f" maxIf(value, metric = '{Metric.E2E_LATENCY_P99_MS}') FROM {table}"
                      " WHERE metric IN ('e2e_latency_p50_ms', 'e2e_latency_p99_ms')"
                      " GROUP BY at").rows
        assert p50s and len(pairs) == len(p50s)
        assert all(0 <= p50 <= p99 < 60_000 for p50, p99 in pairs), pairs
        union = " UNION ALL ".join(
            f"SELECT dateDiff('millisecond', received_at, ingested_at) AS ms"
            f" FROM {db}.{t.name}" for t in EVENT_TABLES)
        overall = query(f"SELECT quantileExact(0.5)(ms) FROM ({union})").rows[0][0]
        # The median of all events lies between the medians of the intervals they were
        # stored in (the sink's clock and the engine's ingested_at differ by the insert).
        assert min(p50s) - 100 <= overall <= max(p50s) + 100, (overall, p50s)
    print(f"\nmetrics: consumed {sum(consumed.values()):.0f}, merges {merges_stored},"
          f" {len(newest)} lag partitions, {sum(n for n, _ in batch.values())} batch rows,"
          f" e2e p50 per interval {sorted(p50s)} (stored rows: {overall} ms)")

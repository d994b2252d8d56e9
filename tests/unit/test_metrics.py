"""The pipeline's own figures (streams/metrics.py): rows, interval accounting, latency
quantiles and which lag samples are written. The whole path runs on the real broker and
engine in tests/integration/test_pipeline_metrics.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import orjson
import pytest

from schemas.registry import PIPELINE_METRICS, Metric, MetricSource, worker_source
from streams.metrics import (
    CLOCK_SKEW_MS,
    LIVE_LATENCY_MAX_MS,
    LagReport,
    LatencyWindow,
    Meter,
    metric_row,
    quantile_exact,
    received_ms,
)

T0 = datetime(2026, 3, 26, 2, 0, tzinfo=UTC)
SCANS, INQUIRIES = "ns.raw.scans", "ns.raw.inquiries"
KEYS = [(Metric.EVENTS_CONSUMED, SCANS), (Metric.EVENTS_CONSUMED, INQUIRIES),
        (Metric.RESOLVER_MERGES, "")]


def decoded(rows: list[bytes]) -> list[dict]:
    return [orjson.loads(r) for r in rows]


def by_key(rows: list[bytes]) -> dict[tuple[str, str], dict]:
    return {(r["metric"], r["topic"]): r for r in decoded(rows)}


def test_a_row_has_exactly_the_tables_columns_but_the_ingest_time() -> None:
    row = orjson.loads(metric_row(T0, "sink", Metric.SINK_BATCH_MS, 12.5, topic="scans"))
    assert set(row) == set(PIPELINE_METRICS.columns) - {"ingested_at"}
    assert row == {"at": "2026-03-26T02:00:00.000+00:00", "source": "sink",
                   "metric": "sink_batch_ms", "topic": "scans", "consumer_group": "",
                   "partition": -1, "value": 12.5, "interval_s": 0.0}


def test_a_row_is_stamped_in_utc_and_refuses_a_naive_time() -> None:
    shanghai = T0.astimezone(ZoneInfo("Asia/Shanghai"))
    assert orjson.loads(metric_row(shanghai, "s", Metric.CONSUMER_LAG, 1))["at"] == (
        "2026-03-26T02:00:00.000+00:00")
    with pytest.raises(ValueError):
        metric_row(T0.replace(tzinfo=None), "s", Metric.CONSUMER_LAG, 1)


def test_a_worker_writes_the_counts_of_each_interval_over_its_length() -> None:
    meter = Meter(worker_source(1), KEYS, T0)
    meter.consumed([SCANS, SCANS, INQUIRIES])
    meter.add(Metric.RESOLVER_MERGES, "", 2)
    first = by_key(meter.rows(T0 + timedelta(seconds=5)))
    assert {k: r["value"] for k, r in first.items()} == {
        ("events_consumed", SCANS): 2, ("events_consumed", INQUIRIES): 1,
        ("resolver_merges", ""): 2}
    assert {r["interval_s"] for r in first.values()} == {5.0}
    assert {r["source"] for r in first.values()} == {"worker-1"}
    assert {r["at"] for r in first.values()} == {"2026-03-26T02:00:05.000+00:00"}
    meter.consumed([SCANS] * 7)
    second = by_key(meter.rows(T0 + timedelta(seconds=10.5)))
    assert second == {("events_consumed", SCANS): second["events_consumed", SCANS]}
    assert (second["events_consumed", SCANS]["value"],
            second["events_consumed", SCANS]["interval_s"]) == (7, 5.5)


def test_zero_counts_are_written_at_the_start_and_then_once_a_minute() -> None:
    meter = Meter("worker-0", KEYS, T0, heartbeat_s=60)
    at = T0
    written = []
    for _ in range(30):  # 2.5 minutes of 5 s intervals with nothing consumed
        at += timedelta(seconds=5)
        written.append(len(meter.rows(at)))
    assert written[0] == 3  # every key once at the first interval
    assert sum(written) == 3 * 3  # then once a minute: at 60 s and 120 s
    assert all(r["value"] == 0 for r in decoded(meter.rows(at + timedelta(minutes=1))))


def test_counts_between_intervals_are_never_lost_or_counted_twice() -> None:
    meter = Meter("worker-0", KEYS, T0)
    total = 0
    at = T0
    for i in range(1, 50):
        meter.consumed([SCANS] * (i % 4))
        at += timedelta(seconds=5)
        total += sum(r["value"] for r in decoded(meter.rows(at))
                     if r["topic"] == SCANS)
    assert total == sum(i % 4 for i in range(1, 50))


def test_received_at_is_read_from_raw_event_rows_as_the_sink_passes_them() -> None:
    rows = [orjson.dumps({"event_id": "e1", "occurred_at": "2026-03-26T01:00:00.000+00:00",
                          "received_at": "2026-03-26T02:00:00.250+00:00", "note": "x"}),
            orjson.dumps({"event_id": "e2", "received_at": "2026-03-26T10:00:01.000+08:00"}),
            orjson.dumps({"event_id": "e3", "received_at": "not a time"}),
            orjson.dumps({"event_id": "e4", "note": '"received_at":"inside a note"'})]
    t0_ms = round(T0.timestamp() * 1000)
    assert received_ms(b"\n".join(rows)) == [t0_ms + 250, t0_ms + 1000]


def test_quantiles_are_clickhouses_quantile_exact() -> None:
    values = list(range(1, 101))  # quantileExact(0.5) of 1..100 is 51, (0.99) is 100
    assert quantile_exact(values, 0.5) == 51
    assert quantile_exact(values, 0.99) == 100
    assert quantile_exact([7], 0.99) == 7
    with pytest.raises(ValueError):
        quantile_exact([], 0.5)


def test_latency_quantiles_cover_the_live_events_of_the_interval() -> None:
    window = LatencyWindow()
    stored = round(T0.timestamp() * 1000)
    window.stored(stored, [stored - ms for ms in range(10, 1010, 10)])  # 10..1000 ms
    window.stored(stored, [stored - LIVE_LATENCY_MAX_MS - 1])  # a replayed old event
    window.stored(stored, [stored + CLOCK_SKEW_MS // 2])  # an edge clock slightly ahead
    window.stored(stored, [stored + CLOCK_SKEW_MS * 2])  # far ahead: not a latency
    assert (len(window), window.not_live) == (101, 2)
    rows = by_key(window.rows(T0, 5.0))
    assert rows[Metric.E2E_LATENCY_P50_MS.value, ""]["value"] == 500
    assert rows[Metric.E2E_LATENCY_P99_MS.value, ""]["value"] == 990
    assert {r["source"] for r in rows.values()} == {MetricSource.SINK.value}
    assert window.rows(T0, 5.0) == [], "the window starts over"


def test_an_interval_without_live_events_writes_no_latency() -> None:
    window = LatencyWindow()
    stored = round(T0.timestamp() * 1000)
    window.stored(stored, [stored - 240 * 86_400_000])  # a simulated day months ago
    assert window.rows(T0, 5.0) == []


def test_lag_rows_follow_partitions_behind_and_the_sample_they_caught_up() -> None:
    report = LagReport(heartbeat_s=60)
    a, b = ("g", "t", 0), ("g", "t", 1)

    def step(seconds: float, lags: dict) -> dict:
        rows = decoded(report.rows(T0 + timedelta(seconds=seconds), lags))
        return {(r["consumer_group"], r["topic"], r["partition"]): r["value"] for r in rows}

    assert step(0, {a: 0, b: 5}) == {a: 0, b: 5}  # first sample: every partition
    assert step(5, {a: 0, b: 3}) == {b: 3}  # behind: every sample
    assert step(10, {a: 0, b: 0}) == {b: 0}  # caught up: its zero once
    assert step(15, {a: 0, b: 0}) == {}
    assert step(60, {a: 0, b: 0}) == {a: 0}  # a's heartbeat (last written at 0 s)
    assert step(70, {a: 0, b: 0}) == {b: 0}  # b's (last written at 10 s)
    row = orjson.loads(report.rows(T0 + timedelta(seconds=75), {a: 9})[0])
    assert (row["source"], row["metric"], row["interval_s"]) == ("lag-sampler",
                                                                "consumer_lag", 0.0)

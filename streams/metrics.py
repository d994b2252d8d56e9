"""The pipeline's own figures as ``pipeline_metrics`` rows (pure: no Kafka, no store).

Who measures what (``schemas.registry.Metric``):

- a stream worker counts the messages it consumed per raw topic and the merges its
  resolver made (:class:`Meter`); every :data:`INTERVAL_S` it sends the counts of the
  interval just ended as rows to ``<ns>.metrics``, which the sink stores;
- the sink times each insert batch per table and collects, per event stored in a raw event
  table, the time from ``received_at`` (stamped at the edge) to the end of its insert
  (:func:`received_ms`, :class:`LatencyWindow`); every :data:`INTERVAL_S` it writes the
  batch rows and the interval's p50/p99 straight into the store, in one insert;
- the lag sampler, in the store owner, samples each consumer group's lag per partition
  every :data:`INTERVAL_S` (:class:`LagReport` decides which samples become rows).

Counts are per interval (``value`` over ``interval_s`` seconds ending at ``at``): a rate is
the counts of a time bucket summed over the bucket's seconds. Zero counts are written only
every :data:`HEARTBEAT_S`, so a quiet pipeline writes a few rows a minute and a panel
still shows it at zero. Metrics are at least once like everything else: counts of a worker
killed between two intervals are lost with it (its batches are re-read and counted again
by the next one), a record the sink stores twice repeats rows that collapse on the
table's key.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime

import orjson

from schemas.registry import Metric, MetricSource

INTERVAL_S = 5.0
HEARTBEAT_S = 60.0
# Events received longer ago than this are not live traffic but a replay or backfill (or a
# simulated day in the past): their age says nothing about the pipeline, so they are left
# out of the latency quantiles. A backlog shows as consumer lag.
LIVE_LATENCY_MAX_MS = 3_600_000
# An edge clock ahead of the store's by up to this much counts as latency 0.
CLOCK_SKEW_MS = 2_000

# Set by the supervisor (leadloom/pipeline.py) for each worker it starts: the worker's
# index, which names its metrics' source. Not a setting: it differs per child process.
WORKER_INDEX_ENV = "LEADLOOM_WORKER_INDEX"

MetricKey = tuple[Metric, str]  # (metric, topic)
LagKey = tuple[str, str, int]  # (consumer group, topic, partition)


def metric_row(at: datetime, source: str, metric: Metric, value: float, *, topic: str = "",
               consumer_group: str = "", partition: int = -1, interval_s: float = 0.0
               ) -> bytes:
    """One ``pipeline_metrics`` row as JSON (``at`` timezone-aware; ``interval_s`` 0 for a
    sample, the seconds a count covers otherwise)."""
    if at.tzinfo is None:
        raise ValueError("naive datetime: pass a timezone-aware one")
    return orjson.dumps({
        "at": at.astimezone(UTC).isoformat(timespec="milliseconds"),
        "source": source, "metric": metric.value, "topic": topic,
        "consumer_group": consumer_group, "partition": partition,
        "value": float(value), "interval_s": round(interval_s, 3),
    })


class Meter:
    """Counts of one source per (metric, topic), turned into rows once per interval.

    ``keys`` are reported even before anything is counted (a zero every heartbeat), so a
    dashboard sees each raw topic of a worker from its start. Not thread-safe: a worker's
    agents and timer share one event loop.
    """

    def __init__(self, source: str, keys: Iterable[MetricKey], started: datetime,
                 heartbeat_s: float = HEARTBEAT_S) -> None:
        self.source = source
        self.heartbeat_s = heartbeat_s
        self._counts: Counter[MetricKey] = Counter({key: 0 for key in keys})
        self._interval_start = started
        self._last_written: dict[MetricKey, datetime] = {}

    def add(self, metric: Metric, topic: str, n: int) -> None:
        self._counts[metric, topic] += n

    def consumed(self, topics: Iterable[str]) -> None:
        """Count one consumed message per item of ``topics`` (its topic)."""
        self._counts.update((Metric.EVENTS_CONSUMED, t) for t in topics)

    def rows(self, now: datetime) -> list[bytes]:
        """The rows of the interval ending ``now`` (non-zero counts; zeros once per
        heartbeat); the counts start over."""
        interval = max((now - self._interval_start).total_seconds(), 0.0)
        out = []
        for key, n in sorted(self._counts.items()):
            last = self._last_written.get(key)
            if n or last is None or (now - last).total_seconds() >= self.heartbeat_s:
                out.append(metric_row(now, self.source, key[0], n, topic=key[1],
                                      interval_s=interval))
                self._last_written[key] = now
            self._counts[key] = 0
        self._interval_start = now
        return out


# orjson writes rows without spaces; event_row writes received_at once per row.
_RECEIVED_AT = re.compile(rb'"received_at":"([^"]{1,64})"')


def received_ms(block: bytes) -> list[int]:
    """``received_at`` of every raw event table row in ``block`` (newline-joined JSON rows,
    as the sink passes them through), in epoch milliseconds; unreadable values are left
    out."""
    out = []
    for raw in _RECEIVED_AT.findall(block):
        try:
            moment = datetime.fromisoformat(raw.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            continue
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        out.append(round(moment.timestamp() * 1000))
    return out


def quantile_exact(ordered: Sequence[float], q: float) -> float:
    """The ``q`` quantile of ascending ``ordered`` as ClickHouse's ``quantileExact`` takes
    it (the element at ``floor(q * n)``), so the sink's figures read like ``leadloom
    bench``'s ``quantilesExact`` over the stored rows."""
    if not ordered:
        raise ValueError("no values")
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


class LatencyWindow:
    """End-to-end latencies (ms) of the events stored in one metrics interval."""

    def __init__(self) -> None:
        self._ms: list[int] = []
        self.not_live = 0  # events left out: received over LIVE_LATENCY_MAX_MS before

    def stored(self, stored_ms: int, received: Iterable[int]) -> None:
        """Events received at ``received`` (epoch ms) were stored at ``stored_ms``."""
        for r in received:
            latency = stored_ms - r
            if -CLOCK_SKEW_MS <= latency <= LIVE_LATENCY_MAX_MS:
                self._ms.append(max(latency, 0))
            else:
                self.not_live += 1

    def __len__(self) -> int:
        return len(self._ms)

    def rows(self, now: datetime, interval_s: float) -> list[bytes]:
        """p50 and p99 of the interval ending ``now`` (nothing if no live event was
        stored); the window starts over."""
        if not self._ms:
            self.not_live = 0
            return []
        ordered = sorted(self._ms)
        self._ms, self.not_live = [], 0
        return [
            metric_row(now, MetricSource.SINK, metric, quantile_exact(ordered, q),
                       interval_s=interval_s)
            for metric, q in ((Metric.E2E_LATENCY_P50_MS, 0.5), (Metric.E2E_LATENCY_P99_MS, 0.99))
        ]


class LagReport:
    """Which lag samples become rows: a partition behind every sample, one that just caught
    up once more (its zero), every partition once per heartbeat."""

    def __init__(self, heartbeat_s: float = HEARTBEAT_S) -> None:
        self.heartbeat_s = heartbeat_s
        self._last: dict[LagKey, tuple[int, datetime]] = {}

    def rows(self, now: datetime, lags: Mapping[LagKey, int]) -> list[bytes]:
        out = []
        for key, lag in sorted(lags.items()):
            last = self._last.get(key)
            if (lag or last is None or last[0]
                    or (now - last[1]).total_seconds() >= self.heartbeat_s):
                group, topic, partition = key
                out.append(metric_row(now, MetricSource.LAG_SAMPLER, Metric.CONSUMER_LAG, lag,
                                      topic=topic, consumer_group=group, partition=partition))
                self._last[key] = (lag, now)
        return out

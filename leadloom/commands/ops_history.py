"""What a running pipeline leaves in the ops tables, written in bulk for ``leadloom bench
--dashboards``: the ops dashboard's and the dead-letter panels' queries are timed on the
volumes they meet in production, not on empty tables.

- ``pipeline_metrics``: :data:`RETENTION_DAYS` (the table's TTL) of a two-worker pipeline at
  the metrics interval (5 s), :data:`ROWS_PER_INTERVAL` rows each: consumed events per worker
  and raw topic, resolver merges per worker, a sink batch per stored table, the latency
  p50/p99, and a lag sample per partition of two groups' busiest topics (the sampler writes
  a partition every interval while it is behind): 31 rows, 16 million in all.
- ``dead_letters``: :data:`DEAD_LETTER_SHARE` of the fair's events, failing while it runs
  (spread over its span), every reason in turn; and their ``dead_letter_retries``: one
  retry run a minute after each failure for half of them, republished, still invalid and
  not retryable in turn; half of the republished failed again (retried before the failure).
- ``replay_audit``: :data:`AUDIT_RUNS_PER_DAY` ops command runs a day over
  :data:`RETENTION_DAYS` (every known command and result in turn, every third a dry run,
  each a minute long, with counts): far more than a fair's operators run, so an upper bound.

Written with ``INSERT ... SELECT FROM numbers()`` on the engine: the shape and cardinality
of the pipeline's rows, generated where they are stored, in seconds rather than the
minutes JSON rows would take.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from core.store import Store
from dashboards.ops import OPS_COMMANDS, RESULTS
from schemas.deadletter import Reason
from schemas.registry import (
    DEAD_LETTER_RETRIES,
    DEAD_LETTER_TABLE,
    EVENT_TABLES,
    PIPELINE_METRICS,
    RAW_TOPICS,
    REPLAY_AUDIT,
    SINK_TOPICS,
    Metric,
    MetricSource,
    RetryOutcome,
    TopicNames,
    worker_source,
)
from streams.metrics import INTERVAL_S

RETENTION_DAYS = 30
WORKERS = 2
LAG_PARTITIONS = 6
DEAD_LETTER_SHARE = 0.01
AUDIT_RUNS_PER_DAY = 24


def _array(values: list[str]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def metric_rows_spec(namespace: str) -> list[tuple[str, str, str, str, int]]:
    """One interval's rows: ``(source, metric, topic, consumer_group, partition)``."""
    topics = TopicNames(namespace)
    raw = [topics.name(t) for t in RAW_TOPICS]
    rows: list[tuple[str, str, str, str, int]] = []
    for w in range(WORKERS):
        rows += [(worker_source(w), Metric.EVENTS_CONSUMED.value, t, "", -1) for t in raw]
        rows.append((worker_source(w), Metric.RESOLVER_MERGES.value, "", "", -1))
    rows += [(MetricSource.SINK.value, Metric.SINK_BATCH_MS.value, t.name, "", -1)
             for t in EVENT_TABLES]
    rows += [(MetricSource.SINK.value, m.value, "", "", -1)
             for m in (Metric.E2E_LATENCY_P50_MS, Metric.E2E_LATENCY_P99_MS)]
    for group, spec in ((f"{namespace}-streams", RAW_TOPICS[1]),
                        (f"{namespace}-sink", SINK_TOPICS[0])):
        rows += [(MetricSource.LAG_SAMPLER.value, Metric.CONSUMER_LAG.value, topics.name(spec),
                  group, p) for p in range(LAG_PARTITIONS)]
    return rows


def write_metrics(store: Store, namespace: str, now: datetime) -> int:
    """:data:`RETENTION_DAYS` of metrics ending at ``now``; returns the rows written."""
    spec = metric_rows_spec(namespace)
    per = len(spec)
    intervals = int(RETENTION_DAYS * 86_400 / INTERVAL_S)
    start_ms = int((now - timedelta(days=RETENTION_DAYS)).timestamp() * 1000)
    step_ms = int(INTERVAL_S * 1000)
    column = {name: _array([str(row[i]) for row in spec])
              for i, name in enumerate(("source", "metric", "topic", "consumer_group"))}
    partitions = "[" + ", ".join(str(row[4]) for row in spec) + "]"
    k = f"(number % {per}) + 1"
    sql = (
        f"INSERT INTO {store.database}.{PIPELINE_METRICS.name}"
        " (at, source, metric, topic, consumer_group, partition, value, interval_s)"
        f" SELECT fromUnixTimestamp64Milli(toInt64({start_ms} + intDiv(number, {per})"
        f" * {step_ms}), 'UTC'),"
        f" {column['source']}[{k}], {column['metric']}[{k}], {column['topic']}[{k}],"
        f" {column['consumer_group']}[{k}], {partitions}[{k}],"
        f" toFloat64(cityHash64(number) % 1000), {INTERVAL_S}"
        f" FROM numbers({intervals * per})"
    )
    store.maintenance_client().command(sql)
    return intervals * per


def write_dead_letters(store: Store, namespace: str, start: datetime, end: datetime,
                       events: int) -> int:
    """Dead letters of :data:`DEAD_LETTER_SHARE` of ``events``, failing between ``start``
    and ``end``, and the retries of half of them; returns how many dead letters."""
    count = max(1, int(events * DEAD_LETTER_SHARE))
    topics = _array([TopicNames(namespace).name(t) for t in RAW_TOPICS])
    reasons = _array([r.value for r in Reason])
    start_ms, span_ms = int(start.timestamp() * 1000), int((end - start).total_seconds() * 1000)
    topic = f"{topics}[(number % {len(RAW_TOPICS)}) + 1]"
    sql = (
        f"INSERT INTO {store.database}.{DEAD_LETTER_TABLE.name}"
        " (source_topic, source_partition, source_offset, origin_topic, origin_partition,"
        " origin_offset, reason, detail, event_id, raw_size, raw_base64, raw_sha256, failed_at)"
        f" SELECT {topic}, number % 6, number, {topic}, number % 6, number,"
        f" {reasons}[(number % {len(Reason)}) + 1], 'bench', '', 64, '',"
        " hex(SHA256(toString(number))),"
        f" fromUnixTimestamp64Milli(toInt64({start_ms} + intDiv(number * {span_ms}, {count})),"
        " 'UTC')"
        f" FROM numbers({count})"
    )
    store.maintenance_client().command(sql)
    # the even numbers' retries, a minute after the failure; every twelfth one (republished)
    # dated before it: republished, then failed again (still dead)
    outcomes = _array([o.value for o in RetryOutcome])
    failed = f"{start_ms} + intDiv(number * {span_ms}, {count})"
    store.maintenance_client().command(
        f"INSERT INTO {store.database}.{DEAD_LETTER_RETRIES.name}"
        " (origin_topic, origin_partition, origin_offset, raw_sha256, retried_at, audit_id,"
        " outcome, reason, published_to)"
        f" SELECT {topic}, number % 6, number, hex(SHA256(toString(number))),"
        f" fromUnixTimestamp64Milli(toInt64({failed} + if(number % 12 = 0, -60000, 60000)),"
        " 'UTC'), 'bench',"
        f" {outcomes}[(intDiv(number, 2) % {len(RetryOutcome)}) + 1], '', ''"
        f" FROM numbers({count}) WHERE number % 2 = 0"
    )
    return count


def write_audit(store: Store, now: datetime) -> int:
    """:data:`AUDIT_RUNS_PER_DAY` ``replay_audit`` rows a day for :data:`RETENTION_DAYS`
    ending at ``now``: evenly spaced, the newest started one step (an hour at 24 a day)
    before ``now``; returns how many."""
    count = AUDIT_RUNS_PER_DAY * RETENTION_DAYS
    step_ms = 86_400_000 // AUDIT_RUNS_PER_DAY
    end_ms = int(now.timestamp() * 1000)
    started = f"fromUnixTimestamp64Milli(toInt64({end_ms} - (number + 1) * {step_ms}), 'UTC')"
    commands, results = _array(list(OPS_COMMANDS)), _array(list(RESULTS))
    store.maintenance_client().command(
        f"INSERT INTO {store.database}.{REPLAY_AUDIT.name}"
        " (audit_id, command, who, host, started_at, finished_at, dry_run, params, result,"
        " detail, counts)"
        f" SELECT toString(generateUUIDv4()), {commands}[(number % {len(OPS_COMMANDS)}) + 1],"
        f" 'ops', 'bench', {started}, {started} + INTERVAL 1 MINUTE, number % 3 = 0, '{{}}',"
        f" {results}[(intDiv(number, {len(OPS_COMMANDS)}) % {len(RESULTS)}) + 1], 'bench',"
        " map('selected', toInt64(number * 10), 'sent', toInt64(number * 9))"
        f" FROM numbers({count})"
    )
    return count

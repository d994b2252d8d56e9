"""The ops dashboard: how the pipeline itself is doing, refreshed every 10 s.

Reads ``pipeline_metrics`` (migration 013: one row per measured interval or sample, written
by the stream workers, the sink and the lag sampler; columns ``at, source, metric, topic,
consumer_group, partition, value, interval_s``) and dead letters from ``dead_letters``, with
their retries from ``dead_letter_retries`` (``leadloom deadletters retry``, migration 016).
Rates are per Grafana interval bucket: the counts of a bucket summed, over the bucket's
seconds (``$__interval_s``), so a zoomed-out range still shows events per second.

Retried and still dead count every dead letter in the store, whatever the time range (a
backlog, not a rate): *retried* = its last republish is not followed by a new failure (the
pipeline took it); *still dead* = the rest: never republished, or written again after its
last republish (``leadloom.commands.deadletters``, the same rule as ``deadletters list``).
"""

from __future__ import annotations

from dashboards.style import DashboardSpec, Grid, Kind, PanelSpec
from schemas.registry import (
    DEAD_LETTER_RETRIES,
    DEAD_LETTER_TABLE,
    PIPELINE_METRICS,
    Metric,
    RetryOutcome,
)

OPS_UID = "leadloom-ops"
REFRESH = "10s"
EVENTS_CONSUMED = Metric.EVENTS_CONSUMED.value
RESOLVER_MERGES = Metric.RESOLVER_MERGES.value
SINK_BATCH_MS = Metric.SINK_BATCH_MS.value
E2E_P50_MS = Metric.E2E_LATENCY_P50_MS.value
E2E_P99_MS = Metric.E2E_LATENCY_P99_MS.value
CONSUMER_LAG = Metric.CONSUMER_LAG.value
_DL_KEY = "origin_topic, origin_partition, origin_offset, raw_sha256"  # a dead letter's key


def retry_state_sql(db: str) -> str:
    """Per dead letter: ``retried`` 1 when its last republish came after its (newest)
    failure, else 0 (still dead)."""
    return (
        "SELECT d.failed_at <= r.last_republished AS retried"
        f" FROM (SELECT {_DL_KEY}, failed_at FROM {db}.{DEAD_LETTER_TABLE.name} FINAL) AS d"
        f" LEFT JOIN (SELECT {_DL_KEY}, maxIf(retried_at,"
        f" outcome = '{RetryOutcome.REPUBLISHED.value}') AS last_republished"
        f" FROM {db}.{DEAD_LETTER_RETRIES.name} FINAL GROUP BY {_DL_KEY}) AS r"
        f" USING ({_DL_KEY})"
    )


def ops(db: str) -> DashboardSpec:
    """The ops dashboard's panels on database ``db``."""
    m = f"{db}.{PIPELINE_METRICS.name}"
    window = "$__timeFilter_ms(at)"
    bucket = "$__timeInterval_ms(at) AS time"
    # the newest lag sample of each partition in a bucket (samples, not counts: not summed)
    lag_now = ("SELECT consumer_group, topic, partition, argMax(value, at) AS lag,"
               f" max(at) AS sampled_at FROM {m}"
               f" WHERE metric = '{CONSUMER_LAG}' AND {window}"
               " GROUP BY consumer_group, topic, partition")
    panels = (
        PanelSpec(
            1, "每秒事件 按主题", "Events per second per topic", Kind.TIMESERIES,
            f"SELECT {bucket}, topic, sum(value) / $__interval_s AS events_per_s FROM {m}"
            f" WHERE metric = '{EVENTS_CONSUMED}' AND {window}"
            " GROUP BY time, topic ORDER BY time, topic",
            Grid(0, 0, 12, 8), ("time", "topic", "events_per_s"), unit="ops"),
        PanelSpec(
            2, "消费延迟 按消费组", "Consumer lag per group", Kind.TIMESERIES,
            "SELECT time, consumer_group, sum(lag) AS lag FROM"
            f" (SELECT {bucket}, consumer_group, topic, partition, argMax(value, at) AS lag"
            f" FROM {m} WHERE metric = '{CONSUMER_LAG}' AND {window}"
            " GROUP BY time, consumer_group, topic, partition)"
            " GROUP BY time, consumer_group ORDER BY time, consumer_group",
            Grid(12, 0, 12, 8), ("time", "consumer_group", "lag"), unit="short",
            description="messages behind, summed over the group's partitions (newest sample"
                        " of each partition per interval)"),
        PanelSpec(
            3, "死信原因 随时间", "Dead letters by reason over time", Kind.TIMESERIES,
            "SELECT $__timeInterval_ms(failed_at) AS time, reason,"
            " uniqExact(origin_topic, origin_partition, origin_offset, raw_sha256)"
            f" AS dead_letters FROM {db}.{DEAD_LETTER_TABLE.name} FINAL"
            " WHERE $__timeFilter_ms(failed_at) GROUP BY time, reason ORDER BY time, reason",
            Grid(0, 8, 12, 8), ("time", "reason", "dead_letters")),
        PanelSpec(
            4, "消费延迟 按分区", "Consumer lag per group and partition", Kind.TABLE,
            f"{lag_now} ORDER BY lag DESC, consumer_group, topic, partition LIMIT 50",
            Grid(12, 8, 12, 8), ("consumer_group", "topic", "partition", "lag", "sampled_at"),
            description="the newest sample of each partition in the time range, most behind"
                        " first"),
        PanelSpec(
            5, "入库批次延迟", "Sink batch latency", Kind.TIMESERIES,
            f"SELECT {bucket}, topic AS stored_table, avg(value) AS batch_ms FROM {m}"
            f" WHERE metric = '{SINK_BATCH_MS}' AND {window}"
            " GROUP BY time, stored_table ORDER BY time, stored_table",
            Grid(0, 16, 8, 8), ("time", "stored_table", "batch_ms"), unit="ms",
            description="mean insert time of the sink's batches per ClickHouse table"),
        PanelSpec(
            6, "端到端延迟", "End-to-end latency p50 / p99", Kind.TIMESERIES,
            f"SELECT {bucket}, maxIf(value, metric = '{E2E_P50_MS}') AS p50_ms,"
            f" maxIf(value, metric = '{E2E_P99_MS}') AS p99_ms FROM {m}"
            f" WHERE metric IN ('{E2E_P50_MS}', '{E2E_P99_MS}') AND {window}"
            " GROUP BY time ORDER BY time",
            Grid(8, 16, 8, 8), ("time", "p50_ms", "p99_ms"), unit="ms",
            description="event received at the edge to stored, per sink flush interval (the"
                        " worst interval of each bucket)"),
        PanelSpec(
            7, "每分钟身份合并", "Resolver merges per minute", Kind.TIMESERIES,
            f"SELECT {bucket}, sum(value) * 60 / $__interval_s AS merges_per_min FROM {m}"
            f" WHERE metric = '{RESOLVER_MERGES}' AND {window} GROUP BY time ORDER BY time",
            Grid(16, 16, 8, 8), ("time", "merges_per_min")),
        # never republished: last_republished is the type's zero (1970), before any failure
        PanelSpec(
            8, "死信已重试", "Dead letters retried", Kind.STAT,
            f"SELECT countIf(retried) AS retried FROM ({retry_state_sql(db)})",
            Grid(0, 24, 6, 6), ("retried",),
            description="dead letters a 'leadloom deadletters retry' republished and the"
                        " pipeline took (not failed again since); every dead letter stored,"
                        " whatever the time range"),
        PanelSpec(
            9, "死信仍未处理", "Dead letters still dead", Kind.STAT,
            f"SELECT countIf(NOT retried) AS still_dead FROM ({retry_state_sql(db)})",
            Grid(6, 24, 6, 6), ("still_dead",),
            description="dead letters never republished, or failed again after their last"
                        " republish; every dead letter stored, whatever the time range"),
    )
    return DashboardSpec(OPS_UID, "管道运维", "Pipeline operations", panels,
                         refresh=REFRESH, time_from="now-1h", tags=("leadloom", "ops"))

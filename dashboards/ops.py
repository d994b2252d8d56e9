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

Ops command runs come from ``replay_audit`` (migration 015, ``leadloom.commands.audit``: one
row per run of replay reprocess / republish, deadletters retry, groups reset, dry runs and
refusals included; read ``FINAL``, a row may be delivered twice). A run is *in the range*
when it overlaps it (started before the range's end, finished after its start), so a long
rebuild that began before the range still shows. The runs-by-result panel always has a row
per known command (zeros when none ran); the latest-runs table, when no run is in the range,
answers one placeholder row saying so (a ``UNION ALL`` branch taken only when the range has
no run) rather than nothing: an empty table reads as a broken panel, and an audit row for an
action nobody took (e.g. written by the demo) would make the audit lie.
"""

from __future__ import annotations

from dashboards.style import DashboardSpec, Grid, Kind, PanelSpec
from schemas.registry import (
    DEAD_LETTER_RETRIES,
    DEAD_LETTER_TABLE,
    PIPELINE_METRICS,
    REPLAY_AUDIT,
    AuditResult,
    Metric,
    OpsCommand,
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
# a dead letter's key (origin_line: its line in a batched message, migration 018)
_DL_KEY = "origin_topic, origin_partition, origin_offset, origin_line, raw_sha256"
# the commands that write replay_audit rows (their audited(...) names): each always has a
# row in the runs panel; a command not listed here still shows once it has run
OPS_COMMANDS = tuple(c.value for c in OpsCommand)
RESULTS = tuple(r.value for r in AuditResult)
NO_RUN = "no ops command run in this range"
LATEST_RUNS = 50
# a run overlapping the dashboard's range (started before its end, finished after its start)
_RUN_IN_RANGE = "started_at <= $__toTime_ms AND finished_at >= $__fromTime_ms"


def _quoted(values: tuple[str, ...]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def runs_by_result_sql(db: str) -> str:
    """Per command (every known one, and any other that ran): its runs in the range per
    result, zeros included (the known commands' placeholder rows carry no result)."""
    per_result = ", ".join(f"countIf(result = '{r}') AS {r}" for r in RESULTS)
    return (
        f"SELECT command, {per_result} FROM"
        f" (SELECT toString(command) AS command, toString(result) AS result"
        f" FROM {db}.{REPLAY_AUDIT.name} FINAL WHERE {_RUN_IN_RANGE}"
        f" UNION ALL SELECT arrayJoin({_quoted(OPS_COMMANDS)}) AS command, '' AS result)"
        " GROUP BY command ORDER BY command"
    )


def latest_runs_sql(db: str) -> str:
    """The newest :data:`LATEST_RUNS` runs in the range, newest first (counts as
    ``name n, ...``); one :data:`NO_RUN` row (no time) when the range has none."""
    audit = f"{db}.{REPLAY_AUDIT.name}"
    counts = ("arrayStringConcat(arrayMap((k, v) -> concat(k, ' ', toString(v)),"
              " mapKeys(counts), mapValues(counts)), ', ')")
    return (
        "SELECT time, command, who, dry_run, result, detail, counts_text AS counts FROM"
        " (SELECT started_at AS time, toString(command) AS command, who,"
        " if(dry_run = 1, 'dry run', '') AS dry_run, toString(result) AS result, detail,"
        f" {counts} AS counts_text FROM {audit} FINAL WHERE {_RUN_IN_RANGE}"
        f" ORDER BY started_at DESC, audit_id LIMIT {LATEST_RUNS}"
        " UNION ALL SELECT NULL, '', '', '', '', "
        f"'{NO_RUN}', '' WHERE (SELECT count() FROM {audit} WHERE {_RUN_IN_RANGE}) = 0)"
        " ORDER BY time DESC NULLS LAST"
    )


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
            " uniqExact(origin_topic, origin_partition, origin_offset, origin_line, raw_sha256)"
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
            Grid(0, 24, 12, 6), ("retried",),
            description="dead letters a 'leadloom deadletters retry' republished and the"
                        " pipeline took (not failed again since); every dead letter stored,"
                        " whatever the time range"),
        PanelSpec(
            9, "死信仍未处理", "Dead letters still dead", Kind.STAT,
            f"SELECT countIf(NOT retried) AS still_dead FROM ({retry_state_sql(db)})",
            Grid(0, 30, 12, 6), ("still_dead",),
            description="dead letters never republished, or failed again after their last"
                        " republish; every dead letter stored, whatever the time range"),
        PanelSpec(
            10, "运维命令 按结果", "Ops command runs by result", Kind.BARGAUGE,
            runs_by_result_sql(db), Grid(12, 24, 12, 12), ("command",) + RESULTS,
            description="runs of each ops command (replay reprocess and republish,"
                        " deadletters retry, groups reset; dry runs included) overlapping"
                        " the time range, per result; zero when it did not run"),
        PanelSpec(
            11, "最近运维命令", "Latest ops command runs", Kind.TABLE,
            latest_runs_sql(db), Grid(0, 36, 24, 9),
            ("time", "command", "who", "dry_run", "result", "detail", "counts"),
            description=f"the newest {LATEST_RUNS} runs overlapping the time range (replay_audit):"
                        " who ran what, dry run or not, how it ended and what it counted;"
                        f" one row '{NO_RUN}' when none did"),
    )
    return DashboardSpec(OPS_UID, "管道运维", "Pipeline operations", panels,
                         refresh=REFRESH, time_from="now-1h", tags=("leadloom", "ops"))

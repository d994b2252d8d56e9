-- Ops metrics (issue 10): the pipeline's own figures, written by the pipeline itself so the
-- ops dashboard has data wherever the pipeline runs. One row per measured interval (a count:
-- events consumed, resolver merges) or per sample (consumer lag, a sink batch's insert
-- time, end-to-end latency quantiles of a sink flush interval). Metric names and sources
-- are spelled in schemas/registry.py (Metric, MetricSource); streams/metrics.py builds the
-- rows, ARCHITECTURE.md "Ops metrics" says who writes which.
--
-- at: end of the measured interval, or the moment of a sample; interval_s: the seconds a
-- count covers (0 for samples); topic: the Kafka topic, or the ClickHouse table of a sink
-- batch ('' if none); consumer_group '' and partition -1 if none.
--
-- Worker rows reach the table through Kafka and the sink, at least once: a record the sink
-- stores twice (a crash between insert and commit) repeats rows exactly, and the sorting
-- key (every column that tells two measurements apart) collapses them when parts merge.
-- Reads filter on metric and a time range first: the key starts with (metric, at).
-- Rows are kept 30 days after they were stored (ingested_at, not at: rows written with
-- another clock, a test's or a backfill's, are not dropped as they are inserted).
CREATE TABLE IF NOT EXISTS {database}.pipeline_metrics
(
    at DateTime64(3, 'UTC'),
    source LowCardinality(String),
    metric LowCardinality(String),
    topic LowCardinality(String),
    consumer_group LowCardinality(String),
    partition Int32,
    value Float64,
    interval_s Float32,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
ORDER BY (metric, at, source, topic, consumer_group, partition)
TTL toDateTime(ingested_at) + INTERVAL 30 DAY;

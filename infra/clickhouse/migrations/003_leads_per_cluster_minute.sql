-- Faust's leads aggregate: one part per (cluster, event-time minute, source partition).
-- version = distinct events + distinct badges counted; it only grows, so the latest
-- part wins (ReplacingMergeTree(version)) and replays or resent snapshots are harmless.

CREATE TABLE IF NOT EXISTS {database}.leads_minute_parts
(
    cluster_id LowCardinality(String),
    minute DateTime('UTC'),
    source_topic LowCardinality(String),
    source_partition UInt16,
    scans UInt32,
    inquiries UInt32,
    procurement_steps UInt32,
    distinct_badges UInt32,
    version UInt64,
    updated_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMMDD(minute)
ORDER BY (cluster_id, minute, source_topic, source_partition);

-- Distinct badges add up across parts because scans are keyed by badge id: one badge,
-- one partition. Use FINAL so that only the newest part of each key is counted.
CREATE VIEW IF NOT EXISTS {database}.leads_per_cluster_minute AS
SELECT
    cluster_id,
    minute,
    sum(scans) AS scans,
    sum(inquiries) AS inquiries,
    sum(procurement_steps) AS procurement_steps,
    sum(distinct_badges) AS distinct_badges
FROM {database}.leads_minute_parts FINAL
GROUP BY cluster_id, minute;

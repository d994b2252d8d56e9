-- Every message that failed decoding or validation. One row per source message:
-- idempotent on (source_topic, source_partition, source_offset).

CREATE TABLE IF NOT EXISTS {database}.dead_letters
(
    source_topic LowCardinality(String),
    source_partition UInt16,
    source_offset UInt64,
    reason LowCardinality(String),
    detail String,
    event_id String,
    raw_size UInt32,
    raw_base64 String CODEC(ZSTD(3)),
    failed_at DateTime64(3, 'UTC'),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
ORDER BY (source_topic, source_partition, source_offset);

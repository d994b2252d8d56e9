-- Raw event tables, one per event type (names and columns: schemas/registry.py).
-- Idempotent on event_id: a resent or replayed event is inserted again and collapses
-- into one row (ReplacingMergeTree on the sorting key). Read exact counts with FINAL or
-- uniqExact(event_id). ingested_at is set by the insert: the time the row became visible.
-- On a ClickHouse cluster, LEADLOOM_CLICKHOUSE_CLUSTER=<name> runs each statement ON CLUSTER
-- with Replicated* engines (leadloom/store.py: on_cluster).

CREATE TABLE IF NOT EXISTS {database}.registrations
(
    event_id String,
    event_type LowCardinality(String),
    fair_id LowCardinality(String),
    occurred_at DateTime64(3, 'UTC'),
    received_at DateTime64(3, 'UTC'),
    source_channel LowCardinality(String),
    source_device String,
    badge_id String,
    buyer_type LowCardinality(String),
    consent Bool,
    name_masked String,
    email_hash String,
    phone_hash String,
    wechat_hash String,
    company String,
    country LowCardinality(String),
    province LowCardinality(String),
    city LowCardinality(String),
    source_topic LowCardinality(String),
    source_partition UInt16,
    source_offset UInt64,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMMDD(occurred_at)
ORDER BY event_id;

CREATE TABLE IF NOT EXISTS {database}.scans
(
    event_id String,
    event_type LowCardinality(String),
    fair_id LowCardinality(String),
    occurred_at DateTime64(3, 'UTC'),
    received_at DateTime64(3, 'UTC'),
    source_channel LowCardinality(String),
    source_device String,
    badge_id String,
    booth_id LowCardinality(String),
    exhibitor_id LowCardinality(String),
    cluster_id LowCardinality(String),
    pavilion_id LowCardinality(String),
    scanner_device String,
    staff_id String,
    method LowCardinality(String),
    rating LowCardinality(String),
    note String,
    source_topic LowCardinality(String),
    source_partition UInt16,
    source_offset UInt64,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMMDD(occurred_at)
ORDER BY (cluster_id, event_id);

CREATE TABLE IF NOT EXISTS {database}.inquiries
(
    event_id String,
    event_type LowCardinality(String),
    fair_id LowCardinality(String),
    occurred_at DateTime64(3, 'UTC'),
    received_at DateTime64(3, 'UTC'),
    source_channel LowCardinality(String),
    source_device String,
    cluster_id LowCardinality(String),
    exhibitor_id LowCardinality(String),
    pavilion_id LowCardinality(String),
    categories Array(LowCardinality(String)),
    quantity Nullable(UInt32),
    budget Nullable(Decimal(18, 2)),
    currency LowCardinality(String),
    lead_time_days Nullable(UInt16),
    language LowCardinality(String),
    channel LowCardinality(String),
    consent Bool,
    name_masked String,
    email_hash String,
    phone_hash String,
    wechat_hash String,
    company String,
    country LowCardinality(String),
    province LowCardinality(String),
    city LowCardinality(String),
    source_topic LowCardinality(String),
    source_partition UInt16,
    source_offset UInt64,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMMDD(occurred_at)
ORDER BY (cluster_id, event_id);

CREATE TABLE IF NOT EXISTS {database}.procurement_steps
(
    event_id String,
    event_type LowCardinality(String),
    fair_id LowCardinality(String),
    occurred_at DateTime64(3, 'UTC'),
    received_at DateTime64(3, 'UTC'),
    source_channel LowCardinality(String),
    source_device String,
    step LowCardinality(String),
    buyer_ref String,
    exhibitor_id LowCardinality(String),
    cluster_id LowCardinality(String),
    pavilion_id LowCardinality(String),
    category LowCardinality(String),
    quantity Nullable(UInt32),
    value Nullable(Decimal(18, 2)),
    currency LowCardinality(String),
    source_topic LowCardinality(String),
    source_partition UInt16,
    source_offset UInt64,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMMDD(occurred_at)
ORDER BY (cluster_id, event_id);

CREATE TABLE IF NOT EXISTS {database}.supplier_profiles
(
    event_id String,
    event_type LowCardinality(String),
    fair_id LowCardinality(String),
    occurred_at DateTime64(3, 'UTC'),
    received_at DateTime64(3, 'UTC'),
    source_channel LowCardinality(String),
    source_device String,
    exhibitor_id LowCardinality(String),
    cluster_id LowCardinality(String),
    pavilion_id LowCardinality(String),
    categories Array(LowCardinality(String)),
    crafts Array(LowCardinality(String)),
    monthly_capacity UInt32,
    moq UInt32,
    lead_time_days UInt16,
    certifications Array(LowCardinality(String)),
    source_topic LowCardinality(String),
    source_partition UInt16,
    source_offset UInt64,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
ORDER BY (cluster_id, event_id);

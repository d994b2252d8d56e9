-- Event-id is the identity of a stored event (issue 8). The raw event tables collapse
-- duplicates on event_id alone: before, scans, inquiries, procurement_steps and
-- supplier_profiles were sorted by (cluster_id, event_id) and all but supplier_profiles
-- partitioned by the event-time day, and ReplacingMergeTree only collapses rows with the
-- same sorting key in the same partition. A replay after an enrichment fix that moved an
-- event to another cluster, or corrected its time, added a second row.
--
-- Sorting key: event_id. Partition: none. Whatever a partition is derived from must never
-- change for an event, and the only such column is event_id itself (fair_id comes from the
-- event too and a replay may correct it); a fair's rows fit one partition comfortably.
-- Version: ingested_at, set by the insert, so the newest ingest wins: a replay with
-- corrected enrichment is inserted after the row it corrects and replaces it (a repeat at
-- the same millisecond: the last insert wins).
--
-- Each table is rebuilt: a new table <name>__006 with the new keys, every row copied, the
-- two exchanged atomically (EXCHANGE TABLES; views read tables by name, so they read the new
-- one at once), the old one dropped. Re-running after an interruption is safe: the guards
-- ask whether the table still has its old keys, and a repeated copy collapses with the first
-- (same event_id, same ingested_at). On a server, stop every sink (leadloom run) before the
-- upgrade: rows inserted into the old table between copy and exchange would be dropped with
-- it (the embedded store has one owner, which migrates before its sink starts).

-- when: SELECT count() FROM system.tables WHERE database = '{database}'
--       AND name = 'registrations' AND (sorting_key != 'event_id' OR partition_key != '')
CREATE TABLE IF NOT EXISTS {database}.registrations__006
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
ORDER BY event_id;

-- when: SELECT count() FROM system.tables WHERE database = '{database}'
--       AND name = 'registrations' AND (sorting_key != 'event_id' OR partition_key != '')
INSERT INTO {database}.registrations__006 SELECT * FROM {database}.registrations;

-- when: SELECT count() FROM system.tables WHERE database = '{database}'
--       AND name = 'registrations' AND (sorting_key != 'event_id' OR partition_key != '')
EXCHANGE TABLES {database}.registrations AND {database}.registrations__006;

DROP TABLE IF EXISTS {database}.registrations__006;

-- when: SELECT count() FROM system.tables WHERE database = '{database}'
--       AND name = 'scans' AND (sorting_key != 'event_id' OR partition_key != '')
CREATE TABLE IF NOT EXISTS {database}.scans__006
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
ORDER BY event_id;

-- when: SELECT count() FROM system.tables WHERE database = '{database}'
--       AND name = 'scans' AND (sorting_key != 'event_id' OR partition_key != '')
INSERT INTO {database}.scans__006 SELECT * FROM {database}.scans;

-- when: SELECT count() FROM system.tables WHERE database = '{database}'
--       AND name = 'scans' AND (sorting_key != 'event_id' OR partition_key != '')
EXCHANGE TABLES {database}.scans AND {database}.scans__006;

DROP TABLE IF EXISTS {database}.scans__006;

-- when: SELECT count() FROM system.tables WHERE database = '{database}'
--       AND name = 'inquiries' AND (sorting_key != 'event_id' OR partition_key != '')
CREATE TABLE IF NOT EXISTS {database}.inquiries__006
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
ORDER BY event_id;

-- when: SELECT count() FROM system.tables WHERE database = '{database}'
--       AND name = 'inquiries' AND (sorting_key != 'event_id' OR partition_key != '')
INSERT INTO {database}.inquiries__006 SELECT * FROM {database}.inquiries;

-- when: SELECT count() FROM system.tables WHERE database = '{database}'
--       AND name = 'inquiries' AND (sorting_key != 'event_id' OR partition_key != '')
EXCHANGE TABLES {database}.inquiries AND {database}.inquiries__006;

DROP TABLE IF EXISTS {database}.inquiries__006;

-- when: SELECT count() FROM system.tables WHERE database = '{database}'
--       AND name = 'procurement_steps' AND (sorting_key != 'event_id' OR partition_key != '')
CREATE TABLE IF NOT EXISTS {database}.procurement_steps__006
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
ORDER BY event_id;

-- when: SELECT count() FROM system.tables WHERE database = '{database}'
--       AND name = 'procurement_steps' AND (sorting_key != 'event_id' OR partition_key != '')
INSERT INTO {database}.procurement_steps__006 SELECT * FROM {database}.procurement_steps;

-- when: SELECT count() FROM system.tables WHERE database = '{database}'
--       AND name = 'procurement_steps' AND (sorting_key != 'event_id' OR partition_key != '')
EXCHANGE TABLES {database}.procurement_steps AND {database}.procurement_steps__006;

DROP TABLE IF EXISTS {database}.procurement_steps__006;

-- when: SELECT count() FROM system.tables WHERE database = '{database}'
--       AND name = 'supplier_profiles' AND (sorting_key != 'event_id' OR partition_key != '')
CREATE TABLE IF NOT EXISTS {database}.supplier_profiles__006
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
ORDER BY event_id;

-- when: SELECT count() FROM system.tables WHERE database = '{database}'
--       AND name = 'supplier_profiles' AND (sorting_key != 'event_id' OR partition_key != '')
INSERT INTO {database}.supplier_profiles__006 SELECT * FROM {database}.supplier_profiles;

-- when: SELECT count() FROM system.tables WHERE database = '{database}'
--       AND name = 'supplier_profiles' AND (sorting_key != 'event_id' OR partition_key != '')
EXCHANGE TABLES {database}.supplier_profiles AND {database}.supplier_profiles__006;

DROP TABLE IF EXISTS {database}.supplier_profiles__006;

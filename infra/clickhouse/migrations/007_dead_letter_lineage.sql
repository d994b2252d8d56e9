-- Dead letters keep lineage (issue 8): origin_topic/partition/offset are the coordinates of
-- the message's first reading. A replay sets the Kafka header 'leadloom-origin'
-- (schemas/registry.py, ORIGIN_HEADER) to them; a message without it is its own origin
-- (streams/rows.py, dead_letter_row). dead_letters now collapses on the origin, so a
-- replayed message that fails again replaces its dead letter (the newest failure wins:
-- version ingested_at) instead of adding a second one; source_* say where the newest
-- failure was read. Before, rows collapsed on (source_topic, source_partition,
-- source_offset), and a replay reads the message at new coordinates.
-- raw_sha256 ends the key: one message of a derived topic carries many newline-joined
-- rows (identity blocks, the sink's refused rows of one insert), and each failed row is
-- its own dead letter; on the coordinates alone all but one collapsed away. The same
-- row failing again (a redelivery, a replay) has the same hash and still collapses.
--
-- The sorting key cannot change in place, so the table is rebuilt as in migration 006:
-- a new table, every row copied (existing rows are their own origin), exchanged, the old
-- one dropped; guarded by the table's sorting key, and a repeated copy collapses with the
-- first (same origin, same ingested_at). Stop every sink on a server before the upgrade.

-- when: SELECT count() FROM system.tables WHERE database = '{database}'
--       AND name = 'dead_letters' AND sorting_key != 'origin_topic, origin_partition, origin_offset, raw_sha256'
CREATE TABLE IF NOT EXISTS {database}.dead_letters__007
(
    source_topic LowCardinality(String),
    source_partition UInt16,
    source_offset UInt64,
    origin_topic LowCardinality(String),
    origin_partition UInt16,
    origin_offset UInt64,
    reason LowCardinality(String),
    detail String,
    event_id String,
    raw_size UInt32,
    raw_base64 String CODEC(ZSTD(3)),
    raw_sha256 String,
    failed_at DateTime64(3, 'UTC'),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
ORDER BY (origin_topic, origin_partition, origin_offset, raw_sha256);

-- when: SELECT count() FROM system.tables WHERE database = '{database}'
--       AND name = 'dead_letters' AND sorting_key != 'origin_topic, origin_partition, origin_offset, raw_sha256'
INSERT INTO {database}.dead_letters__007
    (source_topic, source_partition, source_offset, origin_topic, origin_partition,
     origin_offset, reason, detail, event_id, raw_size, raw_base64, raw_sha256, failed_at,
     ingested_at)
SELECT source_topic, source_partition, source_offset, source_topic, source_partition,
       source_offset, reason, detail, event_id, raw_size, raw_base64, raw_sha256, failed_at,
       ingested_at
FROM {database}.dead_letters;

-- when: SELECT count() FROM system.tables WHERE database = '{database}'
--       AND name = 'dead_letters' AND sorting_key != 'origin_topic, origin_partition, origin_offset, raw_sha256'
EXCHANGE TABLES {database}.dead_letters AND {database}.dead_letters__007;

DROP TABLE IF EXISTS {database}.dead_letters__007;

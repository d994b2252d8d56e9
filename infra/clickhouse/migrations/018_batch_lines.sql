-- online: adds UInt32 columns (old parts read them as 0, nothing is rewritten) and appends
-- the new dead-letter columns to the sorting keys (metadata only); a running owner applies
-- it while the sink inserts: rows without the columns are what they were before.
--
-- Batched raw messages (issue 14): a raw message may carry several events as NDJSON, one
-- per line (streams/lines.py; schemas/registry.py RAW_VALUE_FORMAT). An event's lineage
-- is its topic, partition, offset and line: the 0-based index of its line in the message,
-- 0 for a message of one event. Rows carry a line only when it is not 0 (optional columns
-- in the registry), so every row of a single-event message is stored while this is
-- pending, and a batch's later lines are held by the sink until it has run.
--
-- dead_letters keeps one row per origin, and with batches the origin is (topic, partition,
-- offset, line): two lines of one message with the same bytes are two dead letters. The
-- engine lets a sorting key grow only by columns added in the same ALTER, appended at the
-- end and without a default expression (their type's default, 0); repeating the ALTER
-- once applied changes nothing (verified on the embedded engine), and the guard skips it.
-- dead_letter_retries is keyed by the dead letter's key, so it gains origin_line the same way.

ALTER TABLE {database}.scans ADD COLUMN IF NOT EXISTS source_line UInt32 AFTER source_offset;
ALTER TABLE {database}.registrations ADD COLUMN IF NOT EXISTS source_line UInt32 AFTER source_offset;
ALTER TABLE {database}.inquiries ADD COLUMN IF NOT EXISTS source_line UInt32 AFTER source_offset;
ALTER TABLE {database}.procurement_steps ADD COLUMN IF NOT EXISTS source_line UInt32 AFTER source_offset;
ALTER TABLE {database}.supplier_profiles ADD COLUMN IF NOT EXISTS source_line UInt32 AFTER source_offset;

-- when: SELECT count() FROM system.tables WHERE database = '{database}'
--       AND name = 'dead_letters' AND sorting_key = 'origin_topic, origin_partition, origin_offset, raw_sha256'
ALTER TABLE {database}.dead_letters
    ADD COLUMN IF NOT EXISTS source_line UInt32 AFTER source_offset,
    ADD COLUMN IF NOT EXISTS origin_line UInt32 AFTER origin_offset,
    MODIFY ORDER BY (origin_topic, origin_partition, origin_offset, raw_sha256, origin_line);

-- when: SELECT count() FROM system.tables WHERE database = '{database}'
--       AND name = 'dead_letter_retries' AND sorting_key = 'origin_topic, origin_partition, origin_offset, raw_sha256, retried_at, audit_id'
ALTER TABLE {database}.dead_letter_retries
    ADD COLUMN IF NOT EXISTS origin_line UInt32 AFTER origin_offset,
    MODIFY ORDER BY (origin_topic, origin_partition, origin_offset, raw_sha256, retried_at,
                     audit_id, origin_line);

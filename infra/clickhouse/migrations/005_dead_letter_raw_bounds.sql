-- A dead letter keeps at most a prefix of its raw bytes (streams/rows.py,
-- DEAD_LETTER_RAW_PREFIX) with the full size (raw_size) and this SHA-256 of the whole
-- message, so that even an event larger than any producer limit is recorded, never lost.
-- raw_base64 is complete when raw_size equals the decoded prefix length.

ALTER TABLE {database}.dead_letters ADD COLUMN IF NOT EXISTS raw_sha256 String AFTER raw_base64

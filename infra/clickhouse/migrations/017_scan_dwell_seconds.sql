-- online: adds one Nullable column; ClickHouse adds it without rewriting any part (old
-- parts read it as NULL), so a running owner applies it while the sink inserts.
--
-- booth_scan version 2 (issue 12): dwell_seconds, the seconds the buyer spent at the booth
-- (0..86,400), NULL for version 1 scans and version 2 scans without it. Scan rows carry the
-- key only when the event gives it (streams.rows.event_row), so every other scan is stored
-- before this runs; a row that carries it before this runs is held by the sink, not
-- dead-lettered, until it has run (ARCHITECTURE.md "Schema evolution").
-- The scanner's column keeps version 1's name scanner_device (version 2 calls it scanner_id).
ALTER TABLE {database}.scans ADD COLUMN IF NOT EXISTS dwell_seconds Nullable(UInt32) AFTER note;

-- Replay (issue 12): the raw archive and the ops audit.
--
-- raw_archive: every message of every raw topic as the broker delivered it (committed
-- records only: the sink reads read_committed), written by the sink next to the derived
-- rows, so every derived table can be rebuilt from it after Kafka's retention has passed
-- (`leadloom replay reprocess --source archive`). A dead letter's message is here too,
-- whole (dead_letters keeps a 64 KiB prefix). One row per (topic, partition, offset): a
-- redelivery after a sink crash collapses into the row already there.
--
-- value: the message bytes as UTF-8 text, or their base64 when they are not UTF-8
-- (value_base64 = 1); key_base64: the key's base64 (NULL: no key); headers: Kafka's record
-- headers in order, each value as base64 (a header key may repeat). event_id, event_type
-- and occurred_at are read from the value by the engine at insert (empty / NULL when the
-- message is not a JSON event): what replays select on, never trusted for anything else.
-- The archive holds personal data in clear, as the raw topics do: ops and the store owner
-- read it, the organizer and the delegations do not (schemas/scope.py).
CREATE TABLE IF NOT EXISTS {database}.raw_archive
(
    topic LowCardinality(String),
    partition UInt16,
    offset UInt64,
    kafka_timestamp DateTime64(3, 'UTC'),
    key_base64 Nullable(String),
    value String,
    value_base64 UInt8,
    headers Array(Tuple(name String, value_base64 String)),
    event_id String DEFAULT if(value_base64 = 1, '', JSONExtractString(value, 'event_id')),
    event_type LowCardinality(String)
        DEFAULT if(value_base64 = 1, '', JSONExtractString(value, 'event_type')),
    occurred_at Nullable(DateTime64(3, 'UTC')) DEFAULT if(value_base64 = 1, NULL,
        parseDateTime64BestEffortOrNull(JSONExtractString(value, 'occurred_at'), 3, 'UTC')),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
ORDER BY (topic, partition, offset);

-- replay_audit: one row per run of an ops command that changes or rebuilds state (replay
-- reprocess and republish, dead-letter retry, consumer-group reset), dry runs included:
-- who ran it, when, with what, and how it ended (ok, failed, interrupted, refused).
-- Written through Kafka (<ns>.ops, header table) and stored by the sink, so a command
-- needs no write access to the store.
CREATE TABLE IF NOT EXISTS {database}.replay_audit
(
    audit_id String,
    command LowCardinality(String),
    who String,
    host String,
    started_at DateTime64(3, 'UTC'),
    finished_at DateTime64(3, 'UTC'),
    dry_run UInt8,
    params String,
    result LowCardinality(String),
    detail String,
    counts Map(String, Int64),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
ORDER BY (started_at, audit_id);

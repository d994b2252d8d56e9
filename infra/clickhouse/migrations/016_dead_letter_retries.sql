-- Dead-letter triage (issue 12): one row per dead letter per `leadloom deadletters retry`.
--
-- Keyed by the dead letter's own key (origin_topic, origin_partition, origin_offset,
-- raw_sha256: dead_letters' sorting key, migration 007) and the retry (retried_at,
-- audit_id: the run's replay_audit row). outcome: 'republished' (it passes the current
-- schemas and was sent again to its origin topic: published_to is where it landed,
-- `topic[partition]@offset`), 'still_invalid' (reason: what the current validation says),
-- 'not_retryable' (reason: why: a derived stage's dead letter, bytes no longer whole, an
-- origin outside the namespace's raw topics). A republished message that the pipeline
-- refuses again replaces its dead letter (same origin, the leadloom-origin header), whose
-- failed_at is then after the republish's retried_at: still dead.
-- Written through Kafka (<ns>.ops, header table) and stored by the sink, as the audit.
CREATE TABLE IF NOT EXISTS {database}.dead_letter_retries
(
    origin_topic LowCardinality(String),
    origin_partition UInt16,
    origin_offset UInt64,
    raw_sha256 String,
    retried_at DateTime64(3, 'UTC'),
    audit_id String,
    outcome LowCardinality(String),
    reason String,
    published_to String,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
ORDER BY (origin_topic, origin_partition, origin_offset, raw_sha256, retried_at, audit_id);

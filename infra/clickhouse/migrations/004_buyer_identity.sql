-- Buyer identity (streams/identity): every buyer-bearing event with the buyer it resolved
-- to, the alias -> canonical mapping that follows merges, the merges themselves, and the
-- latest profile of each buyer. Unique-buyer metrics resolve at query time through the
-- mapping (ARCHITECTURE.md: "Unique buyers" has the measurements behind that choice), so
-- a merge is reflected as soon as its alias rows are stored.

-- One row per registration, scan, inquiry and procurement step; idempotent on event_id.
-- alias is the identity record the event belongs to (an inquiry's own event id, or the
-- record that holds the badge): it never changes, while buyer_id is the canonical buyer
-- at resolution time and may be absorbed later.
CREATE TABLE IF NOT EXISTS {database}.buyer_events
(
    event_id String,
    event_type LowCardinality(String),
    fair_id LowCardinality(String),
    occurred_at DateTime64(3, 'UTC'),
    cluster_id LowCardinality(String),
    exhibitor_id LowCardinality(String),
    booth_id LowCardinality(String),
    alias String,
    buyer_id String,
    resolved_at DateTime64(3, 'UTC'),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMMDD(occurred_at)
ORDER BY (fair_id, event_id);

-- alias -> canonical buyer. version is the resolver's record count when the row was
-- written; it only grows, so the newest row of an alias is its current buyer.
CREATE TABLE IF NOT EXISTS {database}.buyer_aliases
(
    fair_id LowCardinality(String),
    alias String,
    buyer_id String,
    version UInt64,
    updated_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (fair_id, alias);

-- Each merge once: a buyer is absorbed at most once (it is never a root again).
CREATE TABLE IF NOT EXISTS {database}.buyer_merges
(
    fair_id LowCardinality(String),
    survivor String,
    absorbed String,
    record_id String,
    evidence Array(String),
    score Float32,
    merged_at DateTime64(3, 'UTC'),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
ORDER BY (fair_id, absorbed);

-- Latest profile per buyer (merged_into names the survivor of an absorbed buyer).
-- Personal data only hashed (normalised email, E.164 phone, WeChat id) or masked (name),
-- and only from records whose buyer consented (DESIGN.md invariant 8).
CREATE TABLE IF NOT EXISTS {database}.buyers
(
    fair_id LowCardinality(String),
    buyer_id String,
    merged_into String,
    records UInt32,
    badges Array(String),
    consent Bool,
    name_masked String,
    email_hashes Array(String),
    phone_hashes Array(String),
    wechat_hashes Array(String),
    company String,
    country LowCardinality(String),
    city String,
    first_seen DateTime64(3, 'UTC'),
    last_seen DateTime64(3, 'UTC'),
    version UInt64,
    updated_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (fair_id, buyer_id);

CREATE VIEW IF NOT EXISTS {database}.buyer_alias_current AS
SELECT fair_id, alias, argMax(buyer_id, version) AS buyer_id
FROM {database}.buyer_aliases
GROUP BY fair_id, alias;

-- Every buyer event with the buyer it belongs to now.
CREATE VIEW IF NOT EXISTS {database}.buyer_events_resolved AS
SELECT
    e.event_id AS event_id,
    e.event_type AS event_type,
    e.fair_id AS fair_id,
    e.occurred_at AS occurred_at,
    e.cluster_id AS cluster_id,
    e.exhibitor_id AS exhibitor_id,
    e.booth_id AS booth_id,
    if(a.buyer_id = '', e.buyer_id, a.buyer_id) AS buyer_id
FROM {database}.buyer_events AS e
LEFT JOIN {database}.buyer_alias_current AS a ON e.fair_id = a.fair_id AND e.alias = a.alias;

CREATE VIEW IF NOT EXISTS {database}.unique_buyers_by_cluster AS
SELECT fair_id, cluster_id, uniqExact(buyer_id) AS buyers, uniqExact(event_id) AS events
FROM {database}.buyer_events_resolved
WHERE cluster_id != ''
GROUP BY fair_id, cluster_id;

CREATE VIEW IF NOT EXISTS {database}.unique_buyers_by_booth AS
SELECT fair_id, cluster_id, booth_id, uniqExact(buyer_id) AS buyers, uniqExact(event_id) AS events
FROM {database}.buyer_events_resolved
WHERE booth_id != ''
GROUP BY fair_id, cluster_id, booth_id;

CREATE VIEW IF NOT EXISTS {database}.unique_buyers_by_hour AS
SELECT fair_id, cluster_id, toStartOfHour(occurred_at) AS hour,
       uniqExact(buyer_id) AS buyers, uniqExact(event_id) AS events
FROM {database}.buyer_events_resolved
WHERE cluster_id != ''
GROUP BY fair_id, cluster_id, hour;

-- Every buyer the fair knows, registered or only scanned or only inquiring.
CREATE VIEW IF NOT EXISTS {database}.unique_buyers_total AS
SELECT fair_id, uniqExact(buyer_id) AS buyers, count() AS aliases
FROM {database}.buyer_alias_current
GROUP BY fair_id;

-- Lead intelligence (issue 9): the tables the stream and the surge watcher write, and the
-- previous season's counts an operator imports. The views over them are migration 011.

-- One row per (inquiry, rank): the top suppliers the matchmaking agent recommended for an
-- online inquiry, with the reasons (streams/matching.py). matched_at is the inquiry's event
-- time, from which later scans and procurement steps between the inquiry's buyer and the
-- supplier are credited to the match. The agent keeps each inquiry's first result, so a
-- re-read inquiry re-sends the same rows and they collapse here.
CREATE TABLE IF NOT EXISTS {database}.matches
(
    inquiry_event_id String,
    rank UInt8,
    fair_id LowCardinality(String),
    matched_at DateTime64(3, 'UTC'),
    exhibitor_id LowCardinality(String),
    cluster_id LowCardinality(String),
    score Float64,
    explanation String,
    profile_event_id String,
    made_at DateTime64(3, 'UTC'),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
ORDER BY (inquiry_event_id, rank);

-- One row per surge: a cluster whose 5-minute activity stands out of its trailing baseline
-- (core/momentum.py says how). surge_start is the first window of the surge; a surge that
-- continues in the next windows is the same surge, so the key is (fair, cluster, start).
-- evidence holds the figures the decision was made on (JSON).
CREATE TABLE IF NOT EXISTS {database}.surge_alerts
(
    fair_id LowCardinality(String),
    cluster_id LowCardinality(String),
    surge_start DateTime('UTC'),
    window_end DateTime('UTC'),
    events UInt32,
    expected Float64,
    momentum_score Float64,
    value_cny Decimal(18, 2),
    late UInt8,
    evidence String,
    detected_at DateTime64(3, 'UTC'),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(ingested_at)
ORDER BY (fair_id, cluster_id, surge_start);

-- A previous season's professional buyers per pavilion and cluster (leadloom season import
-- FILE): one row per (season, pavilion, cluster); importing the same key again replaces it.
CREATE TABLE IF NOT EXISTS {database}.season_baseline
(
    season LowCardinality(String),
    pavilion_id LowCardinality(String),
    cluster_id LowCardinality(String),
    professional_buyers UInt32,
    source String,
    loaded_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(loaded_at)
ORDER BY (season, pavilion_id, cluster_id);

-- Lead intelligence snapshots (issue 9; ARCHITECTURE.md "Lead intelligence (views)", "Speed").
-- Computed at query time, the views of migration 011 took 0.4-2 s each on a 1M-event fair:
-- every one reads the raw tables FINAL and maps a million events to their resolved buyers.
-- A wall of panels refreshing every 10 s would pay that per panel. So each view's query now
-- runs once per refresh instead of once per read:
--
--   <view>_live   the view of migration 011, renamed: exact at every moment, slow.
--   <view>        a table with the view's name and columns: the live view's result as of
--                 the latest refresh, sorted for the usual filters (fair, then group).
--   <view>__next  its twin: a refresh fills it from <view>_live and exchanges the two
--                 atomically (EXCHANGE TABLES), so a reader sees one whole refresh or the
--                 previous one, never a half (core/snapshots.py).
--
-- The store owner (leadloom run) refreshes when the tables the views read have changed,
-- at most every few seconds and never more than a quarter of the time (core/snapshots.py
-- SnapshotRefresher); tests and the demo refresh explicitly. The tables start empty: the
-- owner's first refresh fills them.

-- when: SELECT count() FROM system.tables WHERE database = '{database}'
--       AND name = 'lead_scores_exhibitor' AND engine = 'View'
RENAME TABLE {database}.lead_scores_exhibitor TO {database}.lead_scores_exhibitor_live;

CREATE TABLE IF NOT EXISTS {database}.lead_scores_exhibitor
ENGINE = MergeTree ORDER BY (fair_id, exhibitor_id, buyer_id)
EMPTY AS SELECT * FROM {database}.lead_scores_exhibitor_live;

CREATE TABLE IF NOT EXISTS {database}.lead_scores_exhibitor__next AS {database}.lead_scores_exhibitor;

-- when: SELECT count() FROM system.tables WHERE database = '{database}'
--       AND name = 'lead_scores_cluster' AND engine = 'View'
RENAME TABLE {database}.lead_scores_cluster TO {database}.lead_scores_cluster_live;

CREATE TABLE IF NOT EXISTS {database}.lead_scores_cluster
ENGINE = MergeTree ORDER BY (fair_id, cluster_id, buyer_id)
EMPTY AS SELECT * FROM {database}.lead_scores_cluster_live;

CREATE TABLE IF NOT EXISTS {database}.lead_scores_cluster__next AS {database}.lead_scores_cluster;

-- when: SELECT count() FROM system.tables WHERE database = '{database}'
--       AND name = 'funnel_by_cluster' AND engine = 'View'
RENAME TABLE {database}.funnel_by_cluster TO {database}.funnel_by_cluster_live;

CREATE TABLE IF NOT EXISTS {database}.funnel_by_cluster
ENGINE = MergeTree ORDER BY (fair_id, cluster_id, stage_order)
EMPTY AS SELECT * FROM {database}.funnel_by_cluster_live;

CREATE TABLE IF NOT EXISTS {database}.funnel_by_cluster__next AS {database}.funnel_by_cluster;

-- when: SELECT count() FROM system.tables WHERE database = '{database}'
--       AND name = 'funnel_by_exhibitor' AND engine = 'View'
RENAME TABLE {database}.funnel_by_exhibitor TO {database}.funnel_by_exhibitor_live;

CREATE TABLE IF NOT EXISTS {database}.funnel_by_exhibitor
ENGINE = MergeTree ORDER BY (fair_id, cluster_id, exhibitor_id, stage_order)
EMPTY AS SELECT * FROM {database}.funnel_by_exhibitor_live;

CREATE TABLE IF NOT EXISTS {database}.funnel_by_exhibitor__next AS {database}.funnel_by_exhibitor;

-- when: SELECT count() FROM system.tables WHERE database = '{database}'
--       AND name = 'funnel_by_category' AND engine = 'View'
RENAME TABLE {database}.funnel_by_category TO {database}.funnel_by_category_live;

CREATE TABLE IF NOT EXISTS {database}.funnel_by_category
ENGINE = MergeTree ORDER BY (fair_id, category, stage_order)
EMPTY AS SELECT * FROM {database}.funnel_by_category_live;

CREATE TABLE IF NOT EXISTS {database}.funnel_by_category__next AS {database}.funnel_by_category;

-- when: SELECT count() FROM system.tables WHERE database = '{database}'
--       AND name = 'momentum_cluster_5m' AND engine = 'View'
RENAME TABLE {database}.momentum_cluster_5m TO {database}.momentum_cluster_5m_live;

CREATE TABLE IF NOT EXISTS {database}.momentum_cluster_5m
ENGINE = MergeTree ORDER BY (fair_id, cluster_id, window_start)
EMPTY AS SELECT * FROM {database}.momentum_cluster_5m_live;

CREATE TABLE IF NOT EXISTS {database}.momentum_cluster_5m__next AS {database}.momentum_cluster_5m;

-- when: SELECT count() FROM system.tables WHERE database = '{database}'
--       AND name = 'momentum_cluster_hour' AND engine = 'View'
RENAME TABLE {database}.momentum_cluster_hour TO {database}.momentum_cluster_hour_live;

CREATE TABLE IF NOT EXISTS {database}.momentum_cluster_hour
ENGINE = MergeTree ORDER BY (fair_id, cluster_id, window_start)
EMPTY AS SELECT * FROM {database}.momentum_cluster_hour_live;

CREATE TABLE IF NOT EXISTS {database}.momentum_cluster_hour__next AS {database}.momentum_cluster_hour;

-- when: SELECT count() FROM system.tables WHERE database = '{database}'
--       AND name = 'momentum_category_5m' AND engine = 'View'
RENAME TABLE {database}.momentum_category_5m TO {database}.momentum_category_5m_live;

CREATE TABLE IF NOT EXISTS {database}.momentum_category_5m
ENGINE = MergeTree ORDER BY (fair_id, category, window_start)
EMPTY AS SELECT * FROM {database}.momentum_category_5m_live;

CREATE TABLE IF NOT EXISTS {database}.momentum_category_5m__next AS {database}.momentum_category_5m;

-- when: SELECT count() FROM system.tables WHERE database = '{database}'
--       AND name = 'momentum_category_hour' AND engine = 'View'
RENAME TABLE {database}.momentum_category_hour TO {database}.momentum_category_hour_live;

CREATE TABLE IF NOT EXISTS {database}.momentum_category_hour
ENGINE = MergeTree ORDER BY (fair_id, category, window_start)
EMPTY AS SELECT * FROM {database}.momentum_category_hour_live;

CREATE TABLE IF NOT EXISTS {database}.momentum_category_hour__next AS {database}.momentum_category_hour;

-- when: SELECT count() FROM system.tables WHERE database = '{database}'
--       AND name = 'momentum_ranking' AND engine = 'View'
RENAME TABLE {database}.momentum_ranking TO {database}.momentum_ranking_live;

CREATE TABLE IF NOT EXISTS {database}.momentum_ranking
ENGINE = MergeTree ORDER BY (fair_id, rank)
EMPTY AS SELECT * FROM {database}.momentum_ranking_live;

CREATE TABLE IF NOT EXISTS {database}.momentum_ranking__next AS {database}.momentum_ranking;

-- when: SELECT count() FROM system.tables WHERE database = '{database}'
--       AND name = 'match_outcomes' AND engine = 'View'
RENAME TABLE {database}.match_outcomes TO {database}.match_outcomes_live;

CREATE TABLE IF NOT EXISTS {database}.match_outcomes
ENGINE = MergeTree ORDER BY (fair_id, inquiry_event_id, rank)
EMPTY AS SELECT * FROM {database}.match_outcomes_live;

CREATE TABLE IF NOT EXISTS {database}.match_outcomes__next AS {database}.match_outcomes;

-- when: SELECT count() FROM system.tables WHERE database = '{database}'
--       AND name = 'matchmaking_kpis' AND engine = 'View'
RENAME TABLE {database}.matchmaking_kpis TO {database}.matchmaking_kpis_live;

CREATE TABLE IF NOT EXISTS {database}.matchmaking_kpis
ENGINE = MergeTree ORDER BY (fair_id, introduced_by)
EMPTY AS SELECT * FROM {database}.matchmaking_kpis_live;

CREATE TABLE IF NOT EXISTS {database}.matchmaking_kpis__next AS {database}.matchmaking_kpis;

-- when: SELECT count() FROM system.tables WHERE database = '{database}'
--       AND name = 'season_comparison' AND engine = 'View'
RENAME TABLE {database}.season_comparison TO {database}.season_comparison_live;

CREATE TABLE IF NOT EXISTS {database}.season_comparison
ENGINE = MergeTree ORDER BY (fair_id, pavilion_id, cluster_id)
EMPTY AS SELECT * FROM {database}.season_comparison_live;

CREATE TABLE IF NOT EXISTS {database}.season_comparison__next AS {database}.season_comparison;

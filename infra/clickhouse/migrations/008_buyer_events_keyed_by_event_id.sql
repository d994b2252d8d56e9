-- buyer_events collapses on event_id alone, for the reasons of migration 006: it was sorted
-- by (fair_id, event_id) and partitioned by the event-time day, so a replay that corrected
-- an event's time (another day: another partition) or its fair added a second row, which
-- FINAL does not collapse across partitions, and the unique-buyer views counted the event
-- in both places. Sorting key event_id, no partition, newest ingest wins; rebuilt as in 006
-- (guarded by the table's keys, a repeated copy collapses with the first). On a server,
-- stop every sink before the upgrade.

-- when: SELECT count() FROM system.tables WHERE database = '{database}'
--       AND name = 'buyer_events' AND (sorting_key != 'event_id' OR partition_key != '')
CREATE TABLE IF NOT EXISTS {database}.buyer_events__008
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
ORDER BY event_id;

-- when: SELECT count() FROM system.tables WHERE database = '{database}'
--       AND name = 'buyer_events' AND (sorting_key != 'event_id' OR partition_key != '')
INSERT INTO {database}.buyer_events__008 SELECT * FROM {database}.buyer_events;

-- when: SELECT count() FROM system.tables WHERE database = '{database}'
--       AND name = 'buyer_events' AND (sorting_key != 'event_id' OR partition_key != '')
EXCHANGE TABLES {database}.buyer_events AND {database}.buyer_events__008;

DROP TABLE IF EXISTS {database}.buyer_events__008;

-- The resolved view reads buyer_events FINAL: until a merge, a replayed event's old row
-- (another cluster, booth or hour) is still stored, and only the newest may count. The
-- unique_buyers_* views read this view by name and follow it.
-- when: SELECT count() FROM system.tables WHERE database = '{database}'
--       AND name = 'buyer_events_resolved' AND position(create_table_query, 'FINAL') = 0
DROP VIEW IF EXISTS {database}.buyer_events_resolved;

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
FROM {database}.buyer_events AS e FINAL
LEFT JOIN {database}.buyer_alias_current AS a ON e.fair_id = a.fair_id AND e.alias = a.alias;

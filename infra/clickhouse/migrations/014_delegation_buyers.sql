-- A delegation's buyers (issue 11; ARCHITECTURE.md "Delegation access: the model"): one row
-- per (fair, cluster, resolved buyer) for every buyer who scanned at or wrote an inquiry to
-- one of the cluster's booths, with scan and inquiry counts, first and last activity, and
-- the buyer's masked profile only: name_masked, company, city (empty without consent, as in
-- buyers), country and buyer_type (the buyer's latest registration). Never a hash, a badge
-- or a raw contact field: a delegation reads this table with a cluster filter
-- (schemas/scope.py DELEGATION_TABLES), not buyers or inquiries.
--
-- Buyers are resolved as the lead scores resolve them: each event's buyer now, merges
-- applied (buyer_events_resolved). That view reads buyer_aliases, which a delegation's
-- session cannot filter by cluster, so, like the views of migration 012, the result is a
-- snapshot: delegation_buyers_live computes it, delegation_buyers holds it as of the latest
-- refresh (core/snapshots.py refreshes it with the others), delegation_buyers__next is
-- the twin a refresh fills and exchanges.
CREATE VIEW IF NOT EXISTS {database}.delegation_buyers_live AS
SELECT
    a.fair_id AS fair_id, a.cluster_id AS cluster_id, a.buyer_id AS buyer_id,
    a.scans AS scans, a.inquiries AS inquiries,
    a.first_activity AS first_activity, a.last_activity AS last_activity,
    if(p.consent, p.name_masked, '') AS name_masked,
    if(p.consent, p.company, '') AS company,
    toString(p.country) AS country,
    if(p.consent, p.city, '') AS city,
    toString(t.buyer_type) AS buyer_type
FROM
(
    SELECT e.fair_id AS fair_id, e.cluster_id AS cluster_id, b.buyer_id AS buyer_id,
        toUInt32(countIf(e.kind = 1)) AS scans, toUInt32(countIf(e.kind = 2)) AS inquiries,
        min(e.occurred_at) AS first_activity, max(e.occurred_at) AS last_activity
    FROM
    (
        SELECT s.fair_id AS fair_id, s.event_id AS event_id, s.occurred_at AS occurred_at,
            toString(s.cluster_id) AS cluster_id, toUInt8(1) AS kind
        FROM {database}.scans AS s FINAL
        WHERE s.cluster_id != ''
        UNION ALL
        SELECT i.fair_id, i.event_id, i.occurred_at, toString(i.cluster_id), 2
        FROM {database}.inquiries AS i FINAL
        WHERE i.cluster_id != ''
    ) AS e
    INNER JOIN (SELECT event_id, buyer_id FROM {database}.buyer_events_resolved) AS b
        ON b.event_id = e.event_id
    GROUP BY e.fair_id, e.cluster_id, b.buyer_id
) AS a
LEFT JOIN
(
    SELECT fair_id, buyer_id, consent, name_masked, company, country, city
    FROM {database}.buyers FINAL
) AS p ON p.fair_id = a.fair_id AND p.buyer_id = a.buyer_id
LEFT JOIN
(
    SELECT r.fair_id AS fair_id, b.buyer_id AS buyer_id,
        argMax(r.buyer_type, r.occurred_at) AS buyer_type
    FROM {database}.registrations AS r FINAL
    INNER JOIN (SELECT event_id, buyer_id FROM {database}.buyer_events_resolved) AS b
        ON b.event_id = r.event_id
    GROUP BY r.fair_id, b.buyer_id
) AS t ON t.fair_id = a.fair_id AND t.buyer_id = a.buyer_id;

CREATE TABLE IF NOT EXISTS {database}.delegation_buyers
ENGINE = MergeTree ORDER BY (fair_id, cluster_id, buyer_id)
EMPTY AS SELECT * FROM {database}.delegation_buyers_live;

CREATE TABLE IF NOT EXISTS {database}.delegation_buyers__next AS {database}.delegation_buyers;

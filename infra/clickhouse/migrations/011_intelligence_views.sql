-- Lead intelligence views (issue 9; ARCHITECTURE.md "Lead intelligence (views)"). Names and
-- columns: schemas/registry.py INTELLIGENCE_VIEWS. Every count is of resolved buyers: the raw
-- tables are read FINAL (one row per event_id, its newest enrichment) and joined on event_id
-- to buyer_events_resolved (the buyer after every merge stored so far); an event without a
-- resolved buyer yet counts nowhere until the identity stream stores it. The cluster of an
-- event is the raw table's cluster_id (the stream's enrichment).
--
-- Inlined expressions, kept equal to their Python source by tests/unit/test_view_formulas.py
-- (migrations are static SQL): values in CNY are core/rates.py to_cny_sql (the rate valid at
-- the event's time; no rate: NULL, counted as 0 in sums), the lead score and tier are
-- streams/intelligence/scores.py score_sql(DEFAULT_MODEL, now='fair_now') and
-- tier_sql('score'), the ladders are schemas/events.py FUNNEL_STAGES,
-- PROFESSIONAL_BUYER_TYPES and scores.py STEPS.
--
-- Each view reads each raw table once and joins buyer_events_resolved once, with uniqExact
-- and -If/-Resample combinators instead of one query per stage or kind. They are computed
-- at query time: on a 1M-event fair they take 0.4-1.8 s on the embedded engine, not the
-- issue's 200 ms (ARCHITECTURE.md "Lead intelligence (views)" has the measurements).

-- Lead scores per (fair, buyer, exhibitor): the LeadSignals of the pair folded in SQL
-- (scans, local fair days of Asia/Shanghai, staff ratings, the inquiry's largest quantity
-- and budget in CNY and shortest lead time, the furthest step in STEPS order, the last event
-- time). An inquiry counts for the exhibitor it names (none: only for its cluster). The
-- score is taken at the fair's now, the latest event time of the fair among scans,
-- inquiries and procurement steps: a past fair replayed scores as it stood at its end, a
-- live fair about now.
CREATE VIEW IF NOT EXISTS {database}.lead_scores_exhibitor AS
SELECT
    fair_id, buyer_id, exhibitor_id, cluster_id, scans, scan_days, ratings, has_inquiry,
    inquiry_quantity, inquiry_budget_cny, inquiry_lead_time_days, furthest_step,
    last_activity,
    
        least(greatest(10.0 * least(scans / 5.0, 1.) + 10.0 *
            least(greatest(length(scan_days) - 1, 0) / 2.0, 1.) + 15.0 * [0.0, 0.0, 0.5,
            1.0][arrayMax(arrayMap(r -> indexOf(['cold', 'warm', 'hot'], r),
            arrayPushBack(ratings, ''))) + 1] + if(has_inquiry, 1., 0.) * (8.0 + 6.0 *
            least(ifNull(inquiry_budget_cny, 0.) / 200000.0, 1.) + 3.0 *
            least(ifNull(inquiry_quantity, 0) / 5000.0, 1.) + 3.0 * ifNull(greatest(0.,
            1. - inquiry_lead_time_days / 90.0), 0.)) + 30.0 * [0.0, 0.4, 0.6, 0.85,
            1.0][indexOf(['sample_request', 'quote_request', 'cooperation_intent',
            'purchase_order'], ifNull(furthest_step, '')) + 1] + 15.0 * pow(0.5,
            greatest(0., (toUnixTimestamp64Micro(toDateTime64(fair_now, 6, 'UTC')) -
            toUnixTimestamp64Micro(toDateTime64(last_activity, 6, 'UTC'))) / 1000000. /
            3600.) / 24.0), 0.), 100.)
    AS score,
    multiIf((score) >= 55.0, 'hot', (score) >= 30.0, 'warm', 'cold') AS tier
FROM
(
    SELECT
        e.fair_id AS fair_id, b.buyer_id AS buyer_id, e.exhibitor_id AS exhibitor_id,
        any(e.cluster_id) AS cluster_id,
        countIf(e.kind = 1) AS scans,
        arraySort(groupUniqArrayIf(toDate(e.occurred_at, 'Asia/Shanghai'), e.kind = 1))
            AS scan_days,
        arraySort(groupUniqArrayIf(e.rating, e.kind = 1 AND e.rating != '')) AS ratings,
        max(e.kind = 2) AS has_inquiry,
        max(e.quantity) AS inquiry_quantity,
        max(e.budget_cny) AS inquiry_budget_cny,
        min(e.lead_time_days) AS inquiry_lead_time_days,
        -- the furthest step in STEPS order ('' below the first step)
        nullIf(['', 'sample_request', 'quote_request', 'cooperation_intent', 'purchase_order']
            [max(indexOf(['', 'sample_request', 'quote_request', 'cooperation_intent',
                'purchase_order'], e.step))], '')
            AS furthest_step,
        max(e.occurred_at) AS last_activity
    FROM
    (
        SELECT s.fair_id AS fair_id, s.event_id AS event_id, s.occurred_at AS occurred_at,
            toUInt8(1) AS kind, toString(s.exhibitor_id) AS exhibitor_id,
            toString(s.cluster_id) AS cluster_id, toString(s.rating) AS rating,
            CAST(NULL AS Nullable(UInt32)) AS quantity,
            CAST(NULL AS Nullable(Float64)) AS budget_cny,
            CAST(NULL AS Nullable(UInt16)) AS lead_time_days, toString('') AS step
        FROM {database}.scans AS s FINAL
        UNION ALL
        SELECT i.fair_id, i.event_id, i.occurred_at, 2, i.exhibitor_id, i.cluster_id, '',
            i.quantity,
            toFloat64(
                CAST(round(toDecimal128(i.budget, 2) * nullIf(arrayLast(r -> r.1
                    = i.currency AND r.2 <= i.occurred_at, (SELECT arraySort(r
                    -> (r.1, r.2), groupArray((currency, valid_from,
                    cny_per_unit))) FROM {database}.currency_rates FINAL)).3,
                    0), 2) AS Nullable(Decimal(38, 2)))
            ),
            i.lead_time_days, ''
        FROM {database}.inquiries AS i FINAL
        UNION ALL
        SELECT p.fair_id, p.event_id, p.occurred_at, 3, p.exhibitor_id, p.cluster_id, '',
            NULL, NULL, NULL, p.step
        FROM {database}.procurement_steps AS p FINAL
    ) AS e
    INNER JOIN (SELECT event_id, buyer_id FROM {database}.buyer_events_resolved) AS b
        ON b.event_id = e.event_id
    WHERE e.exhibitor_id != ''
    GROUP BY e.fair_id, b.buyer_id, e.exhibitor_id
) AS signals
INNER JOIN
(
    SELECT fair_id, max(at) AS fair_now
    FROM
    (
        SELECT fair_id, max(occurred_at) AS at FROM {database}.scans FINAL GROUP BY fair_id
        UNION ALL
        SELECT fair_id, max(occurred_at) FROM {database}.inquiries FINAL GROUP BY fair_id
        UNION ALL
        SELECT fair_id, max(occurred_at) FROM {database}.procurement_steps FINAL GROUP BY fair_id
    )
    GROUP BY fair_id
) AS fairs USING (fair_id);

-- Lead scores per (fair, buyer, cluster): as per exhibitor, every event of the cluster
-- (inquiries that name no exhibitor included).
CREATE VIEW IF NOT EXISTS {database}.lead_scores_cluster AS
SELECT
    fair_id, buyer_id, cluster_id, scans, scan_days, ratings, has_inquiry,
    inquiry_quantity, inquiry_budget_cny, inquiry_lead_time_days, furthest_step,
    last_activity,
    
        least(greatest(10.0 * least(scans / 5.0, 1.) + 10.0 *
            least(greatest(length(scan_days) - 1, 0) / 2.0, 1.) + 15.0 * [0.0, 0.0, 0.5,
            1.0][arrayMax(arrayMap(r -> indexOf(['cold', 'warm', 'hot'], r),
            arrayPushBack(ratings, ''))) + 1] + if(has_inquiry, 1., 0.) * (8.0 + 6.0 *
            least(ifNull(inquiry_budget_cny, 0.) / 200000.0, 1.) + 3.0 *
            least(ifNull(inquiry_quantity, 0) / 5000.0, 1.) + 3.0 * ifNull(greatest(0.,
            1. - inquiry_lead_time_days / 90.0), 0.)) + 30.0 * [0.0, 0.4, 0.6, 0.85,
            1.0][indexOf(['sample_request', 'quote_request', 'cooperation_intent',
            'purchase_order'], ifNull(furthest_step, '')) + 1] + 15.0 * pow(0.5,
            greatest(0., (toUnixTimestamp64Micro(toDateTime64(fair_now, 6, 'UTC')) -
            toUnixTimestamp64Micro(toDateTime64(last_activity, 6, 'UTC'))) / 1000000. /
            3600.) / 24.0), 0.), 100.)
    AS score,
    multiIf((score) >= 55.0, 'hot', (score) >= 30.0, 'warm', 'cold') AS tier
FROM
(
    SELECT
        e.fair_id AS fair_id, b.buyer_id AS buyer_id, e.cluster_id AS cluster_id,
        countIf(e.kind = 1) AS scans,
        arraySort(groupUniqArrayIf(toDate(e.occurred_at, 'Asia/Shanghai'), e.kind = 1))
            AS scan_days,
        arraySort(groupUniqArrayIf(e.rating, e.kind = 1 AND e.rating != '')) AS ratings,
        max(e.kind = 2) AS has_inquiry,
        max(e.quantity) AS inquiry_quantity,
        max(e.budget_cny) AS inquiry_budget_cny,
        min(e.lead_time_days) AS inquiry_lead_time_days,
        -- the furthest step in STEPS order ('' below the first step)
        nullIf(['', 'sample_request', 'quote_request', 'cooperation_intent', 'purchase_order']
            [max(indexOf(['', 'sample_request', 'quote_request', 'cooperation_intent',
                'purchase_order'], e.step))], '')
            AS furthest_step,
        max(e.occurred_at) AS last_activity
    FROM
    (
        SELECT s.fair_id AS fair_id, s.event_id AS event_id, s.occurred_at AS occurred_at,
            toUInt8(1) AS kind, toString(s.exhibitor_id) AS exhibitor_id,
            toString(s.cluster_id) AS cluster_id, toString(s.rating) AS rating,
            CAST(NULL AS Nullable(UInt32)) AS quantity,
            CAST(NULL AS Nullable(Float64)) AS budget_cny,
            CAST(NULL AS Nullable(UInt16)) AS lead_time_days, toString('') AS step
        FROM {database}.scans AS s FINAL
        UNION ALL
        SELECT i.fair_id, i.event_id, i.occurred_at, 2, i.exhibitor_id, i.cluster_id, '',
            i.quantity,
            toFloat64(
                CAST(round(toDecimal128(i.budget, 2) * nullIf(arrayLast(r -> r.1
                    = i.currency AND r.2 <= i.occurred_at, (SELECT arraySort(r
                    -> (r.1, r.2), groupArray((currency, valid_from,
                    cny_per_unit))) FROM {database}.currency_rates FINAL)).3,
                    0), 2) AS Nullable(Decimal(38, 2)))
            ),
            i.lead_time_days, ''
        FROM {database}.inquiries AS i FINAL
        UNION ALL
        SELECT p.fair_id, p.event_id, p.occurred_at, 3, p.exhibitor_id, p.cluster_id, '',
            NULL, NULL, NULL, p.step
        FROM {database}.procurement_steps AS p FINAL
    ) AS e
    INNER JOIN (SELECT event_id, buyer_id FROM {database}.buyer_events_resolved) AS b
        ON b.event_id = e.event_id
    WHERE e.cluster_id != ''
    GROUP BY e.fair_id, b.buyer_id, e.cluster_id
) AS signals
INNER JOIN
(
    SELECT fair_id, max(at) AS fair_now
    FROM
    (
        SELECT fair_id, max(occurred_at) AS at FROM {database}.scans FINAL GROUP BY fair_id
        UNION ALL
        SELECT fair_id, max(occurred_at) FROM {database}.inquiries FINAL GROUP BY fair_id
        UNION ALL
        SELECT fair_id, max(occurred_at) FROM {database}.procurement_steps FINAL GROUP BY fair_id
    )
    GROUP BY fair_id
) AS fairs USING (fair_id);

-- The procurement funnel: one row per (group, stage) for all six FUNNEL_STAGES of every
-- group with any stage (zeros where a stage has no event). Stage "scan": scans; "inquiry":
-- inquiries (budget as value); the others: procurement steps of that step (value). buyers:
-- distinct resolved buyers; pairs: distinct (buyer, exhibitor), only of events that name an
-- exhibitor; events: distinct event ids; value_cny: the sum in CNY. conversion: pairs over
-- the previous stage's pairs, except inquiry over scan: buyers over buyers (an inquiry may
-- name only a cluster, so it has no pair); NULL for the first stage or a zero denominator.
-- The -Resample(1, 7, 1) combinators aggregate all six stages in one pass (arrays indexed
-- by stage_order).
CREATE VIEW IF NOT EXISTS {database}.funnel_by_cluster AS
SELECT
    fair_id, cluster_id,
    ['scan', 'inquiry', 'sample_request', 'quote_request', 'cooperation_intent',
        'purchase_order'][i] AS stage,
    toUInt8(i) AS stage_order,
    stage_buyers[i] AS buyers, stage_pairs[i] AS pairs, stage_events[i] AS events,
    CAST(stage_values[i] AS Decimal(18, 2)) AS value_cny,
    if(i = 1 OR if(i = 2, stage_buyers[1], stage_pairs[i - 1]) = 0, NULL,
        if(i = 2, stage_buyers[2] / stage_buyers[1], stage_pairs[i] / stage_pairs[i - 1]))
        AS conversion
FROM
(
    SELECT
        e.fair_id AS fair_id, e.cluster_id AS cluster_id,
        uniqExactResample(1, 7, 1)(b.buyer_id, e.stage_order) AS stage_buyers,
        uniqExactResample(1, 7, 1)((b.buyer_id, e.exhibitor_id),
            if(e.exhibitor_id = '', 0, e.stage_order)) AS stage_pairs,
        uniqExactResample(1, 7, 1)(e.event_id, e.stage_order) AS stage_events,
        sumResample(1, 7, 1)(e.value_cny, e.stage_order) AS stage_values
    FROM
    (
        SELECT s.fair_id AS fair_id, s.event_id AS event_id,
            toUInt8(indexOf(['scan', 'inquiry', 'sample_request', 'quote_request',
                'cooperation_intent', 'purchase_order'], 'scan')) AS stage_order,
            toString(s.exhibitor_id) AS exhibitor_id, toString(s.cluster_id) AS cluster_id,
            CAST(0 AS Decimal(38, 2)) AS value_cny
        FROM {database}.scans AS s FINAL
        UNION ALL
        SELECT i.fair_id, i.event_id, indexOf(['scan', 'inquiry', 'sample_request', 'quote_request',
            'cooperation_intent', 'purchase_order'], 'inquiry'), i.exhibitor_id, i.cluster_id,
            ifNull(
                CAST(round(toDecimal128(i.budget, 2) * nullIf(arrayLast(r -> r.1
                    = i.currency AND r.2 <= i.occurred_at, (SELECT arraySort(r
                    -> (r.1, r.2), groupArray((currency, valid_from,
                    cny_per_unit))) FROM {database}.currency_rates FINAL)).3,
                    0), 2) AS Nullable(Decimal(38, 2)))
            , 0)
        FROM {database}.inquiries AS i FINAL
        UNION ALL
        SELECT p.fair_id, p.event_id, indexOf(['scan', 'inquiry', 'sample_request', 'quote_request',
            'cooperation_intent', 'purchase_order'], p.step), p.exhibitor_id, p.cluster_id,
            ifNull(
                CAST(round(toDecimal128(p.value, 2) * nullIf(arrayLast(r -> r.1
                    = p.currency AND r.2 <= p.occurred_at, (SELECT arraySort(r
                    -> (r.1, r.2), groupArray((currency, valid_from,
                    cny_per_unit))) FROM {database}.currency_rates FINAL)).3,
                    0), 2) AS Nullable(Decimal(38, 2)))
            , 0)
        FROM {database}.procurement_steps AS p FINAL
    ) AS e
    INNER JOIN (SELECT event_id, buyer_id FROM {database}.buyer_events_resolved) AS b
        ON b.event_id = e.event_id
    WHERE e.cluster_id != ''
    GROUP BY e.fair_id, e.cluster_id
)
ARRAY JOIN arrayEnumerate(stage_buyers) AS i;

CREATE VIEW IF NOT EXISTS {database}.funnel_by_exhibitor AS
SELECT
    fair_id, cluster_id, exhibitor_id,
    ['scan', 'inquiry', 'sample_request', 'quote_request', 'cooperation_intent',
        'purchase_order'][i] AS stage,
    toUInt8(i) AS stage_order,
    stage_buyers[i] AS buyers, stage_pairs[i] AS pairs, stage_events[i] AS events,
    CAST(stage_values[i] AS Decimal(18, 2)) AS value_cny,
    if(i = 1 OR if(i = 2, stage_buyers[1], stage_pairs[i - 1]) = 0, NULL,
        if(i = 2, stage_buyers[2] / stage_buyers[1], stage_pairs[i] / stage_pairs[i - 1]))
        AS conversion
FROM
(
    SELECT
        e.fair_id AS fair_id, e.cluster_id AS cluster_id, e.exhibitor_id AS exhibitor_id,
        uniqExactResample(1, 7, 1)(b.buyer_id, e.stage_order) AS stage_buyers,
        uniqExactResample(1, 7, 1)((b.buyer_id, e.exhibitor_id),
            if(e.exhibitor_id = '', 0, e.stage_order)) AS stage_pairs,
        uniqExactResample(1, 7, 1)(e.event_id, e.stage_order) AS stage_events,
        sumResample(1, 7, 1)(e.value_cny, e.stage_order) AS stage_values
    FROM
    (
        SELECT s.fair_id AS fair_id, s.event_id AS event_id,
            toUInt8(indexOf(['scan', 'inquiry', 'sample_request', 'quote_request',
                'cooperation_intent', 'purchase_order'], 'scan')) AS stage_order,
            toString(s.exhibitor_id) AS exhibitor_id, toString(s.cluster_id) AS cluster_id,
            CAST(0 AS Decimal(38, 2)) AS value_cny
        FROM {database}.scans AS s FINAL
        UNION ALL
        SELECT i.fair_id, i.event_id, indexOf(['scan', 'inquiry', 'sample_request', 'quote_request',
            'cooperation_intent', 'purchase_order'], 'inquiry'), i.exhibitor_id, i.cluster_id,
            ifNull(
                CAST(round(toDecimal128(i.budget, 2) * nullIf(arrayLast(r -> r.1
                    = i.currency AND r.2 <= i.occurred_at, (SELECT arraySort(r
                    -> (r.1, r.2), groupArray((currency, valid_from,
                    cny_per_unit))) FROM {database}.currency_rates FINAL)).3,
                    0), 2) AS Nullable(Decimal(38, 2)))
            , 0)
        FROM {database}.inquiries AS i FINAL
        UNION ALL
        SELECT p.fair_id, p.event_id, indexOf(['scan', 'inquiry', 'sample_request', 'quote_request',
            'cooperation_intent', 'purchase_order'], p.step), p.exhibitor_id, p.cluster_id,
            ifNull(
                CAST(round(toDecimal128(p.value, 2) * nullIf(arrayLast(r -> r.1
                    = p.currency AND r.2 <= p.occurred_at, (SELECT arraySort(r
                    -> (r.1, r.2), groupArray((currency, valid_from,
                    cny_per_unit))) FROM {database}.currency_rates FINAL)).3,
                    0), 2) AS Nullable(Decimal(38, 2)))
            , 0)
        FROM {database}.procurement_steps AS p FINAL
    ) AS e
    INNER JOIN (SELECT event_id, buyer_id FROM {database}.buyer_events_resolved) AS b
        ON b.event_id = e.event_id
    WHERE e.exhibitor_id != ''
    GROUP BY e.fair_id, e.cluster_id, e.exhibitor_id
)
ARRAY JOIN arrayEnumerate(stage_buyers) AS i;

-- Categories: a scan counts in each category of the exhibitor's latest supplier profile
-- (by event time; an exhibitor without a profile has none), an inquiry in each of its
-- categories, a procurement step in its category.
CREATE VIEW IF NOT EXISTS {database}.funnel_by_category AS
SELECT
    fair_id, category,
    ['scan', 'inquiry', 'sample_request', 'quote_request', 'cooperation_intent',
        'purchase_order'][i] AS stage,
    toUInt8(i) AS stage_order,
    stage_buyers[i] AS buyers, stage_pairs[i] AS pairs, stage_events[i] AS events,
    CAST(stage_values[i] AS Decimal(18, 2)) AS value_cny,
    if(i = 1 OR if(i = 2, stage_buyers[1], stage_pairs[i - 1]) = 0, NULL,
        if(i = 2, stage_buyers[2] / stage_buyers[1], stage_pairs[i] / stage_pairs[i - 1]))
        AS conversion
FROM
(
    SELECT
        e.fair_id AS fair_id, e.category AS category,
        uniqExactResample(1, 7, 1)(b.buyer_id, e.stage_order) AS stage_buyers,
        uniqExactResample(1, 7, 1)((b.buyer_id, e.exhibitor_id),
            if(e.exhibitor_id = '', 0, e.stage_order)) AS stage_pairs,
        uniqExactResample(1, 7, 1)(e.event_id, e.stage_order) AS stage_events,
        sumResample(1, 7, 1)(e.value_cny, e.stage_order) AS stage_values
    FROM
    (
        SELECT s.fair_id AS fair_id, s.event_id AS event_id,
            toUInt8(indexOf(['scan', 'inquiry', 'sample_request', 'quote_request',
                'cooperation_intent', 'purchase_order'], 'scan')) AS stage_order,
            toString(s.exhibitor_id) AS exhibitor_id, toString(arrayJoin(pr.categories)) AS
                category,
            CAST(0 AS Decimal(38, 2)) AS value_cny
        FROM {database}.scans AS s FINAL
        INNER JOIN
        (
            SELECT fair_id, exhibitor_id, argMax(categories, occurred_at) AS categories
            FROM {database}.supplier_profiles FINAL
            GROUP BY fair_id, exhibitor_id
        ) AS pr ON pr.fair_id = s.fair_id AND pr.exhibitor_id = s.exhibitor_id
        UNION ALL
        SELECT i.fair_id, i.event_id, indexOf(['scan', 'inquiry', 'sample_request', 'quote_request',
            'cooperation_intent', 'purchase_order'], 'inquiry'), i.exhibitor_id,
            arrayJoin(i.categories),
            ifNull(
                CAST(round(toDecimal128(i.budget, 2) * nullIf(arrayLast(r -> r.1
                    = i.currency AND r.2 <= i.occurred_at, (SELECT arraySort(r
                    -> (r.1, r.2), groupArray((currency, valid_from,
                    cny_per_unit))) FROM {database}.currency_rates FINAL)).3,
                    0), 2) AS Nullable(Decimal(38, 2)))
            , 0)
        FROM {database}.inquiries AS i FINAL
        UNION ALL
        SELECT p.fair_id, p.event_id, indexOf(['scan', 'inquiry', 'sample_request', 'quote_request',
            'cooperation_intent', 'purchase_order'], p.step), p.exhibitor_id, p.category,
            ifNull(
                CAST(round(toDecimal128(p.value, 2) * nullIf(arrayLast(r -> r.1
                    = p.currency AND r.2 <= p.occurred_at, (SELECT arraySort(r
                    -> (r.1, r.2), groupArray((currency, valid_from,
                    cny_per_unit))) FROM {database}.currency_rates FINAL)).3,
                    0), 2) AS Nullable(Decimal(38, 2)))
            , 0)
        FROM {database}.procurement_steps AS p FINAL
        WHERE p.category != ''
    ) AS e
    INNER JOIN (SELECT event_id, buyer_id FROM {database}.buyer_events_resolved) AS b
        ON b.event_id = e.event_id
    GROUP BY e.fair_id, e.category
)
ARRAY JOIN arrayEnumerate(stage_buyers) AS i;

-- Procurement momentum per group and event-time window (UTC), over a gap-free grid: every
-- group of the fair in every window from the fair's first to its last (zeros filled).
-- events: distinct scans, inquiries and procurement steps (categories: inquiries and steps
-- only, scans carry none); value_cny: inquiry budgets and step values in CNY. velocity:
-- events minus the previous window's; acceleration: velocity minus the previous velocity
-- (before the fair's first window both are 0).
-- Baseline: the group's share of the fair's events over the trailing 12 windows of the same
-- size (1 hour for 5-minute windows, 12 hours for hours), Laplace-smoothed:
--   share = (group_trailing + 1) / (fair_trailing + n_groups)
--   expected = share * the fair's events in this window
--   momentum_score = (events - expected) / sqrt(expected + 1)
-- a Poisson z-score. The baseline is estimated from the data itself (no previous fair is
-- needed), and comparing the group's share rather than its raw count keeps the fair-wide
-- morning ramp and lunch dip from looking like surges: only a group that takes more of the
-- fair's activity than it recently did scores high.
-- Surge (momentum_cluster_5m only): momentum_score >= 6 AND events >= 2 * expected AND
-- events >= 10; surge_start: a surge window whose previous window (same cluster) is none.
-- Why 6: a fair day is about 18 clusters x 100 windows = 1,800 tests, and visits come in
-- groups (more spread than Poisson); at z >= 4 a 20,000-event day alerted two clusters
-- with 13 and 27 events, at 6 only the simulated surge (z 25).
-- The surge watcher in streams/ reads the surge_start rows.
CREATE VIEW IF NOT EXISTS {database}.momentum_cluster_5m AS
SELECT
    fair_id, cluster_id, window_start, events, scans, inquiries, procurement_steps,
    value_cny, velocity, acceleration, expected, momentum_score, surge,
    toUInt8(surge AND NOT lagInFrame(surge, 1, 0) OVER (PARTITION BY fair_id, cluster_id
        ORDER BY window_start ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)) AS surge_start
FROM
(
    SELECT *,
        toUInt8(momentum_score >= 6 AND events >= 2 * expected AND events >= 10) AS surge
    FROM
    (
        SELECT
            fair_id, cluster_id, window_start, events, scans, inquiries, procurement_steps,
                value_cny,
            toInt64(events) - lagInFrame(toInt64(events), 1, 0) OVER previous AS velocity,
            toInt64(events) - 2 * lagInFrame(toInt64(events), 1, 0) OVER previous
                + lagInFrame(toInt64(events), 2, 0) OVER previous AS acceleration,
            (sum(events) OVER group_trailing + 1)
                / (sum(events) OVER fair_trailing + count() OVER fair_window)
                * sum(events) OVER fair_window AS expected,
            (events - expected) / sqrt(expected + 1) AS momentum_score
        FROM
        (
            -- the gap-free grid: each stored window, then the empty windows after it up to the
            -- group's next stored window (or the fair's last), and before a group's first window
            -- those from the fair's first
            SELECT fair_id, cluster_id, toDateTime(t, 'UTC') AS window_start,
                if(t = w0, n_events, 0) AS events, if(t = w0, n_scans, 0) AS scans,
                if(t = w0, n_inquiries, 0) AS inquiries, if(t = w0, n_steps, 0) AS
                    procurement_steps,
                if(t = w0, n_value, CAST(0 AS Decimal(18, 2))) AS value_cny
            FROM
            (
                SELECT *,
                    min(w0) OVER (PARTITION BY fair_id) AS fair_first,
                    max(w0) OVER (PARTITION BY fair_id) AS fair_last,
                    leadInFrame(w0, 1, 0) OVER (PARTITION BY fair_id, cluster_id ORDER BY w0
                        ROWS BETWEEN CURRENT ROW AND 1 FOLLOWING) AS next_w0,
                    row_number() OVER (PARTITION BY fair_id, cluster_id ORDER BY w0) AS nth
                FROM
                (
                    SELECT e.fair_id AS fair_id, e.cluster_id AS cluster_id,
                        toUInt32(toStartOfFiveMinutes(e.occurred_at)) AS w0,
                        uniqExact(e.event_id) AS n_events,
                        uniqExactIf(e.event_id, e.kind = 1) AS n_scans,
                        uniqExactIf(e.event_id, e.kind = 2) AS n_inquiries,
                        uniqExactIf(e.event_id, e.kind = 3) AS n_steps,
                        CAST(sum(e.value_cny) AS Decimal(18, 2)) AS n_value
                    FROM
                    (
                        SELECT s.fair_id AS fair_id, s.event_id AS event_id, s.occurred_at AS
                            occurred_at,
                            toUInt8(1) AS kind, toString(s.cluster_id) AS cluster_id,
                            CAST(0 AS Decimal(38, 2)) AS value_cny
                        FROM {database}.scans AS s FINAL
                        WHERE s.cluster_id != ''
                        UNION ALL
                        SELECT i.fair_id, i.event_id, i.occurred_at, 2, i.cluster_id,
                            ifNull(
                                CAST(round(toDecimal128(i.budget,
                                    2) * nullIf(arrayLast(r ->
                                    r.1 = i.currency AND r.2 <=
                                    i.occurred_at, (SELECT
                                    arraySort(r -> (r.1, r.2),
                                    groupArray((currency,
                                    valid_from, cny_per_unit)))
                                    FROM
                                    {database}.currency_rates
                                    FINAL)).3, 0), 2) AS
                                    Nullable(Decimal(38, 2)))
                            , 0)
                        FROM {database}.inquiries AS i FINAL
                        WHERE i.cluster_id != ''
                        UNION ALL
                        SELECT p.fair_id, p.event_id, p.occurred_at, 3, p.cluster_id,
                            ifNull(
                                CAST(round(toDecimal128(p.value,
                                    2) * nullIf(arrayLast(r ->
                                    r.1 = p.currency AND r.2 <=
                                    p.occurred_at, (SELECT
                                    arraySort(r -> (r.1, r.2),
                                    groupArray((currency,
                                    valid_from, cny_per_unit)))
                                    FROM
                                    {database}.currency_rates
                                    FINAL)).3, 0), 2) AS
                                    Nullable(Decimal(38, 2)))
                            , 0)
                        FROM {database}.procurement_steps AS p FINAL
                        WHERE p.cluster_id != ''
                    ) AS e
                    INNER JOIN (SELECT event_id, buyer_id FROM {database}.buyer_events_resolved) AS
                        b
                        ON b.event_id = e.event_id
                    GROUP BY e.fair_id, e.cluster_id, w0
                )
            )
            ARRAY JOIN range(if(nth = 1, fair_first, w0),
                if(next_w0 = 0, fair_last + 300, next_w0), 300) AS t
        )
        WINDOW
            previous AS (PARTITION BY fair_id, cluster_id ORDER BY window_start
                ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW),
            group_trailing AS (PARTITION BY fair_id, cluster_id ORDER BY window_start
                RANGE BETWEEN 3600 PRECEDING AND 1 PRECEDING),
            fair_trailing AS (PARTITION BY fair_id ORDER BY window_start
                RANGE BETWEEN 3600 PRECEDING AND 1 PRECEDING),
            fair_window AS (PARTITION BY fair_id, window_start)
    )
);

CREATE VIEW IF NOT EXISTS {database}.momentum_cluster_hour AS
SELECT
    fair_id, cluster_id, window_start, events, scans, inquiries, procurement_steps, value_cny,
    toInt64(events) - lagInFrame(toInt64(events), 1, 0) OVER previous AS velocity,
    toInt64(events) - 2 * lagInFrame(toInt64(events), 1, 0) OVER previous
        + lagInFrame(toInt64(events), 2, 0) OVER previous AS acceleration,
    (sum(events) OVER group_trailing + 1)
        / (sum(events) OVER fair_trailing + count() OVER fair_window)
        * sum(events) OVER fair_window AS expected,
    (events - expected) / sqrt(expected + 1) AS momentum_score
FROM
(
    -- the gap-free grid: each stored window, then the empty windows after it up to the
    -- group's next stored window (or the fair's last), and before a group's first window
    -- those from the fair's first
    SELECT fair_id, cluster_id, toDateTime(t, 'UTC') AS window_start,
        if(t = w0, n_events, 0) AS events, if(t = w0, n_scans, 0) AS scans,
        if(t = w0, n_inquiries, 0) AS inquiries, if(t = w0, n_steps, 0) AS procurement_steps,
        if(t = w0, n_value, CAST(0 AS Decimal(18, 2))) AS value_cny
    FROM
    (
        SELECT *,
            min(w0) OVER (PARTITION BY fair_id) AS fair_first,
            max(w0) OVER (PARTITION BY fair_id) AS fair_last,
            leadInFrame(w0, 1, 0) OVER (PARTITION BY fair_id, cluster_id ORDER BY w0
                ROWS BETWEEN CURRENT ROW AND 1 FOLLOWING) AS next_w0,
            row_number() OVER (PARTITION BY fair_id, cluster_id ORDER BY w0) AS nth
        FROM
        (
            SELECT e.fair_id AS fair_id, e.cluster_id AS cluster_id,
                toUInt32(toStartOfHour(e.occurred_at)) AS w0,
                uniqExact(e.event_id) AS n_events,
                uniqExactIf(e.event_id, e.kind = 1) AS n_scans,
                uniqExactIf(e.event_id, e.kind = 2) AS n_inquiries,
                uniqExactIf(e.event_id, e.kind = 3) AS n_steps,
                CAST(sum(e.value_cny) AS Decimal(18, 2)) AS n_value
            FROM
            (
                SELECT s.fair_id AS fair_id, s.event_id AS event_id, s.occurred_at AS occurred_at,
                    toUInt8(1) AS kind, toString(s.cluster_id) AS cluster_id,
                    CAST(0 AS Decimal(38, 2)) AS value_cny
                FROM {database}.scans AS s FINAL
                WHERE s.cluster_id != ''
                UNION ALL
                SELECT i.fair_id, i.event_id, i.occurred_at, 2, i.cluster_id,
                    ifNull(
                        CAST(round(toDecimal128(i.budget, 2) *
                            nullIf(arrayLast(r -> r.1 = i.currency AND
                            r.2 <= i.occurred_at, (SELECT arraySort(r ->
                            (r.1, r.2), groupArray((currency,
                            valid_from, cny_per_unit))) FROM
                            {database}.currency_rates FINAL)).3, 0), 2)
                            AS Nullable(Decimal(38, 2)))
                    , 0)
                FROM {database}.inquiries AS i FINAL
                WHERE i.cluster_id != ''
                UNION ALL
                SELECT p.fair_id, p.event_id, p.occurred_at, 3, p.cluster_id,
                    ifNull(
                        CAST(round(toDecimal128(p.value, 2) *
                            nullIf(arrayLast(r -> r.1 = p.currency AND
                            r.2 <= p.occurred_at, (SELECT arraySort(r ->
                            (r.1, r.2), groupArray((currency,
                            valid_from, cny_per_unit))) FROM
                            {database}.currency_rates FINAL)).3, 0), 2)
                            AS Nullable(Decimal(38, 2)))
                    , 0)
                FROM {database}.procurement_steps AS p FINAL
                WHERE p.cluster_id != ''
            ) AS e
            INNER JOIN (SELECT event_id, buyer_id FROM {database}.buyer_events_resolved) AS b
                ON b.event_id = e.event_id
            GROUP BY e.fair_id, e.cluster_id, w0
        )
    )
    ARRAY JOIN range(if(nth = 1, fair_first, w0),
        if(next_w0 = 0, fair_last + 3600, next_w0), 3600) AS t
)
WINDOW
    previous AS (PARTITION BY fair_id, cluster_id ORDER BY window_start
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW),
    group_trailing AS (PARTITION BY fair_id, cluster_id ORDER BY window_start
        RANGE BETWEEN 43200 PRECEDING AND 1 PRECEDING),
    fair_trailing AS (PARTITION BY fair_id ORDER BY window_start
        RANGE BETWEEN 43200 PRECEDING AND 1 PRECEDING),
    fair_window AS (PARTITION BY fair_id, window_start);

CREATE VIEW IF NOT EXISTS {database}.momentum_category_5m AS
SELECT
    fair_id, category, window_start, events, scans, inquiries, procurement_steps, value_cny,
    toInt64(events) - lagInFrame(toInt64(events), 1, 0) OVER previous AS velocity,
    toInt64(events) - 2 * lagInFrame(toInt64(events), 1, 0) OVER previous
        + lagInFrame(toInt64(events), 2, 0) OVER previous AS acceleration,
    (sum(events) OVER group_trailing + 1)
        / (sum(events) OVER fair_trailing + count() OVER fair_window)
        * sum(events) OVER fair_window AS expected,
    (events - expected) / sqrt(expected + 1) AS momentum_score
FROM
(
    -- the gap-free grid: each stored window, then the empty windows after it up to the
    -- group's next stored window (or the fair's last), and before a group's first window
    -- those from the fair's first
    SELECT fair_id, category, toDateTime(t, 'UTC') AS window_start,
        if(t = w0, n_events, 0) AS events, if(t = w0, n_scans, 0) AS scans,
        if(t = w0, n_inquiries, 0) AS inquiries, if(t = w0, n_steps, 0) AS procurement_steps,
        if(t = w0, n_value, CAST(0 AS Decimal(18, 2))) AS value_cny
    FROM
    (
        SELECT *,
            min(w0) OVER (PARTITION BY fair_id) AS fair_first,
            max(w0) OVER (PARTITION BY fair_id) AS fair_last,
            leadInFrame(w0, 1, 0) OVER (PARTITION BY fair_id, category ORDER BY w0
                ROWS BETWEEN CURRENT ROW AND 1 FOLLOWING) AS next_w0,
            row_number() OVER (PARTITION BY fair_id, category ORDER BY w0) AS nth
        FROM
        (
            SELECT e.fair_id AS fair_id, e.category AS category,
                toUInt32(toStartOfFiveMinutes(e.occurred_at)) AS w0,
                uniqExact(e.event_id) AS n_events,
                uniqExactIf(e.event_id, e.kind = 1) AS n_scans,
                uniqExactIf(e.event_id, e.kind = 2) AS n_inquiries,
                uniqExactIf(e.event_id, e.kind = 3) AS n_steps,
                CAST(sum(e.value_cny) AS Decimal(18, 2)) AS n_value
            FROM
            (
                SELECT i.fair_id AS fair_id, i.event_id AS event_id, i.occurred_at AS occurred_at,
                    toUInt8(2) AS kind, toString(arrayJoin(i.categories)) AS category,
                    ifNull(
                        CAST(round(toDecimal128(i.budget, 2) *
                            nullIf(arrayLast(r -> r.1 = i.currency AND
                            r.2 <= i.occurred_at, (SELECT arraySort(r ->
                            (r.1, r.2), groupArray((currency,
                            valid_from, cny_per_unit))) FROM
                            {database}.currency_rates FINAL)).3, 0), 2)
                            AS Nullable(Decimal(38, 2)))
                    , 0) AS value_cny
                FROM {database}.inquiries AS i FINAL
                UNION ALL
                SELECT p.fair_id, p.event_id, p.occurred_at, 3, p.category,
                    ifNull(
                        CAST(round(toDecimal128(p.value, 2) *
                            nullIf(arrayLast(r -> r.1 = p.currency AND
                            r.2 <= p.occurred_at, (SELECT arraySort(r ->
                            (r.1, r.2), groupArray((currency,
                            valid_from, cny_per_unit))) FROM
                            {database}.currency_rates FINAL)).3, 0), 2)
                            AS Nullable(Decimal(38, 2)))
                    , 0)
                FROM {database}.procurement_steps AS p FINAL
                WHERE p.category != ''
            ) AS e
            INNER JOIN (SELECT event_id, buyer_id FROM {database}.buyer_events_resolved) AS b
                ON b.event_id = e.event_id
            GROUP BY e.fair_id, e.category, w0
        )
    )
    ARRAY JOIN range(if(nth = 1, fair_first, w0),
        if(next_w0 = 0, fair_last + 300, next_w0), 300) AS t
)
WINDOW
    previous AS (PARTITION BY fair_id, category ORDER BY window_start
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW),
    group_trailing AS (PARTITION BY fair_id, category ORDER BY window_start
        RANGE BETWEEN 3600 PRECEDING AND 1 PRECEDING),
    fair_trailing AS (PARTITION BY fair_id ORDER BY window_start
        RANGE BETWEEN 3600 PRECEDING AND 1 PRECEDING),
    fair_window AS (PARTITION BY fair_id, window_start);

CREATE VIEW IF NOT EXISTS {database}.momentum_category_hour AS
SELECT
    fair_id, category, window_start, events, scans, inquiries, procurement_steps, value_cny,
    toInt64(events) - lagInFrame(toInt64(events), 1, 0) OVER previous AS velocity,
    toInt64(events) - 2 * lagInFrame(toInt64(events), 1, 0) OVER previous
        + lagInFrame(toInt64(events), 2, 0) OVER previous AS acceleration,
    (sum(events) OVER group_trailing + 1)
        / (sum(events) OVER fair_trailing + count() OVER fair_window)
        * sum(events) OVER fair_window AS expected,
    (events - expected) / sqrt(expected + 1) AS momentum_score
FROM
(
    -- the gap-free grid: each stored window, then the empty windows after it up to the
    -- group's next stored window (or the fair's last), and before a group's first window
    -- those from the fair's first
    SELECT fair_id, category, toDateTime(t, 'UTC') AS window_start,
        if(t = w0, n_events, 0) AS events, if(t = w0, n_scans, 0) AS scans,
        if(t = w0, n_inquiries, 0) AS inquiries, if(t = w0, n_steps, 0) AS procurement_steps,
        if(t = w0, n_value, CAST(0 AS Decimal(18, 2))) AS value_cny
    FROM
    (
        SELECT *,
            min(w0) OVER (PARTITION BY fair_id) AS fair_first,
            max(w0) OVER (PARTITION BY fair_id) AS fair_last,
            leadInFrame(w0, 1, 0) OVER (PARTITION BY fair_id, category ORDER BY w0
                ROWS BETWEEN CURRENT ROW AND 1 FOLLOWING) AS next_w0,
            row_number() OVER (PARTITION BY fair_id, category ORDER BY w0) AS nth
        FROM
        (
            SELECT e.fair_id AS fair_id, e.category AS category,
                toUInt32(toStartOfHour(e.occurred_at)) AS w0,
                uniqExact(e.event_id) AS n_events,
                uniqExactIf(e.event_id, e.kind = 1) AS n_scans,
                uniqExactIf(e.event_id, e.kind = 2) AS n_inquiries,
                uniqExactIf(e.event_id, e.kind = 3) AS n_steps,
                CAST(sum(e.value_cny) AS Decimal(18, 2)) AS n_value
            FROM
            (
                SELECT i.fair_id AS fair_id, i.event_id AS event_id, i.occurred_at AS occurred_at,
                    toUInt8(2) AS kind, toString(arrayJoin(i.categories)) AS category,
                    ifNull(
                        CAST(round(toDecimal128(i.budget, 2) *
                            nullIf(arrayLast(r -> r.1 = i.currency AND
                            r.2 <= i.occurred_at, (SELECT arraySort(r ->
                            (r.1, r.2), groupArray((currency,
                            valid_from, cny_per_unit))) FROM
                            {database}.currency_rates FINAL)).3, 0), 2)
                            AS Nullable(Decimal(38, 2)))
                    , 0) AS value_cny
                FROM {database}.inquiries AS i FINAL
                UNION ALL
                SELECT p.fair_id, p.event_id, p.occurred_at, 3, p.category,
                    ifNull(
                        CAST(round(toDecimal128(p.value, 2) *
                            nullIf(arrayLast(r -> r.1 = p.currency AND
                            r.2 <= p.occurred_at, (SELECT arraySort(r ->
                            (r.1, r.2), groupArray((currency,
                            valid_from, cny_per_unit))) FROM
                            {database}.currency_rates FINAL)).3, 0), 2)
                            AS Nullable(Decimal(38, 2)))
                    , 0)
                FROM {database}.procurement_steps AS p FINAL
                WHERE p.category != ''
            ) AS e
            INNER JOIN (SELECT event_id, buyer_id FROM {database}.buyer_events_resolved) AS b
                ON b.event_id = e.event_id
            GROUP BY e.fair_id, e.category, w0
        )
    )
    ARRAY JOIN range(if(nth = 1, fair_first, w0),
        if(next_w0 = 0, fair_last + 3600, next_w0), 3600) AS t
)
WINDOW
    previous AS (PARTITION BY fair_id, category ORDER BY window_start
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW),
    group_trailing AS (PARTITION BY fair_id, category ORDER BY window_start
        RANGE BETWEEN 43200 PRECEDING AND 1 PRECEDING),
    fair_trailing AS (PARTITION BY fair_id ORDER BY window_start
        RANGE BETWEEN 43200 PRECEDING AND 1 PRECEDING),
    fair_window AS (PARTITION BY fair_id, window_start);

-- The live ranking: per fair, the latest complete 5-minute window (the one before the
-- window holding the fair's latest event), clusters by momentum_score (rank 1 = top, ties by
-- cluster_id). The named query momentum_ranking_at ranks any window.
CREATE VIEW IF NOT EXISTS {database}.momentum_ranking AS
SELECT
    fair_id, window_start,
    toUInt32(row_number() OVER (PARTITION BY fair_id
        ORDER BY momentum_score DESC, cluster_id)) AS rank,
    cluster_id, momentum_score, events, expected
FROM
(
    SELECT fair_id, window_start, cluster_id, momentum_score, events, expected,
        max(window_start) OVER (PARTITION BY fair_id) AS last_window
    FROM {database}.momentum_cluster_5m
)
WHERE window_start = last_window - 300;

-- Every match (matches FINAL: one row per inquiry and rank) with its inquiry's resolved
-- buyer (a match whose inquiry has none yet is left out) and what followed between that
-- buyer and the matched exhibitor at or after matched_at (the inquiry's event time):
-- visited (a scan), sampled (a sample_request), intent (a cooperation_intent), ordered (a
-- purchase_order); hours_to_intent from matched_at to the first intent (NULL: none);
-- order_value_cny: the purchase orders' values in CNY.
CREATE VIEW IF NOT EXISTS {database}.match_outcomes AS
SELECT
    m.fair_id AS fair_id, m.inquiry_event_id AS inquiry_event_id, m.rank AS rank,
    m.exhibitor_id AS exhibitor_id, m.cluster_id AS cluster_id, m.buyer_id AS buyer_id,
    m.matched_at AS matched_at,
    max(e.stage = 'scan' AND e.occurred_at >= m.matched_at) AS visited,
    max(e.stage = 'sample_request' AND e.occurred_at >= m.matched_at) AS sampled,
    max(e.stage = 'cooperation_intent' AND e.occurred_at >= m.matched_at) AS intent,
    max(e.stage = 'purchase_order' AND e.occurred_at >= m.matched_at) AS ordered,
    if(intent = 1, dateDiff('millisecond', m.matched_at, minIf(e.occurred_at,
        e.stage = 'cooperation_intent' AND e.occurred_at >= m.matched_at)) / 3600000., NULL)
        AS hours_to_intent,
    CAST(sumIf(e.value_cny, e.stage = 'purchase_order' AND e.occurred_at >= m.matched_at)
        AS Decimal(18, 2)) AS order_value_cny
FROM
(
    SELECT x.fair_id AS fair_id, b.buyer_id AS buyer_id, x.exhibitor_id AS exhibitor_id,
        x.stage AS stage, x.occurred_at AS occurred_at, x.value_cny AS value_cny
    FROM
    (
        SELECT s.fair_id AS fair_id, s.event_id AS event_id,
            toString(s.exhibitor_id) AS exhibitor_id, toString('scan') AS stage,
            s.occurred_at AS occurred_at, CAST(0 AS Decimal(38, 2)) AS value_cny
        FROM {database}.scans AS s FINAL
        WHERE s.exhibitor_id != ''
        UNION ALL
        SELECT p.fair_id, p.event_id, p.exhibitor_id, p.step, p.occurred_at,
            ifNull(
            CAST(round(toDecimal128(p.value, 2) * nullIf(arrayLast(r -> r.1 =
                p.currency AND r.2 <= p.occurred_at, (SELECT arraySort(r -> (r.1,
                r.2), groupArray((currency, valid_from, cny_per_unit))) FROM
                {database}.currency_rates FINAL)).3, 0), 2) AS Nullable(Decimal(38,
                2)))
            , 0)
        FROM {database}.procurement_steps AS p FINAL
        WHERE p.exhibitor_id != ''
    ) AS x
    INNER JOIN (SELECT event_id, buyer_id FROM {database}.buyer_events_resolved) AS b
        ON b.event_id = x.event_id
) AS e
RIGHT JOIN
(
    SELECT mt.fair_id AS fair_id, mt.inquiry_event_id AS inquiry_event_id, mt.rank AS rank,
        mt.exhibitor_id AS exhibitor_id, mt.cluster_id AS cluster_id,
        mt.matched_at AS matched_at, r.buyer_id AS buyer_id
    FROM {database}.matches AS mt FINAL
    INNER JOIN
    (
        -- only the matched inquiries' rows: buyer_events is sorted by event_id
        SELECT event_id, buyer_id FROM {database}.buyer_events_resolved
        WHERE event_id IN (SELECT inquiry_event_id FROM {database}.matches)
    ) AS r ON r.event_id = mt.inquiry_event_id
) AS m
    ON e.fair_id = m.fair_id AND e.buyer_id = m.buyer_id AND e.exhibitor_id = m.exhibitor_id
GROUP BY m.fair_id, m.inquiry_event_id, m.rank, m.exhibitor_id, m.cluster_id, m.buyer_id,
    m.matched_at;

-- Match credit, two rows per fair: pairs a match introduced ('match': the distinct (buyer,
-- exhibitor) of match_outcomes, counted from the pair's first match on) and pairs none did
-- ('no_match': every other (buyer, exhibitor) with a scan or a procurement step, all their
-- events). visited, sampled, intent, ordered: pairs with a scan, a sample request, a
-- cooperation intent, a purchase order; each rate is that count over pairs (NULL without
-- pairs); median_hours_to_intent: of match pairs that reached an intent, from the pair's
-- first match, the middle value or the mean of the two middle ones (NULL for no_match);
-- order_value_cny: their purchase orders in CNY. One pass:
-- the resolved scans and steps full-joined to the match pairs (the same semantics as
-- match_outcomes, without reading the events twice; the integration test holds them equal).
CREATE VIEW IF NOT EXISTS {database}.matchmaking_kpis AS
SELECT
    fair_id, introduced_by,
    k.1 AS pairs, k.2 AS visited, k.3 AS sampled, k.4 AS intent, k.5 AS ordered,
    if(pairs = 0, NULL, visited / pairs) AS visit_rate,
    if(pairs = 0, NULL, sampled / pairs) AS sample_rate,
    if(pairs = 0, NULL, intent / pairs) AS intent_rate,
    if(pairs = 0, NULL, ordered / pairs) AS order_rate,
    if(introduced_by = 'match' AND intent > 0, median_match, NULL) AS median_hours_to_intent,
    k.6 AS order_value_cny
FROM
(
    SELECT
        fair_id,
        countIf(is_match = 1) AS m_pairs, countIf(is_match = 0) AS n_pairs,
        countIf(is_match = 1 AND visited = 1) AS m_visited,
        countIf(is_match = 0 AND visited = 1) AS n_visited,
        countIf(is_match = 1 AND sampled = 1) AS m_sampled,
        countIf(is_match = 0 AND sampled = 1) AS n_sampled,
        countIf(is_match = 1 AND intent = 1) AS m_intent,
        countIf(is_match = 0 AND intent = 1) AS n_intent,
        countIf(is_match = 1 AND ordered = 1) AS m_ordered,
        countIf(is_match = 0 AND ordered = 1) AS n_ordered,
        CAST(sumIf(order_value_cny, is_match = 1) AS Decimal(18, 2)) AS m_value,
        CAST(sumIf(order_value_cny, is_match = 0) AS Decimal(18, 2)) AS n_value,
        quantileExactInclusiveIf(0.5)(hours_to_intent, is_match = 1 AND intent = 1)
            AS median_match
    FROM
    (
        SELECT
            fair_id, buyer_id, exhibitor_id,
            max(is_match) AS is_match,
            max(stage = 'scan' AND counted) AS visited,
            max(stage = 'sample_request' AND counted) AS sampled,
            max(stage = 'cooperation_intent' AND counted) AS intent,
            max(stage = 'purchase_order' AND counted) AS ordered,
            if(intent = 1, dateDiff('millisecond', any(first_matched_at), minIf(occurred_at,
                stage = 'cooperation_intent' AND counted)) / 3600000., NULL) AS hours_to_intent,
            sumIf(value_cny, stage = 'purchase_order' AND counted) AS order_value_cny
        FROM
        (
            SELECT fair_id, buyer_id, exhibitor_id, e.stage AS stage,
                e.occurred_at AS occurred_at, e.value_cny AS value_cny,
                m.is_match AS is_match, m.first_matched_at AS first_matched_at,
                -- an event counts for a match pair from the pair's first match on; a match
                -- pair without events comes from the join's right side alone (stage '')
                stage != '' AND (is_match = 0 OR occurred_at >= first_matched_at) AS counted
            FROM
            (
    SELECT x.fair_id AS fair_id, b.buyer_id AS buyer_id, x.exhibitor_id AS exhibitor_id,
        x.stage AS stage, x.occurred_at AS occurred_at, x.value_cny AS value_cny
    FROM
    (
        SELECT s.fair_id AS fair_id, s.event_id AS event_id,
            toString(s.exhibitor_id) AS exhibitor_id, toString('scan') AS stage,
            s.occurred_at AS occurred_at, CAST(0 AS Decimal(38, 2)) AS value_cny
        FROM {database}.scans AS s FINAL
        WHERE s.exhibitor_id != ''
        UNION ALL
        SELECT p.fair_id, p.event_id, p.exhibitor_id, p.step, p.occurred_at,
            ifNull(
            CAST(round(toDecimal128(p.value, 2) * nullIf(arrayLast(r -> r.1 =
                p.currency AND r.2 <= p.occurred_at, (SELECT arraySort(r -> (r.1,
                r.2), groupArray((currency, valid_from, cny_per_unit))) FROM
                {database}.currency_rates FINAL)).3, 0), 2) AS Nullable(Decimal(38,
                2)))
            , 0)
        FROM {database}.procurement_steps AS p FINAL
        WHERE p.exhibitor_id != ''
    ) AS x
    INNER JOIN (SELECT event_id, buyer_id FROM {database}.buyer_events_resolved) AS b
        ON b.event_id = x.event_id
            ) AS e
            FULL OUTER JOIN
            (
                SELECT fair_id, buyer_id, exhibitor_id, min(matched_at) AS first_matched_at,
                    toUInt8(1) AS is_match
                FROM
                (
    SELECT mt.fair_id AS fair_id, mt.inquiry_event_id AS inquiry_event_id, mt.rank AS rank,
        mt.exhibitor_id AS exhibitor_id, mt.cluster_id AS cluster_id,
        mt.matched_at AS matched_at, r.buyer_id AS buyer_id
    FROM {database}.matches AS mt FINAL
    INNER JOIN
    (
        -- only the matched inquiries' rows: buyer_events is sorted by event_id
        SELECT event_id, buyer_id FROM {database}.buyer_events_resolved
        WHERE event_id IN (SELECT inquiry_event_id FROM {database}.matches)
    ) AS r ON r.event_id = mt.inquiry_event_id
                )
                GROUP BY fair_id, buyer_id, exhibitor_id
            ) AS m USING (fair_id, buyer_id, exhibitor_id)
        )
        GROUP BY fair_id, buyer_id, exhibitor_id
    )
    GROUP BY fair_id
)
ARRAY JOIN
    ['match', 'no_match'] AS introduced_by,
    [(m_pairs, m_visited, m_sampled, m_intent, m_ordered, m_value),
     (n_pairs, n_visited, n_sampled, n_intent, n_ordered, n_value)] AS k;

-- Professional buyers per (fair, pavilion, cluster): distinct resolved buyers with a scan
-- there whose buyer has a registration (any of the buyer's registrations after merges) with
-- buyer_type in PROFESSIONAL_BUYER_TYPES; every (pavilion, cluster) scanned appears, 0
-- included. Versus season_baseline: previous_season is the latest-loaded season label that
-- is not this fair_id (NULL: none), previous_professional_buyers its count for the same
-- pavilion and cluster (NULL: not in it), change_pct = 100 * (now - previous) / previous
-- (NULL when previous is NULL or 0).
CREATE VIEW IF NOT EXISTS {database}.season_comparison AS
SELECT
    c.fair_id AS fair_id, c.pavilion_id AS pavilion_id, c.cluster_id AS cluster_id,
    c.professional_buyers AS professional_buyers,
    nullIf(s.previous_season, '') AS previous_season,
    if(bl.found = 1, toNullable(bl.professional_buyers), NULL)
        AS previous_professional_buyers,
    if(previous_professional_buyers IS NULL OR previous_professional_buyers = 0, NULL,
        100. * (toFloat64(c.professional_buyers) - previous_professional_buyers)
        / previous_professional_buyers) AS change_pct
FROM
(
    SELECT fair_id, place.1 AS pavilion_id, place.2 AS cluster_id,
        toUInt32(uniqExactIf(buyer_id, professional = 1)) AS professional_buyers
    FROM
    (
        SELECT e.fair_id AS fair_id, b.buyer_id AS buyer_id,
            max(e.professional) AS professional,
            groupUniqArrayIf((e.pavilion_id, e.cluster_id), e.is_scan = 1) AS places
        FROM
        (
            SELECT g.fair_id AS fair_id, g.event_id AS event_id, toUInt8(0) AS is_scan,
                toUInt8(g.buyer_type IN ('brand', 'retailer', 'wholesaler', 'designer', 'agent',
                    'ecommerce')) AS professional,
                toString('') AS pavilion_id, toString('') AS cluster_id
            FROM {database}.registrations AS g FINAL
            UNION ALL
            SELECT s.fair_id, s.event_id, 1, 0, s.pavilion_id, s.cluster_id
            FROM {database}.scans AS s FINAL
            WHERE s.cluster_id != ''
        ) AS e
        INNER JOIN (SELECT event_id, buyer_id FROM {database}.buyer_events_resolved) AS b
            ON b.event_id = e.event_id
        GROUP BY e.fair_id, b.buyer_id
    )
    ARRAY JOIN places AS place
    GROUP BY fair_id, pavilion_id, cluster_id
) AS c
LEFT JOIN
(
    SELECT f.fair_id AS fair_id,
        argMaxIf(sb.season, sb.loaded_at, sb.season != f.fair_id) AS previous_season
    FROM (SELECT DISTINCT fair_id FROM {database}.scans) AS f
    CROSS JOIN {database}.season_baseline AS sb FINAL
    GROUP BY f.fair_id
) AS s ON s.fair_id = c.fair_id
LEFT JOIN
(
    SELECT season, pavilion_id, cluster_id, professional_buyers, toUInt8(1) AS found
    FROM {database}.season_baseline FINAL
) AS bl
    ON bl.season = s.previous_season AND bl.pavilion_id = c.pavilion_id
    AND bl.cluster_id = c.cluster_id;

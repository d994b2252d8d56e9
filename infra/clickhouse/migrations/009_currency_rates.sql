-- Currency rates (issue 9, the procurement funnel's values in CNY): CNY per one unit of a
-- currency, valid from a moment until the next valid_from of the same currency. One row
-- per (currency, valid_from); loading that pair again replaces it (newest loaded_at wins),
-- any other pair is added, so the history of rates stays and old events keep converting
-- at the rate of their time (core/rates.py, to_cny_sql).
CREATE TABLE IF NOT EXISTS {database}.currency_rates
(
    currency LowCardinality(String),
    valid_from DateTime('UTC'),
    cny_per_unit Decimal(18, 8),
    source String,
    loaded_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(loaded_at)
ORDER BY (currency, valid_from);

-- The shipped reference rates (infra/clickhouse/rates/cny_rates.csv, the same rows; a unit
-- test keeps them equal), only into an empty table: an operator's rates are never
-- overwritten, and a re-run after an interruption does not add them twice. Their loaded_at
-- is 1970 so that an operator's row for the same (currency, valid_from) always wins.
-- when: SELECT count() = 0 FROM {database}.currency_rates
INSERT INTO {database}.currency_rates (currency, valid_from, cny_per_unit, source, loaded_at)
VALUES
    ('CNY', '1970-01-01 00:00:00', 1, 'shipped reference 2026-06-30', '1970-01-01 00:00:00'),
    ('HKD', '1970-01-01 00:00:00', 0.91, 'shipped reference 2026-06-30', '1970-01-01 00:00:00'),
    ('USD', '1970-01-01 00:00:00', 7.15, 'shipped reference 2026-06-30', '1970-01-01 00:00:00'),
    ('EUR', '1970-01-01 00:00:00', 8.10, 'shipped reference 2026-06-30', '1970-01-01 00:00:00'),
    ('GBP', '1970-01-01 00:00:00', 9.55, 'shipped reference 2026-06-30', '1970-01-01 00:00:00'),
    ('JPY', '1970-01-01 00:00:00', 0.0485, 'shipped reference 2026-06-30', '1970-01-01 00:00:00'),
    ('KRW', '1970-01-01 00:00:00', 0.0052, 'shipped reference 2026-06-30', '1970-01-01 00:00:00');

-- The rate of each currency in force now (the latest valid_from not in the future).
CREATE VIEW IF NOT EXISTS {database}.cny_rate_current AS
SELECT
    r.currency AS currency,
    argMax(r.cny_per_unit, r.valid_from) AS cny_per_unit,
    max(r.valid_from) AS valid_from
FROM {database}.currency_rates AS r FINAL
WHERE r.valid_from <= now()
GROUP BY r.currency;

"""Rates CSV: every error kind is named with its line, a bad file yields no rates at all,
and the shipped file, migration 009's defaults and the events' currencies agree."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from core.migrations import on_cluster, parse_statements
from core.rates import Rate, RatesFileError, parse_rates, to_cny_sql
from infra.clickhouse import MIGRATIONS_DIR
from producers.simulator.lexicon import CURRENCY_BY_COUNTRY
from tests.factories.stores import MIGRATIONS

RATES_DIR = MIGRATIONS_DIR.parent / "rates"  # the shipped reference rates
SHIPPED = RATES_DIR / "cny_rates.csv"
HEADER = "currency,cny_per_unit,valid_from\n"


def errors_of(text: str) -> list[str]:
    with pytest.raises(RatesFileError) as caught:
        parse_rates(text, source="r.csv")
    return caught.value.errors


def test_a_good_file_parses_in_order_with_utc_times() -> None:
    rates = parse_rates(HEADER + "CNY,1,2026-01-01\n\nUSD,7.1234,2026-03-26T08:00:00+08:00\n"
                        "EUR , 8.1 ,2026-03-27T06:30:00\n")
    assert rates == [
        Rate("CNY", Decimal("1"), datetime(2026, 1, 1, tzinfo=UTC), 2),
        Rate("USD", Decimal("7.1234"), datetime(2026, 3, 26, 0, 0, tzinfo=UTC), 4),
        Rate("EUR", Decimal("8.1"), datetime(2026, 3, 27, 6, 30, tzinfo=UTC), 5),
    ]


def test_columns_may_come_in_any_order() -> None:
    rates = parse_rates("valid_from,currency,cny_per_unit\n2026-01-01,USD,7.2\n")
    assert rates == [Rate("USD", Decimal("7.2"), datetime(2026, 1, 1, tzinfo=UTC), 2)]


@pytest.mark.parametrize(("text", "expected"), [
    ("currency,rate,valid_from\nUSD,7,2026-01-01\n", "line 1: header must be"),
    ("currency,cny_per_unit\nUSD,7\n", "line 1: header must be"),
    (HEADER + "CNY,1,2026-01-01\nusd,7,2026-01-01\n", "line 3: currency 'usd' is not"),
    (HEADER + "US,7,2026-01-01\n", "line 2: currency 'US' is not"),
    (HEADER + "USD,0,2026-01-01\n", "line 2: cny_per_unit '0' is not positive"),
    (HEADER + "USD,-7.1,2026-01-01\n", "line 2: cny_per_unit '-7.1' is not positive"),
    (HEADER + "USD,NaN,2026-01-01\n", "line 2: cny_per_unit 'NaN' is not positive"),
    (HEADER + "USD,seven,2026-01-01\n", "line 2: cny_per_unit 'seven' is not a number"),
    (HEADER + "KRW,0.000000001,2026-01-01\n", "line 2: cny_per_unit 0.000000001 has more"),
    (HEADER + "USD,7,2026-13-01\n", "line 2: valid_from '2026-13-01' is not an ISO date"),
    (HEADER + "USD,7,26/03/2026\n", "line 2: valid_from '26/03/2026' is not an ISO date"),
    (HEADER + "CNY,1.1,2026-01-01\n", "line 2: CNY must be 1"),
    (HEADER + "USD,7,2026-01-01,x\n", "line 2: 4 fields, the header has 3"),
    (HEADER + "USD,7,2026-01-01\nUSD,7.2,2026-01-01T00:00:00Z\n",
     "line 3: USD from 2026-01-01T00:00:00Z again (first on line 2)"),
    (HEADER, "line 1: no rates after the header"),
    ("", "line 1: empty"),
])
def test_every_error_kind_names_its_line(text: str, expected: str) -> None:
    errors = errors_of(text)
    assert len(errors) == 1 and errors[0].startswith(expected), errors
    assert "\n" not in errors[0]


def test_one_bad_line_rejects_the_whole_file_and_every_bad_line_is_listed() -> None:
    text = HEADER + "USD,7.1,2026-01-01\nEUR,0,2026-01-01\nGBP,9.5,2026-01-01\nJPY,1,x\n"
    with pytest.raises(RatesFileError) as caught:
        parse_rates(text, source="r.csv")
    assert [e.split(":")[0] for e in caught.value.errors] == ["line 3", "line 5"]
    message = str(caught.value)
    assert message.startswith("r.csv: line 3: cny_per_unit '0' is not positive")
    assert "(and 1 more)" in message and message.endswith("nothing was loaded")


def test_the_shipped_file_covers_every_currency_the_simulator_sends() -> None:
    shipped = parse_rates(SHIPPED.read_text("utf-8"))
    assert {r.currency for r in shipped} >= set(CURRENCY_BY_COUNTRY.values()) | {"CNY"}
    assert [r.cny_per_unit for r in shipped if r.currency == "CNY"] == [1]


def test_migration_009_inserts_exactly_the_shipped_rates_into_an_empty_table_only() -> None:
    (migration,) = [m for m in MIGRATIONS if m.version == 9]
    (insert,) = [s for s in parse_statements(migration.sql) if s.sql.startswith("INSERT")]
    assert insert.when == "SELECT count() = 0 FROM {database}.currency_rates"
    values = re.findall(r"\('([A-Z]{3})', '([^']+)', ([0-9.]+),", insert.sql)
    in_sql = {(c, datetime.fromisoformat(t).replace(tzinfo=UTC), Decimal(r))
              for c, t, r in values}
    shipped = {(r.currency, r.valid_from, r.cny_per_unit)
               for r in parse_rates(SHIPPED.read_text("utf-8"))}
    assert in_sql == shipped


def test_to_cny_sql_reads_the_rates_table_of_the_given_database() -> None:
    sql = to_cny_sql("value", "currency", "occurred_at", "fair1")
    assert "FROM fair1.currency_rates FINAL" in sql
    assert "r.1 = currency AND r.2 <= occurred_at" in sql
    assert sql.startswith("CAST(round(toDecimal128(value, 2)")


def test_migration_009_is_safe_to_re_run_and_has_a_cluster_variant() -> None:
    (migration,) = [m for m in MIGRATIONS if m.version == 9]
    assert (migration.version, migration.name) == (9, "currency_rates")
    for statement in parse_statements(migration.sql):
        if statement.sql.startswith("INSERT"):
            assert statement.when.startswith("SELECT "), statement.sql[:60]
            assert on_cluster(statement.sql, "fair") == statement.sql
        else:
            assert "IF NOT EXISTS" in statement.sql.split("(")[0], statement.sql[:60]
            assert "ON CLUSTER 'fair'" in on_cluster(statement.sql, "fair").splitlines()[0]

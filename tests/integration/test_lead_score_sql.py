"""The lead score's SQL form gives the Python score, on the real embedded engine (chdb)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import clickhouse_connect
import pytest

from streams.intelligence.scores import (
    DEFAULT_MODEL,
    RATINGS,
    SIGNAL_COLUMNS,
    LeadSignals,
    ScoreModel,
    score,
    score_sql,
    tier_sql,
)
from tests.factories.signals import random_signals

NOW = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)
# A model other than the default, so the SQL is proven to follow the model it is given.
OTHER_MODEL = ScoreModel(scan_weight=5.0, step_weight=35.0, half_life_hours=6.0,
                         hot_cutoff=70.0, warm_cutoff=40.0)

COLUMNS = """
    id UInt32,
    last_activity DateTime64(6, 'UTC'),
    scans UInt32,
    scan_days Array(Date),
    ratings Array(String),
    has_inquiry Bool,
    inquiry_quantity Nullable(UInt32),
    inquiry_budget_cny Nullable(Float64),
    inquiry_lead_time_days Nullable(UInt16),
    furthest_step Nullable(String)
"""


def _literal(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return f"toDateTime64('{value.astimezone(UTC):%Y-%m-%d %H:%M:%S.%f}', 6, 'UTC')"
    if isinstance(value, date):
        return f"toDate('{value.isoformat()}')"
    if isinstance(value, frozenset):
        return "[" + ", ".join(_literal(v) for v in sorted(value)) + "]"
    if isinstance(value, str):
        return f"'{value}'"
    return repr(value)


def _row(i: int, s: LeadSignals) -> str:
    return "(" + ", ".join([str(i), *(_literal(getattr(s, c)) for c in SIGNAL_COLUMNS)]) + ")"


@pytest.fixture(scope="module")
def signals() -> list[LeadSignals]:
    rng = random.Random(20260327)
    edge_cases = [
        LeadSignals(last_activity=NOW),  # nothing but a fresh activity
        LeadSignals(last_activity=NOW + timedelta(hours=2), scans=1),  # skewed clock
        LeadSignals(last_activity=NOW - timedelta(days=40), scans=50,
                    scan_days=frozenset(date(2026, 3, 20 + d) for d in range(5)),
                    ratings=frozenset(RATINGS), has_inquiry=True, inquiry_quantity=10**6,
                    inquiry_budget_cny=10.0**9, inquiry_lead_time_days=0,
                    furthest_step="purchase_order"),
        LeadSignals(last_activity=NOW, has_inquiry=True, inquiry_lead_time_days=400),
    ]
    return edge_cases + [random_signals(rng, NOW, timedelta(microseconds=1)) for _ in range(500)]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory,
           signals: list[LeadSignals]) -> Iterator[object]:
    path: Path = tmp_path_factory.mktemp("lead_score")
    client = clickhouse_connect.get_client(dsn=f"chdb://{path}")
    client.command(f"CREATE TABLE lead_signals ({COLUMNS}) ENGINE = Memory")
    client.command("INSERT INTO lead_signals VALUES "
                   + ", ".join(_row(i, s) for i, s in enumerate(signals)))
    yield client
    client.close()


@pytest.mark.parametrize("model", [DEFAULT_MODEL, OTHER_MODEL], ids=["default", "other"])
def test_the_sql_score_and_tier_equal_the_python_ones(
        client: object, signals: list[LeadSignals], model: ScoreModel) -> None:
    now = _literal(NOW)
    expr = score_sql(model, now=now)
    rows = client.query(  # type: ignore[attr-defined]
        f"SELECT id, {expr} AS score, {tier_sql(expr, model)} AS tier"
        f" FROM lead_signals ORDER BY id").result_rows
    assert len(rows) == len(signals)
    tiers = set()
    for (i, sql_value, sql_tier), s in zip(rows, signals, strict=True):
        expected = score(s, NOW, model)
        assert sql_value == pytest.approx(expected.value, abs=1e-9), (i, s)
        assert sql_tier == expected.tier, (i, s)
        tiers.add(sql_tier)
    assert tiers == {"hot", "warm", "cold"}  # the data exercises every branch


def test_the_sql_reads_a_second_precision_timestamp_too(client: object) -> None:
    """Tables may keep ``last_activity`` as DateTime (seconds) rather than DateTime64."""
    s = LeadSignals(last_activity=NOW - timedelta(hours=DEFAULT_MODEL.half_life_hours), scans=5)
    sql = (f"SELECT {score_sql(now=_literal(NOW))} FROM (SELECT"
           f" toDateTime('{s.last_activity:%Y-%m-%d %H:%M:%S}', 'UTC') AS last_activity,"
           " 5 AS scans, CAST([] AS Array(Date)) AS scan_days,"
           " CAST([] AS Array(String)) AS ratings,"
           " false AS has_inquiry, NULL AS inquiry_quantity, NULL AS inquiry_budget_cny,"
           " NULL AS inquiry_lead_time_days, NULL AS furthest_step)")
    value = client.query(sql).result_rows[0][0]  # type: ignore[attr-defined]
    assert value == pytest.approx(score(s, NOW).value, abs=1e-9)
    assert value == pytest.approx(DEFAULT_MODEL.scan_weight + DEFAULT_MODEL.recency_weight / 2)

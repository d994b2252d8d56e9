"""Migration 011 inlines Python-owned formulas as static SQL: they must not drift apart.

The views convert to CNY with ``core.rates.to_cny_sql``, score leads with
``streams.intelligence.scores.score_sql``/``tier_sql`` and name the stages, steps and
professional buyer types of ``schemas.events``/``scores``. Each check compares the migration
text (whitespace-normalised: the file wraps long expressions) with what the Python
functions generate now, so a changed weight, rate rule or stage list fails here until the
views are migrated with it.
"""

from __future__ import annotations

import re

import pytest

from core.rates import to_cny_sql
from schemas.events import FUNNEL_STAGES, PROFESSIONAL_BUYER_TYPES
from schemas.registry import INTELLIGENCE_VIEWS
from streams.intelligence.scores import DEFAULT_MODEL, FAIR_TZ, STEPS, score_sql, tier_sql
from tests.factories.stores import MIGRATIONS

(VIEWS,) = [m for m in MIGRATIONS if m.name == "intelligence_views"]
TEXT = " ".join(VIEWS.sql.split())
# Every expression is written for the table aliases the views use: i (inquiries), p (steps).
CNY = {
    "inquiry budget": to_cny_sql("i.budget", "i.currency", "i.occurred_at", "{database}"),
    "step value": to_cny_sql("p.value", "p.currency", "p.occurred_at", "{database}"),
}
SCORE = score_sql(DEFAULT_MODEL, now="fair_now")


def _normal(sql: str) -> str:
    return " ".join(sql.split())


def _literal(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


@pytest.mark.parametrize("name", sorted(CNY))
def test_values_in_cny_are_to_cny_sql(name: str) -> None:
    assert _normal(CNY[name]) in TEXT


def test_no_other_currency_conversion_is_written_by_hand() -> None:
    # to_cny_sql's only multiplication by a rate starts with toDecimal128(amount, 2)
    conversions = sum(TEXT.count(_normal(expr)) for expr in CNY.values())
    assert conversions > 0
    assert TEXT.count("toDecimal128(") == conversions


def test_both_lead_score_views_score_with_score_sql_and_tier_sql() -> None:
    assert TEXT.count(_normal(SCORE)) == 2
    assert TEXT.count(f"{_normal(SCORE)} AS score") == 2
    assert TEXT.count(f"{tier_sql('score')} AS tier") == 2
    assert TEXT.count("pow(0.5,") == 2  # no third, hand-written recency


def test_scan_days_are_local_fair_days() -> None:
    assert f"toDate(e.occurred_at, '{FAIR_TZ.key}')" in TEXT


def test_the_furthest_step_follows_the_ladder() -> None:
    ladder = _literal(("",) + STEPS)
    assert TEXT.count(f"{ladder} [max(indexOf({ladder}, e.step))]") == 2


def test_funnels_have_every_stage_in_order() -> None:
    stages = _literal(FUNNEL_STAGES)
    assert TEXT.count(f"{stages}[i] AS stage") == 3
    # -Resample(1, n + 1, 1): one bucket per stage_order 1..n
    bounds = set(re.findall(r"Resample\(1, (\d+), 1\)", TEXT))
    assert bounds == {str(len(FUNNEL_STAGES) + 1)}
    assert f"indexOf({stages}, 'scan')" in TEXT and f"indexOf({stages}, p.step)" in TEXT


def test_professional_buyers_are_the_registry_types() -> None:
    types = "(" + ", ".join(f"'{t}'" for t in PROFESSIONAL_BUYER_TYPES) + ")"
    assert f"g.buyer_type IN {types}" in TEXT


def test_momentum_baselines_trail_twelve_windows_of_their_size() -> None:
    # 5-minute views trail 1 hour, hourly views 12 hours (ARCHITECTURE.md)
    trailing = re.findall(r"RANGE BETWEEN (\d+) PRECEDING AND 1 PRECEDING", TEXT)
    steps = re.findall(r"if\(next_w0 = 0, fair_last \+ (\d+), next_w0\), (\d+)\)", TEXT)
    assert len(steps) == 4 and all(a == b for a, b in steps)
    assert trailing == [str(12 * int(size)) for size, _ in steps for _ in range(2)]
    assert sorted(int(size) for size, _ in steps) == [300, 300, 3600, 3600]


def test_every_registry_view_is_created_once() -> None:
    created = re.findall(r"CREATE VIEW IF NOT EXISTS \{database\}\.(\w+) AS", TEXT)
    assert created == [v.name for v in INTELLIGENCE_VIEWS]

"""The lead score: a pure model, bounded, monotonic, decaying, and merge-safe."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from schemas.events import EVENT_ADAPTER
from streams.intelligence.scores import (
    DEFAULT_MODEL,
    RATINGS,
    STEPS,
    LeadSignals,
    PairEvent,
    ScoreModel,
    recency_part,
    score,
    tier_of,
)
from tests.factories import events as ev
from tests.factories.signals import random_signals

NOW = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)
M = DEFAULT_MODEL


SAMPLES = [random_signals(random.Random(seed), NOW) for seed in range(300)]


def value(signals: LeadSignals, now: datetime = NOW) -> float:
    return score(signals, now).value


# --- the model -------------------------------------------------------------------------------

def test_the_default_model_weights_add_up_to_100() -> None:
    fields = [f.name for f in dataclasses.fields(ScoreModel) if f.name.endswith("_weight")]
    assert sum(getattr(M, name) for name in fields) == pytest.approx(100.0)


@pytest.mark.parametrize("change", [
    {"scan_weight": 11.0},                       # weights no longer add up to 100
    {"hot_cutoff": 20.0},                        # hot below warm
    {"step_ladder": (0.6, 0.4, 0.85, 1.0)},      # a ladder that falls
    {"half_life_hours": 0.0},
])
def test_an_inconsistent_model_is_refused(change: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        dataclasses.replace(M, **change)


# --- bounds and tiers ------------------------------------------------------------------------

def test_scores_stay_within_0_and_100() -> None:
    values = [value(s) for s in SAMPLES]
    assert all(0.0 <= v <= 100.0 for v in values)
    assert max(values) > M.hot_cutoff and min(values) < M.warm_cutoff  # the samples span tiers


def test_every_signal_at_its_maximum_scores_100_and_a_stale_bare_pair_near_0() -> None:
    full = LeadSignals(last_activity=NOW, scans=50,
                       scan_days=frozenset(date(2026, 3, 23 + d) for d in range(4)),
                       ratings=frozenset({"hot"}), has_inquiry=True, inquiry_quantity=10**6,
                       inquiry_budget_cny=10.0**9, inquiry_lead_time_days=0,
                       furthest_step="purchase_order")
    assert value(full) == pytest.approx(100.0)
    stale = LeadSignals(last_activity=NOW - timedelta(days=60))
    assert value(stale) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize(("v", "tier"), [
    (M.hot_cutoff, "hot"), (M.hot_cutoff - 1e-9, "warm"), (100.0, "hot"),
    (M.warm_cutoff, "warm"), (M.warm_cutoff - 1e-9, "cold"), (0.0, "cold"),
])
def test_tiers_start_at_their_cut_offs(v: float, tier: str) -> None:
    assert tier_of(v) == tier


def test_the_tier_of_a_score_is_the_tier_of_its_value() -> None:
    for s in SAMPLES:
        result = score(s, NOW)
        assert result.tier == tier_of(result.value)


def test_documented_examples_land_in_their_tiers() -> None:
    fresh_scan = LeadSignals(last_activity=NOW, scans=1, scan_days=frozenset({NOW.date()}))
    assert score(fresh_scan, NOW).tier == "cold"
    rated_hot = dataclasses.replace(fresh_scan, scans=2, ratings=frozenset({"hot"}))
    assert score(rated_hot, NOW).tier == "warm"
    with_quote = dataclasses.replace(rated_hot, furthest_step="quote_request")
    assert score(with_quote, NOW).tier == "warm"
    with_intent = dataclasses.replace(rated_hot, furthest_step="cooperation_intent")
    assert score(with_intent, NOW).tier == "hot"
    quote_and_inquiry = dataclasses.replace(with_quote, has_inquiry=True)
    assert score(quote_and_inquiry, NOW).tier == "hot"


# --- monotonic in each signal ----------------------------------------------------------------

def _stronger(s: LeadSignals, rng: random.Random) -> list[LeadSignals]:
    """Each signal of ``s`` made stronger, one at a time."""
    new_day = max(s.scan_days, default=date(2026, 3, 24)) + timedelta(days=1)
    stronger_step = STEPS[min(STEPS.index(s.furthest_step) + 1, len(STEPS) - 1)
                          if s.furthest_step else 0]
    r = dataclasses.replace
    return [
        r(s, scans=s.scans + rng.randrange(1, 4)),
        r(s, scan_days=s.scan_days | {new_day}),
        r(s, ratings=s.ratings | {rng.choice(RATINGS)}),
        r(s, has_inquiry=True),
        r(s, has_inquiry=True, inquiry_quantity=(s.inquiry_quantity or 0) + 100),
        r(s, has_inquiry=True, inquiry_budget_cny=(s.inquiry_budget_cny or 0.0) + 5000.0),
        r(s, has_inquiry=True, inquiry_lead_time_days=max(0, (s.inquiry_lead_time_days or 90)
                                                          - rng.randrange(1, 30))),
        r(s, furthest_step=stronger_step),
        r(s, last_activity=s.last_activity + timedelta(hours=rng.uniform(0.1, 30))),
    ]


def test_a_stronger_signal_never_lowers_the_score() -> None:
    rng = random.Random(9)
    for s in SAMPLES:
        base = value(s)
        for stronger in _stronger(s, rng):
            assert value(stronger) >= base - 1e-9, stronger


def test_each_signal_raises_the_score_of_a_bare_pair() -> None:
    bare = LeadSignals(last_activity=NOW - timedelta(days=1), scans=1,
                       scan_days=frozenset({date(2026, 3, 26)}))
    for stronger in _stronger(bare, random.Random(1)):
        if stronger.ratings == {"cold"}:  # cold is as strong as no rating, by design
            continue
        assert value(stronger) > value(bare), stronger


def test_the_procurement_ladder_rises_step_by_step() -> None:
    bare = LeadSignals(last_activity=NOW)
    values = [value(bare)] + [value(dataclasses.replace(bare, furthest_step=s)) for s in STEPS]
    assert values == sorted(values) and len(set(values)) == len(values)


# --- recency ---------------------------------------------------------------------------------

def test_the_recency_part_halves_at_each_half_life() -> None:
    hl = timedelta(hours=M.half_life_hours)
    assert recency_part(NOW, NOW) == 1.0
    assert recency_part(NOW - hl, NOW) == pytest.approx(0.5)
    assert recency_part(NOW - 3 * hl, NOW) == pytest.approx(0.125)
    assert recency_part(NOW + hl, NOW) == 1.0  # activity "after now" (clock skew) is now


def test_the_score_loses_half_its_recency_weight_over_one_half_life() -> None:
    s = SAMPLES[7]
    hl = timedelta(hours=M.half_life_hours)
    at_activity = value(s, s.last_activity)
    after_one = value(s, s.last_activity + hl)
    after_two = value(s, s.last_activity + 2 * hl)
    assert at_activity - after_one == pytest.approx(M.recency_weight / 2)
    assert after_one - after_two == pytest.approx(M.recency_weight / 4)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError):
        LeadSignals(last_activity=NOW.replace(tzinfo=None))
    with pytest.raises(ValueError):
        score(SAMPLES[0], NOW.replace(tzinfo=None))


# --- merging buyers --------------------------------------------------------------------------

def test_combine_is_commutative_and_associative() -> None:
    rng = random.Random(3)
    for _ in range(300):
        a, b, c = (rng.choice(SAMPLES) for _ in range(3))
        assert a.combine(b) == b.combine(a)
        assert a.combine(b).combine(c) == a.combine(b.combine(c))


def test_combine_adds_counts_unites_days_and_keeps_the_strongest_figures() -> None:
    d1, d2 = date(2026, 3, 25), date(2026, 3, 26)
    a = LeadSignals(last_activity=NOW - timedelta(hours=5), scans=2, scan_days=frozenset({d1}),
                    ratings=frozenset({"warm"}), has_inquiry=True, inquiry_quantity=300,
                    inquiry_lead_time_days=45, furthest_step="quote_request")
    b = LeadSignals(last_activity=NOW, scans=3, scan_days=frozenset({d1, d2}),
                    ratings=frozenset({"cold"}), inquiry_budget_cny=None,
                    furthest_step="sample_request")
    c = LeadSignals(last_activity=NOW - timedelta(days=1), has_inquiry=True,
                    inquiry_quantity=100, inquiry_budget_cny=8000.0, inquiry_lead_time_days=30)
    merged = a.combine(b).combine(c)
    assert merged == LeadSignals(
        last_activity=NOW, scans=5, scan_days=frozenset({d1, d2}),
        ratings=frozenset({"warm", "cold"}), has_inquiry=True, inquiry_quantity=300,
        inquiry_budget_cny=8000.0, inquiry_lead_time_days=30, furthest_step="quote_request")


def _event(doc: dict[str, Any]) -> PairEvent:
    event = EVENT_ADAPTER.validate_python(doc)
    assert isinstance(event, PairEvent)
    return event


def _journey(rng: random.Random, buyer: str) -> list[PairEvent]:
    """A random mix of one buyer's scans, inquiries and steps with one exhibitor."""
    events: list[PairEvent] = []
    for _ in range(rng.randrange(1, 12)):
        at = (NOW - timedelta(minutes=rng.randrange(0, 5 * 24 * 60))).isoformat()
        kind = rng.randrange(3)
        if kind == 0:
            doc = ev.scan(badge_id=buyer, rating=rng.choice([None, *RATINGS]))
        elif kind == 1:
            doc = ev.inquiry(quantity=rng.choice([None, rng.randrange(1, 9000)]),
                             budget=rng.choice([None, f"{rng.randrange(0, 300_000)}.50"]),
                             lead_time_days=rng.choice([None, rng.randrange(0, 120)]))
        else:
            doc = ev.procurement(buyer_ref=buyer, step=rng.choice(STEPS))
        doc["occurred_at"] = at
        doc["received_at"] = at
        events.append(_event(doc))
    return events


def _fold(events: list[PairEvent]) -> LeadSignals:
    signals = [LeadSignals.from_event(e) for e in events]
    out = signals[0]
    for s in signals[1:]:
        out = out.combine(s)
    return out


def test_a_merged_buyer_scores_as_if_all_events_were_one_buyers() -> None:
    rng = random.Random(11)
    for _ in range(100):
        a_events, b_events = _journey(rng, "B-000001"), _journey(rng, "B-000002")
        everything = a_events + b_events
        rng.shuffle(everything)
        merged = _fold(a_events).combine(_fold(b_events))
        assert merged == _fold(everything)
        assert score(merged, NOW) == score(_fold(everything), NOW)


def test_an_event_carries_its_signals() -> None:
    late_evening_utc = "2026-03-25T17:30:00+00:00"  # 01:30 on 26 March in Shanghai
    scan = _event(ev.scan(rating="warm") | {
        "occurred_at": late_evening_utc, "received_at": late_evening_utc})
    s = LeadSignals.from_event(scan)
    assert (s.scans, s.scan_days, s.ratings) == (1, {date(2026, 3, 26)}, {"warm"})
    step = LeadSignals.from_event(_event(
        ev.procurement(step="cooperation_intent")))
    assert step.furthest_step == "cooperation_intent" and step.scans == 0


def test_a_foreign_budget_counts_only_once_converted() -> None:
    usd = _event(ev.inquiry(budget="1000.00", currency="USD"))
    assert LeadSignals.from_event(usd).inquiry_budget_cny is None
    converted = LeadSignals.from_event(usd, to_cny=lambda amount, cur: amount * Decimal("7.2"))
    assert converted.inquiry_budget_cny == 7200.0
    assert converted.has_inquiry and converted.inquiry_quantity == 500

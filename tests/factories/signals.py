"""Seeded random lead signals for the lead-score tests (unit and SQL)."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta

from streams.intelligence.scores import RATINGS, STEPS, LeadSignals


def random_signals(rng: random.Random, now: datetime,
                   tick: timedelta = timedelta(seconds=1)) -> LeadSignals:
    """Signals of one pair; ``last_activity`` is up to an hour after ``now`` (a clock ahead)
    to six days before it, in steps of ``tick``."""
    days = {date(2026, 3, 24) + timedelta(days=rng.randrange(5)) for _ in range(rng.randrange(5))}
    inquiry = rng.random() < 0.5
    hour, six_days = timedelta(hours=1) // tick, timedelta(days=6) // tick
    return LeadSignals(
        last_activity=now - tick * rng.randrange(-hour, six_days),
        scans=rng.randrange(0, 9),
        scan_days=frozenset(days),
        ratings=frozenset(r for r in RATINGS if rng.random() < 0.3),
        has_inquiry=inquiry,
        inquiry_quantity=rng.choice([None, rng.randrange(1, 20_000)]) if inquiry else None,
        inquiry_budget_cny=(rng.choice([None, round(rng.uniform(0, 400_000), 2)])
                            if inquiry else None),
        inquiry_lead_time_days=rng.choice([None, rng.randrange(0, 200)]) if inquiry else None,
        furthest_step=rng.choice([None, *STEPS]),
    )

"""When a surge start becomes an alert: after its grace period, once, late ones flagged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson

from streams.surges import GRACE, WINDOW, Candidate, SurgeDecider

FAIR = "CIFW-2026-AW"
START = datetime(2026, 3, 26, 6, 30, tzinfo=UTC)
NOW = datetime(2026, 11, 28, tzinfo=UTC)


def candidate(watermark: datetime, cluster: str = "keqiao", start: datetime = START
              ) -> Candidate:
    return Candidate(FAIR, cluster, start, 240, 40.5, 31.2, Decimal("125000.50"), watermark)


def test_a_window_waits_out_its_grace_period() -> None:
    decider = SurgeDecider()
    due = START + WINDOW + GRACE
    assert decider.decide([candidate(due - timedelta(seconds=1))], NOW) == []
    alerts = decider.decide([candidate(due)], NOW)
    assert len(alerts) == 1
    row = alerts[0]
    assert (row["cluster_id"], row["surge_start"], row["window_end"], row["late"]) == (
        "keqiao", "2026-03-26 06:30:00", "2026-03-26 06:35:00", 0)
    evidence = orjson.loads(str(row["evidence"]))
    assert evidence["events"] == 240 and evidence["expected"] == 40.5
    assert evidence["value_cny"] == "125000.50"


def test_one_alert_per_surge() -> None:
    decider = SurgeDecider()
    later = START + timedelta(hours=3)
    assert len(decider.decide([candidate(later)], NOW)) == 1
    assert decider.decide([candidate(later + timedelta(hours=1))], NOW) == []
    # another cluster, or a new surge of the same cluster later, is another alert
    other = [candidate(later, "humen"), candidate(later, start=START + timedelta(hours=1))]
    assert len(decider.decide(other, NOW)) == 2


def test_a_surge_that_late_events_reveal_is_flagged_late() -> None:
    decider = SurgeDecider()
    closed = START + WINDOW + GRACE + timedelta(hours=2)
    decider.decide([candidate(closed, "humen")], NOW)  # a check that saw the fair this far
    row = decider.decide([candidate(closed)], NOW)[0]  # the window was closed already
    assert row["late"] == 1


def test_flush_judges_windows_still_in_grace() -> None:
    decider = SurgeDecider()
    assert decider.decide([candidate(START + WINDOW)], NOW) == []
    assert len(decider.decide([candidate(START + WINDOW)], NOW, flush=True)) == 1


def test_sent_surges_survive_a_restart() -> None:
    """The watcher seeds ``sent`` from its topic at start: nothing is sent twice."""
    first = SurgeDecider()
    sent = first.decide([candidate(START + timedelta(hours=1))], NOW)
    again = SurgeDecider(sent={(FAIR, "keqiao", "2026-03-26T06:30:00Z")})
    assert sent and again.decide([candidate(START + timedelta(hours=1))], NOW) == []

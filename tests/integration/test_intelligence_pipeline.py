"""Lead intelligence in the running pipeline (real broker, two workers): matches and surge
alerts of a run whose workers are SIGKILLed mid-stream equal those of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import threading
import time
from datetime import UTC, datetime

import orjson
import pytest

from core.settings import Settings
from core.snapshots import threads_beside_the_stream
from producers.simulator import simulate_fair
from producers.simulator.publish import publish
from producers.simulator.surge import parse_surge
from schemas.events import EventType
from streams.matchmaking import Matchmaker
from tests.conftest import running_pipeline
from tests.factories.topics import topic_log
from tests.integration.test_pipeline import settle, stored

pytestmark = pytest.mark.integration

MATCH_COLUMNS = ("inquiry_event_id", "rank", "fair_id", "matched_at", "exhibitor_id",
                 "cluster_id", "score", "explanation", "profile_event_id")



def normal(row: dict) -> tuple:
    """A match row comparable whichever side it came from (stored, or engine JSON)."""
    at = row["matched_at"]
    at = at if isinstance(at, datetime) else datetime.fromisoformat(at)
    return (str(row["inquiry_event_id"]), int(row["rank"]), row["fair_id"],
            at.replace(tzinfo=at.tzinfo or UTC).astimezone(UTC), row["exhibitor_id"],
            row["cluster_id"], round(float(row["score"]), 9), orjson.loads(row["explanation"]),
            row["profile_event_id"])


def reference_matches(settings: Settings) -> set[tuple]:
    """The matches an uninterrupted run makes: the same engine over the request log, once.

    A re-read request block (a worker killed before its commit) repeats requests; the
    engine answers a repeated inquiry with its first result, so the log read once, in
    order, is the uninterrupted run."""
    out: set[tuple] = set()
    for blocks in topic_log(settings, settings.topics.match_requests).values():
        matchmaker, state = Matchmaker(), {}
        for block in blocks:
            result = matchmaker.apply_block(block, state.get, state.items)
            state.update(result.writes)
            assert not result.failed
            for row in result.rows:
                out.add(_frozen(normal(orjson.loads(row))))
    return out


def _frozen(row: tuple) -> tuple:
    return tuple(orjson.dumps(v, option=orjson.OPT_SORT_KEYS) if isinstance(v, dict) else v
                 for v in row)


def test_killed_workers_leave_the_matches_and_alerts_of_an_uninterrupted_run(
    pipeline_settings: Settings,
) -> None:
    surge = parse_surge("keqiao@11:00")
    sim = simulate_fair(12_000, seed=9, surge=surge)
    with running_pipeline(pipeline_settings, workers=2) as pipe:
        published: list[object] = []

        # Suppliers pre-register (as the demo publishes them): replayed at 4,000/s, the
        # day's inquiries could otherwise overtake the profiles on their own raw topic.
        profiles = [m for m in sim.messages if m.event_type == EventType.SUPPLIER_PROFILE]
        day = [m for m in sim.messages if m.event_type != EventType.SUPPLIER_PROFILE]
        publish(profiles, pipe.settings)
        settle(pipe, 120)

        def publish_day() -> None:
            try:
                published.append(publish(day, pipe.settings, rate=4000))
            except Exception as exc:  # surfaced below, not lost in the thread
                published.append(exc)

        publisher = threading.Thread(target=publish_day)
        publisher.start()
        query, db = stored(pipe)
        for victim_index, after_rows in ((0, 1500), (1, 5000)):
            deadline = time.monotonic() + 120
            while query(f"SELECT count() FROM {db}.scans").rows[0][0] < after_rows:
                assert time.monotonic() < deadline, "no rows before the kill"
                time.sleep(0.2)
            victim = pipe.processes[victim_index]
            assert victim is not None and victim.poll() is None
            os.kill(victim.pid, signal.SIGKILL)
        publisher.join()
        assert not isinstance(published[0], Exception), published[0]
        settle(pipe, 300)
        pipe.check_surges()  # the day is over: judge its last windows too
        settle(pipe, 60)
        pipe.refresh_views()
        assert pipe.restarts >= 2

        got = {_frozen(normal(dict(zip(MATCH_COLUMNS, row, strict=True)))) for row in query(
            f"SELECT {', '.join(MATCH_COLUMNS)} FROM {db}.matches FINAL").rows}
        expected = reference_matches(pipe.settings)
        inquiries = sim.ground_truth["expected_by_type"]["online_inquiry"]
        assert len({row[0] for row in expected}) >= inquiries / 2, "most inquiries matched"
        assert got == expected
        assert query(f"SELECT count() FROM {db}.matches").rows[0][0] >= len(expected)

        # Alerts: exactly the surge starts of the final data, each once.
        alerts = query(f"SELECT cluster_id, surge_start FROM {db}.surge_alerts FINAL"
                       f" ORDER BY surge_start").rows
        starts = query(f"SELECT cluster_id, window_start FROM {db}.momentum_cluster_5m"
                       f" WHERE surge_start ORDER BY window_start").rows
        assert [(c, str(t)) for c, t in alerts] == [(c, str(t)) for c, t in starts]
        assert surge.cluster_id in {c for c, _ in alerts}
        on_topic = [orjson.loads(v) for vs in topic_log(
            pipe.settings, pipe.settings.topics.surge_alerts).values() for v in vs]
        assert len(on_topic) == len(alerts), "one alert event per surge"


def test_the_owner_keeps_the_views_current_without_being_asked(
    pipeline_settings: Settings, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No refresh_views() here: the store owner's refresher must notice the new rows and
    # refresh the snapshots itself within seconds (core/snapshots.py: 5 s pause at most
    # at this size), on every CPU but one (the stream runs beside it).
    sim = simulate_fair(3000, seed=4)
    with running_pipeline(pipeline_settings, workers=1) as pipe:
        assert pipe.store is not None
        real_refresh = pipe.store.refresh_snapshots
        threads_asked: list[int | None] = []

        def refresh_snapshots(max_threads: int | None = None) -> dict[str, float]:
            threads_asked.append(max_threads)
            return real_refresh(max_threads=max_threads)

        monkeypatch.setattr(pipe.store, "refresh_snapshots", refresh_snapshots)
        publish(sim.messages, pipe.settings)
        settle(pipe, 120)
        query, db = stored(pipe)
        views = ("lead_scores_exhibitor", "funnel_by_cluster", "momentum_cluster_5m",
                 "match_outcomes")

        def fingerprint(name: str) -> list:
            return query(f"SELECT count(), sum(cityHash64(*)) FROM {db}.{name}").rows

        deadline = time.monotonic() + 60
        while any(fingerprint(v) != fingerprint(f"{v}_live") for v in views):
            assert time.monotonic() < deadline, "snapshots still differ from the live views"
            time.sleep(0.5)
        assert pipe.snapshots is not None and pipe.snapshots.refreshes >= 1
        assert all(fingerprint(v)[0][0] > 0 for v in views)
        assert threads_asked and set(threads_asked) == {threads_beside_the_stream()}

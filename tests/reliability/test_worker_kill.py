"""A stream worker SIGKILLed while kcat streams a simulated fair day: nothing is lost and
nothing is counted twice (issue 7: "a worker SIGKILL [was] handled exactly")."""

from __future__ import annotations

import os
import signal
import threading
import time

import orjson
import pytest

from core import queries as q
from leadloom.pipeline import Pipeline
from producers.simulator import simulate_fair
from tests.reliability import kcat
from tests.reliability.conftest import LONG, Figures
from tests.reliability.ledger import audit, fail_unless_exact, settle
from tests.reliability.traffic import Message

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

EVENTS, KILLS = (40_000, 4) if LONG else (8_000, 1)
RATE = 2_500  # messages per second fed to kcat: the stream is still arriving at the kill


def day_as_messages(events: int, seed: int) -> tuple[list[Message], dict]:
    """A simulated day (with resends and malformed input) as kcat messages, with its truth."""
    sim = simulate_fair(events, seed=seed)
    reasons = {entry["position"]: entry["reason"] for entry in sim.ground_truth["malformed"]}
    out = []
    for position, m in enumerate(sim.messages):
        reason = reasons.get(position)
        if reason is None:
            out.append(Message(m.event_type, m.key or b"", m.value, "valid", None,
                               orjson.loads(m.value)))
        else:
            out.append(Message(m.event_type, m.key or b"", m.value, f"simulated {reason}",
                               reason))  # type: ignore[arg-type]
    return out, sim.ground_truth


def feed(stream: kcat.Stream, messages: list[Message], rate: float, errors: list) -> None:
    try:
        start = time.monotonic()
        for i, m in enumerate(messages):
            stream.send(m)
            if i % 100 == 99:
                stream.flush()
                ahead = start + (i + 1) / rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
        stream.close()
    except Exception as exc:  # noqa: BLE001 (surfaced by the test, not lost in the thread)
        errors.append(exc)


def test_a_worker_killed_while_kcat_streams_a_day_loses_and_doubles_nothing(
    pipeline: Pipeline, figures: Figures,
) -> None:
    messages, truth = day_as_messages(EVENTS, seed=23)
    assert truth["duplicates_resent"] > 0 and truth["malformed_sent"] > 0
    assert query_stored(pipeline) == 0
    errors: list[Exception] = []
    stream = kcat.Stream(pipeline.settings)
    producer = threading.Thread(target=feed, args=(stream, messages, RATE, errors))
    producer.start()

    kills: list[tuple[int, float]] = []
    for k in range(KILLS):
        threshold = (k + 1) * truth["expected_valid_events"] // (KILLS + 2)
        deadline = time.monotonic() + 120
        while query_stored(pipeline) < threshold:
            assert time.monotonic() < deadline, f"stored nothing past {threshold} before kill {k}"
            time.sleep(0.1)
        victim = pipeline.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)
        kills.append((victim, time.monotonic()))
        while pipeline.restarts <= k:  # the supervisor restarts it before the next kill
            time.sleep(0.1)
    producer.join()
    assert not errors, errors
    idle, _, why = settle(pipeline, 300)
    recovered_s = time.monotonic() - kills[-1][1]

    labels = {m.value: m.kind for m in messages}
    landed = kcat.read_back(pipeline.settings, lambda v: labels.get(v, "unknown"))
    assert len(landed) == len(messages), "kcat delivered every message exactly once"
    found = audit(pipeline, messages, landed)
    figures.record(f"worker SIGKILL x{KILLS} during a kcat-streamed day ({len(messages)} msgs)",
                   lost=found.lost, doubled=found.doubled, seconds=recovered_s, settled=idle,
                   restarts=pipeline.restarts, **found.figures())
    assert pipeline.restarts >= KILLS
    assert all(victim not in pipeline.worker_pids() for victim, _ in kills)
    assert_matches_ground_truth(pipeline, truth)
    fail_unless_exact(idle, why, found, f"{KILLS} worker kill(s)")


def query_stored(pipe: Pipeline) -> int:
    assert pipe.store is not None
    return sum(q.run(q.EVENTS_STORED, pipe.store.query, pipe.settings.clickhouse_database)
               .values())


def assert_matches_ground_truth(pipe: Pipeline, truth: dict) -> None:
    """The simulator's own truth, besides the message-by-message audit."""
    assert pipe.store is not None
    query, db = pipe.store.query, pipe.settings.clickhouse_database
    assert query_stored(pipe) == truth["expected_valid_events"]
    assert q.run(q.DEAD_LETTERS_BY_REASON, query, db) == truth["malformed_by_reason"]
    assert q.run(q.LEADS_BY_CLUSTER, query, db) == truth["expected_by_cluster"]

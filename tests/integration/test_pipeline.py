"""The pipeline on the real broker and the real engine: counts equal the ground truth."""

from __future__ import annotations

import base64
import hashlib
import os
import signal
import threading
import time
from collections import Counter

import pytest

from core import queries as q
from core.kafka import producer
from core.settings import Settings
from leadloom.pipeline import Pipeline
from producers.simulator import simulate_fair
from producers.simulator.publish import publish
from schemas.deadletter import Reason
from streams.rows import DEAD_LETTER_RAW_PREFIX
from tests.conftest import running_pipeline
from tests.factories import events as f

pytestmark = pytest.mark.integration


@pytest.fixture
def pipeline(pipeline_settings: Settings):
    with running_pipeline(pipeline_settings, workers=1) as pipe:
        yield pipe


def settle(pipe: Pipeline, timeout_s: float) -> None:
    """Wait until everything published is stored; on timeout, say where it is stuck."""
    if pipe.wait_idle(timeout_s):
        return
    raw, derived = pipe.lag()
    logs = "".join(p.read_text(errors="replace")[-1500:] for p in pipe.log_dir.glob("*.log"))
    pytest.fail(f"not idle after {timeout_s}s: raw lag {raw}, sink lag {derived}, "
                f"workers {pipe.worker_pids()}, restarts {pipe.restarts}\n{logs}")


def stored(pipe: Pipeline):
    assert pipe.store is not None
    return pipe.store.query, pipe.settings.clickhouse_database


def assert_matches_truth(pipe: Pipeline, truth: dict) -> None:
    query, db = stored(pipe)
    stored_events = sum(q.run(q.EVENTS_STORED, query, db).values())
    if stored_events != truth["expected_valid_events"]:
        present = {
            r[0]
            for t in ("scans", "registrations", "inquiries", "procurement_steps")
            for r in query(f"SELECT DISTINCT event_id FROM {db}.{t}").rows
        }
        missing = sorted(set(truth["buyer_of_record"]) - present)[:10]
        pytest.fail(f"stored {stored_events} != {truth['expected_valid_events']}; "
                    f"missing e.g. {missing}; worker restarts {pipe.restarts}")
    assert q.run(q.DEAD_LETTERS_BY_REASON, query, db) == truth["malformed_by_reason"]
    assert q.run(q.LEADS_BY_CLUSTER, query, db) == truth["expected_by_cluster"]
    streamed = q.run(q.STREAM_LEADS_BY_CLUSTER, query, db)
    for cluster, expected in truth["expected_by_cluster"].items():
        got = streamed[cluster]
        assert (got["scans"], got["inquiries"], got["procurement_steps"]) == (
            expected["scans"], expected["inquiries"], expected["procurement_steps"]
        ), cluster
    per_minute = {
        (c, m.strftime("%Y-%m-%dT%H:%M")): [s, i, p]
        for c, m, s, i, p in query(
            f"SELECT cluster_id, minute, scans, inquiries, procurement_steps "
            f"FROM {db}.leads_per_cluster_minute"
        ).rows
    }
    expected_minutes = {
        (c, m): counts
        for c, minutes in truth["expected_by_cluster_minute"].items()
        for m, counts in minutes.items()
        if any(counts)
    }
    assert per_minute == expected_minutes


def test_a_simulated_day_is_stored_exactly(pipeline: Pipeline) -> None:
    sim = simulate_fair(4000, seed=11)
    truth = sim.ground_truth
    assert truth["duplicates_resent"] > 0 and truth["malformed_sent"] > 0
    publish(sim.messages, pipeline.settings)
    settle(pipeline, 180)
    assert_matches_truth(pipeline, truth)
    query, db = stored(pipeline)
    # resends were forwarded but collapse to one row each
    assert query(f"SELECT count() FROM {db}.scans FINAL").rows[0][0] == \
        truth["expected_by_type"]["booth_scan"]


def test_every_kind_of_malformed_input_becomes_a_dead_letter_with_its_reason(
    pipeline: Pipeline,
) -> None:
    topics = pipeline.settings.topics
    good = f.scan()
    missing = f.scan()
    del missing["payload"]["booth_id"]
    cases = {
        Reason.BAD_JSON: ("booth_scan", b'{"event_id": "x1", '),
        Reason.NOT_AN_OBJECT: ("booth_scan", b"[1, 2]"),
        Reason.OVERSIZED: ("booth_scan", f.encode(f.scan(note="n" * 400)).replace(
            b"n" * 400, b"n" * 400 * 200)),
        Reason.MISSING_FIELD: ("booth_scan", f.encode(missing)),
        Reason.INVALID_FIELD: ("online_inquiry", f.encode(f.inquiry(quantity="lots"))),
        Reason.WRONG_TOPIC: ("booth_scan", f.encode(f.inquiry())),
        Reason.UNKNOWN_CLUSTER: ("online_inquiry", f.encode(f.inquiry(cluster_id="atlantis"))),
        Reason.UNKNOWN_BOOTH: ("booth_scan", f.encode(f.scan(booth_id="NOPE-1"))),
        Reason.UNKNOWN_EXHIBITOR: ("procurement_step",
                                   f.encode(f.procurement(exhibitor_id="EX-NOPE"))),
    }
    prod = producer(pipeline.settings)
    sent = {}
    for reason, (event_type, raw) in cases.items():
        meta = prod.send(topics.raw(event_type), value=raw).get(timeout=10)
        sent[reason.value] = (meta.topic, meta.partition, meta.offset, raw)
    prod.send(topics.raw("booth_scan"), value=f.encode(good)).get(timeout=10)
    prod.close()
    settle(pipeline, 120)
    query, db = stored(pipeline)
    rows = query(f"SELECT reason, source_topic, source_partition, source_offset, raw_base64, "
                 f"detail, raw_size, raw_sha256 FROM {db}.dead_letters FINAL").rows
    got = {r[0]: (r[1], r[2], r[3], base64.b64decode(r[4])) for r in rows}
    # raw bytes are kept whole up to a bounded prefix; size and hash describe the whole
    assert got == {k: (*v[:3], v[3][:DEAD_LETTER_RAW_PREFIX]) for k, v in sent.items()}
    assert {r[0]: (r[6], r[7]) for r in rows} == {
        k: (len(v[3]), hashlib.sha256(v[3]).hexdigest()) for k, v in sent.items()}
    assert all(r[5] for r in rows), "every dead letter says why"
    assert q.run(q.EVENTS_STORED, query, db)["scans"] == 1


def test_a_resent_event_is_stored_and_counted_once(pipeline: Pipeline) -> None:
    doc = f.scan(badge_id="B-RESEND")
    prod = producer(pipeline.settings)
    for _ in range(5):
        prod.send(pipeline.settings.topics.raw("booth_scan"), key=b"B-RESEND", value=f.encode(doc))
    prod.flush()
    prod.close()
    settle(pipeline, 120)
    query, db = stored(pipeline)
    assert query(f"SELECT uniqExact(event_id), count() FROM {db}.scans FINAL").rows == [[1, 1]]
    streamed = q.run(q.STREAM_LEADS_BY_CLUSTER, query, db)
    assert sum(c["scans"] for c in streamed.values()) == 1


def test_a_worker_killed_mid_stream_loses_and_double_counts_nothing(
    pipeline: Pipeline,
) -> None:
    sim = simulate_fair(12000, seed=5)
    published: list[object] = []

    def publish_day() -> None:
        try:
            published.append(publish(sim.messages, pipeline.settings, rate=4000))
        except Exception as exc:  # surfaced below, not lost in the thread
            published.append(exc)

    publisher = threading.Thread(target=publish_day)
    publisher.start()
    query, db = stored(pipeline)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if sum(q.run(q.EVENTS_STORED, query, db).values()) > 2000:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the pipeline stored nothing before the kill")
    victim = pipeline.worker_pids()[0]
    os.kill(victim, signal.SIGKILL)
    publisher.join()
    assert not isinstance(published[0], Exception), published[0]
    settle(pipeline, 300)
    assert pipeline.restarts >= 1 and victim not in pipeline.worker_pids()
    assert_matches_truth(pipeline, sim.ground_truth)


def test_the_sink_retries_a_failed_insert_without_loss_or_duplicates(
    pipeline: Pipeline,
) -> None:
    assert pipeline.store is not None
    real_insert = pipeline.store.insert_json_rows
    failures = Counter()

    def flaky(table: str, rows: list[bytes]) -> None:
        if failures["n"] < 3:
            failures["n"] += 1
            raise ConnectionError("simulated store outage")
        real_insert(table, rows)

    pipeline.store.insert_json_rows = flaky  # type: ignore[method-assign]
    sim = simulate_fair(1500, seed=9)
    publish(sim.messages, pipeline.settings)
    settle(pipeline, 180)
    assert pipeline.sink is not None and pipeline.sink.stats.insert_retries == 3
    assert_matches_truth(pipeline, sim.ground_truth)

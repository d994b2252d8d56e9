"""Batched raw messages (NDJSON) on the real broker and the real engine: a simulated day
sent 30 events a message, its poison among good lines, then its events again in other
batch shapes on other partitions. Every valid event is stored once, every bad line is one
dead letter with its line, and the counts equal the simulator's truth."""

from __future__ import annotations

import base64
import hashlib
from collections import defaultdict

import pytest
from kafka.partitioner.default import murmur2

from core.kafka import producer
from leadloom.pipeline import Pipeline
from producers.simulator import simulate_fair
from producers.simulator.publish import publish
from producers.simulator.recorder import MALFORMED
from schemas.registry import RAW_PARTITIONS
from tests.conftest import running_pipeline
from tests.integration.test_pipeline import assert_matches_truth, settle, stored

pytestmark = pytest.mark.integration

BATCH = 30


@pytest.fixture
def pipeline(pipeline_settings):
    with running_pipeline(pipeline_settings, workers=1) as pipe:
        yield pipe


def _resend_in_other_shapes(pipe: Pipeline, sim, size: int) -> int:
    """The valid and resent events again, ``size`` a message, each batch on a partition its
    events' keys do not name; returns the messages sent."""
    by_topic: dict[str, list] = defaultdict(list)
    for m in sim.messages:
        if m.kind != MALFORMED:
            by_topic[pipe.settings.topics.raw(m.event_type)].append(m)
    kafka = producer(pipe.settings)
    sent = 0
    try:
        for topic, messages in sorted(by_topic.items()):
            for start in range(0, len(messages), size):
                chunk = messages[start:start + size]
                first = chunk[0].key or b""
                keyed = (murmur2(first) & 0x7FFFFFFF) % RAW_PARTITIONS
                elsewhere = (keyed + 1 + sent % (RAW_PARTITIONS - 1)) % RAW_PARTITIONS
                kafka.send(topic, value=b"\n".join(m.value for m in chunk),
                           partition=elsewhere)
                sent += 1
        kafka.flush()
    finally:
        kafka.close(timeout=10)
    return sent


def test_a_batched_day_with_poison_lines_is_stored_exactly_on_any_partition(
        pipeline: Pipeline) -> None:
    sim = simulate_fair(3000, seed=13)
    truth = sim.ground_truth
    assert truth["malformed_sent"] > 5 and truth["duplicates_resent"] > 0
    report = publish(sim.messages, pipeline.settings, batch=BATCH)
    assert report.sent == len(sim.messages)
    # batched: far fewer messages than events (oversized poison goes alone)
    assert report.kafka_messages < len(sim.messages) / 5
    settle(pipeline, 120)
    assert_matches_truth(pipeline, truth)

    query, db = stored(pipeline)
    letters = query(f"SELECT origin_topic, origin_partition, origin_offset, origin_line,"
                    f" source_line, raw_base64, raw_size, raw_sha256, reason"
                    f" FROM {db}.dead_letters FINAL").rows
    assert len(letters) == truth["malformed_sent"]  # one per bad line
    poison = {hashlib.sha256(m.value).hexdigest() for m in sim.messages if m.kind == MALFORMED}
    inside = [row for row in letters if row[3] > 0]
    assert len(inside) > len(letters) / 2, "most poison should sit inside a batch"
    for _t, _p, _o, origin_line, source_line, raw64, size, sha, _r in letters:
        assert origin_line == source_line  # a first reading is its own origin
        assert sha in poison  # each dead letter keeps its own line's bytes, not the batch's
        if size <= 64 * 1024:
            assert hashlib.sha256(base64.b64decode(raw64)).hexdigest() == sha
    lines = query(f"SELECT countIf(source_line > 0), count() FROM {db}.scans").rows[0]
    assert 0 < lines[0] < lines[1]

    # the same events again, other batch shapes, other partitions: nothing counts twice
    assert _resend_in_other_shapes(pipeline, sim, size=7) > 0
    settle(pipeline, 120)
    assert_matches_truth(pipeline, truth)
    assert query(f"SELECT count() FROM {db}.dead_letters FINAL").rows[0][0] == len(letters)

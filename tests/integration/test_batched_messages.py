"""Batched raw messages (NDJSON) on the real broker and the real engine: a simulated day
sent 30 events a message, its poison among good lines, then its events again in other
batch shapes on other partitions. Every valid event is stored once, every bad line is one
dead letter with its line, and the counts equal the simulator's truth. A batch's dead
letters are retried, and its stored events republished, each line alone."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections import defaultdict
from datetime import UTC, datetime

import orjson
import pytest
from kafka.partitioner.default import murmur2

from core.kafka import producer
from leadloom.commands import republish as rp
from leadloom.commands.deadletters import archive_headers, parse_ref
from leadloom.commands.republish_select import Selection
from leadloom.pipeline import Pipeline
from producers.simulator import simulate_fair
from producers.simulator.publish import publish
from producers.simulator.recorder import MALFORMED
from schemas.deadletter import Reason
from schemas.registry import ORIGIN_HEADER, RAW_PARTITIONS
from streams.rows import SourceRef, dead_letter_row
from streams.validate import Rejected
from tests.conftest import running_pipeline
from tests.factories import events as f
from tests.factories.cli import run_cli
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


def _json(done) -> dict:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_dead_letter_of_a_batch_line_is_retried_alone_under_its_line(
        pipeline: Pipeline) -> None:
    """Line 1 of a batch is refused (unknown booth) and line 3, say, was refused by an earlier
    rule (its dead letter injected at the batch's real coordinates): the retry re-judges
    each line from the archived batch, re-sends line 3 alone as a message of one event with
    its origin line in the header, and records both retries under their lines."""
    live, db = pipeline.settings, pipeline.settings.clickhouse_database
    topic = live.topics.raw("booth_scan")
    docs = [f.scan(badge_id=f"B-LINE-{i}") for i in range(4)]
    docs[1] = f.scan(badge_id="B-LINE-1", booth_id="NOPE-1")
    lines = [f.encode(d) for d in docs]
    kafka = producer(live)
    try:
        where = kafka.send(topic, value=b"\n".join(lines), partition=2).get(timeout=30)
    finally:
        kafka.close(timeout=10)
    earlier = dead_letter_row(Rejected(Reason.INVALID_FIELD, "payload.note: an earlier rule"),
                              SourceRef(topic, 2, where.offset, 3), lines[3],
                              datetime.now(UTC))
    kafka = producer(live)
    try:
        kafka.send(live.topics.dead_letters, orjson.dumps(earlier)).get(timeout=30)
    finally:
        kafka.close(timeout=10)
    settle(pipeline, 60)
    query = pipeline.store.query  # type: ignore[union-attr]
    assert query(f"SELECT count() FROM {db}.scans FINAL").rows[0][0] == 3
    listed = _json(run_cli(live, "deadletters", "list", "--json"))
    refs = {d["ref"]: d for d in listed["dead_letters"]}
    batch_ref = f"{topic}[2]@{where.offset}"
    assert set(refs) == {f"{batch_ref}#1", f"{batch_ref}#3"}
    shown = _json(run_cli(live, "deadletters", "show", f"{batch_ref}#1", "--json"))
    [letter] = shown["dead_letters"]
    assert letter["raw"]["from"] == "raw_archive"  # the line, cut from the archived batch
    assert base64.b64decode(letter["raw"]["base64"]) == lines[1]

    done = _json(run_cli(live, "deadletters", "retry", "--yes", "--json"))
    outcomes = {i["ref"]: i for i in done["items"]}
    assert outcomes[f"{batch_ref}#1"]["outcome"] == "still_invalid"
    assert outcomes[f"{batch_ref}#1"]["reason"].startswith("unknown_booth")
    resent = outcomes[f"{batch_ref}#3"]
    assert resent["outcome"] == "republished"
    settle(pipeline, 60)
    # what the retry sent: line 3 alone, named by its origin line
    at = parse_ref(resent["published_to"])
    [(value, headers)] = query(
        f"SELECT value, headers FROM {db}.raw_archive FINAL WHERE topic = '{at.topic}'"
        f" AND partition = {at.partition} AND offset = {at.offset}").rows
    assert value.encode() == lines[3]
    origin = [v for n, v in archive_headers(headers) if n == ORIGIN_HEADER]
    assert origin == [f"{batch_ref}#3".encode()]
    # stored once; the retries are recorded under their lines and the listing joins them
    assert query(f"SELECT count() FROM {db}.scans FINAL").rows[0][0] == 3
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and query(
            f"SELECT count() FROM {db}.dead_letter_retries FINAL").rows[0][0] < 2:
        time.sleep(0.3)
    retried = query(f"SELECT origin_line, outcome FROM {db}.dead_letter_retries FINAL"
                    " ORDER BY origin_line").rows
    assert [tuple(r) for r in retried] == [(1, "still_invalid"), (3, "republished")]
    after = _json(run_cli(live, "deadletters", "list", "--json"))
    assert {d["ref"]: d["status"] for d in after["dead_letters"]} == {
        f"{batch_ref}#1": "still invalid", f"{batch_ref}#3": "republished"}


def test_replay_republish_sends_a_batchs_stored_lines_alone_and_nothing_counts_twice(
        pipeline: Pipeline) -> None:
    sim = simulate_fair(1500, seed=17)
    truth = sim.ground_truth
    publish(sim.messages, pipeline.settings, batch=BATCH)
    settle(pipeline, 120)
    assert_matches_truth(pipeline, truth)
    query, db = stored(pipeline)

    dry = rp.republish(pipeline.settings, Selection(), dry_run=True)
    assert dry["selected"] == truth["expected_valid_events"]
    assert dry["skipped"]["not_an_event"] + dry["skipped"]["not_stored"] == \
        truth["malformed_sent"]
    assert dry["skipped"]["duplicate"] == truth["duplicates_resent"]
    done = rp.republish(pipeline.settings, Selection(), confirm=lambda _plan: None)
    assert done["sent"] == truth["expected_valid_events"]
    settle(pipeline, 120)
    assert_matches_truth(pipeline, truth)

    # every republished message is one event: a batch's line alone, its origin the line
    resent = query(
        f"SELECT value, base64Decode(tupleElement(arrayFirst(h -> tupleElement(h, 1) ="
        f" '{ORIGIN_HEADER}', headers), 2)) FROM {db}.raw_archive FINAL"
        f" WHERE has(headers.name, '{ORIGIN_HEADER}')").rows
    assert len(resent) == truth["expected_valid_events"]
    originals = {f"{t}[{p}]@{o}": v for t, p, o, v in query(
        f"SELECT topic, partition, offset, value FROM {db}.raw_archive FINAL"
        f" WHERE NOT has(headers.name, '{ORIGIN_HEADER}')").rows}
    lined = 0
    for value, origin in resent:
        assert "\n" not in value
        ref = parse_ref(origin)
        whole = originals[str(SourceRef(ref.topic, ref.partition, ref.offset))]
        assert whole.split("\n")[ref.line] == value
        lined += ref.line > 0
    assert lined > len(resent) / 2

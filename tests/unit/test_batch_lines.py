"""Batched raw messages (NDJSON): splitting, each line validated alone, lineage per line."""

from __future__ import annotations

import base64
import hashlib
import random
from datetime import UTC, datetime

import orjson

from producers.simulator import simulate_fair
from schemas.deadletter import Reason
from schemas.registry import ORIGIN_HEADER
from streams.batch import BatchOutput, RawMessage, process_batch
from streams.lines import event_lines
from streams.rows import SourceRef, origin_of
from streams.validate import Accepted, Rejected, validate
from tests.factories import events as f

TOPICS = {"t.raw.scans": "booth_scan", "t.raw.inquiries": "online_inquiry"}
LIMIT = 65536
NOW = datetime(2026, 3, 26, 3, 0, tzinfo=UTC)


def run(*messages: RawMessage) -> BatchOutput:
    return process_batch(list(messages), TOPICS, LIMIT, 6, NOW)


def rows(out: BatchOutput, table: str = "scans") -> list[dict]:
    return [orjson.loads(r) for r in out.rows_by_table.get(table, [])]


def letters(out: BatchOutput) -> list[dict]:
    return [orjson.loads(r) for r in out.dead_letters]


# -- splitting ------------------------------------------------------------------------------

def test_a_single_object_is_one_event_judged_whole() -> None:
    one = f.encode(f.scan())
    assert event_lines(one, LIMIT) == ((0, one),)
    assert event_lines(one + b"\n", LIMIT) == ((0, one + b"\n"),)  # a trailing newline
    assert event_lines(one + b"\r\n \n", LIMIT) == ((0, one + b"\r\n \n"),)
    assert event_lines(None, LIMIT) == ((0, None),)
    assert event_lines(b"\n\n", LIMIT) == ((0, b"\n\n"),)  # nothing but blanks: judged whole


def test_a_pretty_printed_document_stays_one_event() -> None:
    pretty = orjson.dumps(f.scan(), option=orjson.OPT_INDENT_2)
    assert pretty.count(b"\n") > 5
    assert event_lines(pretty, LIMIT) == ((0, pretty),)
    assert isinstance(validate(pretty, "booth_scan", LIMIT), Accepted)
    # a JSON array is not a batch: one document, not an object (as before batches)
    array = orjson.dumps([f.scan(), f.scan()], option=orjson.OPT_INDENT_2)
    assert event_lines(array, LIMIT) == ((0, array),)
    out = run(RawMessage("t.raw.scans", 0, 0, array))
    assert [d["reason"] for d in letters(out)] == [Reason.NOT_AN_OBJECT]


def test_ndjson_lines_keep_their_index_and_blank_lines_are_skipped() -> None:
    a, b, c = (f.encode(f.scan()) for _ in range(3))
    raw = a + b"\n\n" + b + b"\r\n   \n" + c + b"\n"
    assert event_lines(raw, LIMIT) == [(0, a), (2, b + b"\r"), (4, c)]


def test_garbage_holding_newlines_without_a_json_line_stays_one_message() -> None:
    binary = bytes(range(255, -1, -1)) + b"KIND"  # holds a 0x0a byte
    text = b"hello from a scanner\nsecond line\n"
    for raw in (binary, text):
        assert event_lines(raw, LIMIT) == ((0, raw),)
        [letter] = letters(run(RawMessage("t.raw.scans", 0, 1, raw)))
        assert letter["reason"] == Reason.BAD_JSON
        assert base64.b64decode(letter["raw_base64"]) == raw  # the whole message, as before


def test_an_oversized_batch_is_one_dead_letter_never_split() -> None:
    raw = b"\n".join(f.encode(f.scan()) for _ in range(200))
    assert len(raw) > 4096
    out = process_batch([RawMessage("t.raw.scans", 1, 7, raw)], TOPICS, 4096, 6, NOW)
    [letter] = letters(out)
    assert letter["reason"] == Reason.OVERSIZED and letter["raw_size"] == len(raw)
    assert "source_line" not in letter and not out.rows_by_table
    assert out.extra_events_by_topic == {}


# -- each line alone --------------------------------------------------------------------------

def test_a_bad_line_is_its_own_dead_letter_and_the_good_lines_are_stored() -> None:
    good = [f.scan(badge_id=f"B-{i:06d}") for i in range(4)]
    bad = b'{"event_id": "cut-off", "event_type": "booth_sc'
    wrong = f.inquiry()  # an inquiry on the scans topic
    lines = [f.encode(good[0]), bad, f.encode(good[1]), b"", f.encode(wrong),
             f.encode(good[2]), f.encode(good[3])]
    out = run(RawMessage("t.raw.scans", 4, 99, b"\n".join(lines)))
    stored = rows(out)
    assert [r["event_id"] for r in stored] == [d["event_id"] for d in good]
    assert [r.get("source_line", 0) for r in stored] == [0, 2, 5, 6]
    assert all((r["source_topic"], r["source_partition"], r["source_offset"])
               == ("t.raw.scans", 4, 99) for r in stored)
    dead = letters(out)
    assert [(d["reason"], d["source_line"], d["origin_line"]) for d in dead] == [
        (Reason.BAD_JSON, 1, 1), (Reason.WRONG_TOPIC, 4, 4)]
    # each dead letter keeps its own line's bytes, size and hash, and today's detail
    for d, line in zip(dead, (bad, f.encode(wrong)), strict=True):
        assert base64.b64decode(d["raw_base64"]) == line
        assert d["raw_size"] == len(line)
        assert d["raw_sha256"] == hashlib.sha256(line).hexdigest()
        alone = validate(line, "booth_scan", LIMIT)
        assert isinstance(alone, Rejected) and d["detail"] == alone.detail
    assert out.extra_events_by_topic == {"t.raw.scans": 5}  # 6 events in one message
    assert sum(len(v) for v in out.contributions_by_partition.values()) == 4


def test_a_batch_that_is_not_utf8_as_a_whole_is_judged_line_by_line() -> None:
    good = f.scan()
    raw = b"\xff\xfe garbage\n" + f.encode(good) + b"\n[1, 2]"
    out = run(RawMessage("t.raw.scans", 0, 3, raw))
    assert [r["event_id"] for r in rows(out)] == [good["event_id"]]
    assert [(d["reason"], d.get("source_line", 0)) for d in letters(out)] == [
        (Reason.BAD_JSON, 0), (Reason.NOT_AN_OBJECT, 2)]


def test_a_single_event_message_gives_the_rows_it_gave_before_batches() -> None:
    # no line key at all: the rows a store without migration 018 takes
    ok, bad = f.encode(f.scan()), b"{not json"
    out = run(RawMessage("t.raw.scans", 2, 5, ok), RawMessage("t.raw.scans", 2, 6, bad))
    assert "source_line" not in rows(out)[0]
    [letter] = letters(out)
    assert "source_line" not in letter and "origin_line" not in letter
    assert base64.b64decode(letter["raw_base64"]) == bad


def test_every_simulated_malformed_message_keeps_its_reason_inside_a_batch() -> None:
    """The simulator's poison, each put between valid lines, is judged as when sent alone
    (oversized ones excepted: the limit is the whole message's)."""
    sim = simulate_fair(4000, 3)
    topic_of = {t: f"t.{t}" for t in {m.event_type for m in sim.messages}}
    event_types = {v: k for k, v in topic_of.items()}
    valid = [m for m in sim.messages if m.kind == "valid"]
    bad = [m for m in sim.messages if m.kind == "malformed" and len(m.value) < 8000]
    assert len(bad) > 10
    rng = random.Random(1)
    for m in bad:
        neighbours = [v.value for v in valid if v.event_type == m.event_type][:40]
        at = rng.randrange(len(neighbours) + 1)
        lines = neighbours[:at] + [m.value] + neighbours[at:]
        message = RawMessage(topic_of[m.event_type], 0, 0, b"\n".join(lines))
        alone = validate(m.value, m.event_type, LIMIT)
        out = process_batch([message], event_types, LIMIT, 6, NOW)
        assert isinstance(alone, Rejected), m.value[:80]
        [letter] = letters(out)
        assert (letter["reason"], letter.get("source_line", 0)) == (alone.reason.value, at)
        assert sum(len(r) for r in out.rows_by_table.values()) == len(neighbours)


# -- lineage ----------------------------------------------------------------------------------

def test_a_reference_prints_and_parses_its_line() -> None:
    ref = SourceRef("ns.raw.scans", 3, 120, 7)
    assert str(ref) == "ns.raw.scans[3]@120#7"
    assert str(SourceRef("ns.raw.scans", 3, 120)) == "ns.raw.scans[3]@120"  # as before
    here = SourceRef("ns.raw.scans", 0, 5, 2)
    assert origin_of({ORIGIN_HEADER: str(ref).encode()}, here) == ref
    # a whole message re-sent: each line keeps its own index under the header's coordinates
    assert origin_of({ORIGIN_HEADER: b"ns.raw.scans[3]@120"}, here) == SourceRef(
        "ns.raw.scans", 3, 120, 2)
    # a line beyond the column (UInt32) is a bad header: the event is its own origin
    assert origin_of({ORIGIN_HEADER: b"ns.raw.scans[3]@120#4294967296"}, here) == here


def test_a_retried_line_sent_alone_replaces_its_own_dead_letter() -> None:
    """A dead letter of line 3, re-sent alone with the origin header, fails again under the
    same origin (topic, partition, offset, line 3) and the same hash: the same key."""
    bad = f.encode({**f.scan(), "debug": True})
    batch = b"\n".join([f.encode(f.scan()), f.encode(f.scan()), f.encode(f.scan()), bad])
    [first] = letters(run(RawMessage("t.raw.scans", 1, 40, batch)))
    origin = SourceRef(first["origin_topic"], first["origin_partition"],
                       first["origin_offset"], first["origin_line"])
    assert str(origin) == "t.raw.scans[1]@40#3"
    again = RawMessage("t.raw.scans", 5, 900, bad, {ORIGIN_HEADER: str(origin).encode()})
    [second] = letters(run(again))
    key = ("origin_topic", "origin_partition", "origin_offset", "origin_line", "raw_sha256")
    assert [second[k] for k in key] == [first[k] for k in key]
    assert (second["source_offset"], second.get("source_line", 0)) == (900, 0)

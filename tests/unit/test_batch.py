"""A batch of raw messages becomes rows, dead letters and leads-state updates."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from schemas.reference import booth_roster
from streams.batch import RawMessage, chunk_rows, process_batch
from tests.factories import events as f

TOPICS = {"t.raw.scans": "booth_scan", "t.raw.inquiries": "online_inquiry"}
NOW = datetime(2026, 3, 26, 3, 0, tzinfo=UTC)


def msg(doc: dict | bytes, partition: int = 0, offset: int = 0,
        topic: str = "t.raw.scans") -> RawMessage:
    value = doc if isinstance(doc, bytes) else f.encode(doc)
    return RawMessage(topic, partition, offset, value)


def test_rows_dead_letters_and_snapshots_are_grouped_per_batch() -> None:
    a, b = f.scan(badge_id="B1"), f.scan(badge_id="B2")
    batch = [msg(a, 0, 1), msg(a, 0, 2), msg(b, 1, 3), msg(b"{oops", 1, 4),
             msg(f.inquiry(), 2, 5, "t.raw.inquiries")]
    store: dict[str, dict] = {}
    out = process_batch(batch, TOPICS, store.get, 65536, NOW)
    assert len(out.rows_by_table["scans"]) == 3  # the resend is forwarded, stored once
    assert len(out.rows_by_table["inquiries"]) == 1
    assert [orjson.loads(d)["reason"] for d in out.dead_letters] == ["bad_json"]
    assert orjson.loads(out.dead_letters[0])["source_offset"] == 4
    snapshots = [orjson.loads(s) for s in out.snapshots]
    assert sum(s["scans"] for s in snapshots) == 2
    assert sum(s["inquiries"] for s in snapshots) == 1
    # each changed entry is written with the partition of a message that touched it
    for key, update in out.state_updates.items():
        assert batch[update.owner_index].partition == int(key.split("|")[1])


def test_a_batch_replayed_after_a_crash_changes_no_count() -> None:
    booth = booth_roster()[3]
    docs = [f.scan(badge_id=f"B{n % 3}", booth_id=booth.id) for n in range(10)]
    batch = [msg(d, 0, n) for n, d in enumerate(docs)]
    store: dict[str, dict] = {}
    first = process_batch(batch, TOPICS, store.get, 65536, NOW)
    for key, update in first.state_updates.items():
        store[key] = update.state
    replay = process_batch(batch, TOPICS, store.get, 65536, NOW)
    assert replay.state_updates == {}
    assert [orjson.loads(s)["scans"] for s in replay.snapshots] == [10]
    assert [orjson.loads(s)["distinct_badges"] for s in replay.snapshots] == [3]


def test_chunks_respect_the_size_limit_and_keep_every_row() -> None:
    rows = [b"x" * 100 for _ in range(50)]
    blocks = chunk_rows(rows, max_bytes=1000)
    assert all(len(b) <= 1000 for b in blocks)
    assert sum(len(b.split(b"\n")) for b in blocks) == 50
    assert chunk_rows([]) == []

"""A batch of raw messages becomes rows, dead letters, lead contributions and identity
records; a batch of contributions becomes leads-state updates and snapshots."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import orjson
import pytest

import streams.batch as batch_module
from schemas.reference import booth_roster
from streams.batch import BatchOutput, RawMessage, aggregate_leads, chunk_rows, process_batch
from streams.rows import DEAD_LETTER_RAW_PREFIX
from tests.factories import events as f

TOPICS = {"t.raw.scans": "booth_scan", "t.raw.inquiries": "online_inquiry"}
CONTRIBUTIONS = "t.leads.contributions"
PARTITIONS = 6
NOW = datetime(2026, 3, 26, 3, 0, tzinfo=UTC)


def msg(doc: dict | bytes, partition: int = 0, offset: int = 0,
        topic: str = "t.raw.scans") -> RawMessage:
    value = doc if isinstance(doc, bytes) else f.encode(doc)
    return RawMessage(topic, partition, offset, value)


def validate_stage(batch: list[RawMessage]) -> BatchOutput:
    return process_batch(batch, TOPICS, 65536, PARTITIONS, NOW)


def as_contribution_messages(out: BatchOutput, first_offset: int = 0) -> list[RawMessage]:
    """What the aggregating agent reads: one message per destination partition."""
    return [RawMessage(CONTRIBUTIONS, p, first_offset + n, b"\n".join(lines))
            for n, (p, lines) in enumerate(sorted(out.contributions_by_partition.items()))]


def aggregate(out: BatchOutput, store: dict[str, dict]) -> list[dict]:
    leads = aggregate_leads(as_contribution_messages(out), store.get, NOW)
    for key, update in leads.state_updates.items():
        store[key] = update.state
    return [orjson.loads(s) for s in leads.snapshots]


def test_rows_dead_letters_and_contributions_are_grouped_per_batch() -> None:
    a, b = f.scan(badge_id="B1"), f.scan(badge_id="B2")
    batch = [msg(a, 0, 1), msg(a, 0, 2), msg(b, 1, 3), msg(b"{oops", 1, 4),
             msg(f.inquiry(), 2, 5, "t.raw.inquiries")]
    out = validate_stage(batch)
    assert len(out.rows_by_table["scans"]) == 3  # the resend is forwarded, stored once
    assert len(out.rows_by_table["inquiries"]) == 1
    assert [orjson.loads(d)["reason"] for d in out.dead_letters] == ["bad_json"]
    assert orjson.loads(out.dead_letters[0])["source_offset"] == 4
    snapshots = aggregate(out, {})
    assert sum(s["scans"] for s in snapshots) == 2
    assert sum(s["inquiries"] for s in snapshots) == 1


def test_each_changed_entry_is_owned_by_the_partition_it_was_read_from() -> None:
    out = validate_stage([msg(f.scan(badge_id=f"B{n}"), 0, n) for n in range(30)])
    messages = as_contribution_messages(out)
    leads = aggregate_leads(messages, {}.get, NOW)
    assert leads.state_updates
    for key, update in leads.state_updates.items():
        assert messages[update.owner_index].partition == int(key.split("|")[1])


def test_counts_do_not_depend_on_the_raw_partition_a_producer_chose() -> None:
    # The same scans, resent by a client whose partitioner put every badge elsewhere.
    booth = booth_roster()[2]
    docs = [f.scan(badge_id=f"B{n % 7}", booth_id=booth.id) for n in range(20)]
    store: dict[str, dict] = {}
    aggregate(validate_stage([msg(d, n % 6, n) for n, d in enumerate(docs)]), store)
    again = aggregate(validate_stage([msg(d, (n + 3) % 6, 100 + n)
                                      for n, d in enumerate(docs)]), store)
    assert sum(s["scans"] for s in again) == 20
    assert sum(s["distinct_badges"] for s in again) == 7


def test_a_batch_replayed_after_a_crash_changes_no_count() -> None:
    booth = booth_roster()[3]
    docs = [f.scan(badge_id=f"B{n % 3}", booth_id=booth.id) for n in range(10)]
    out = validate_stage([msg(d, 0, n) for n, d in enumerate(docs)])
    store: dict[str, dict] = {}
    aggregate(out, store)
    replay = aggregate_leads(as_contribution_messages(out), store.get, NOW)
    assert replay.state_updates == {}
    snapshots = [orjson.loads(s) for s in replay.snapshots]
    assert sum(s["scans"] for s in snapshots) == 10
    assert sum(s["distinct_badges"] for s in snapshots) == 3


def test_an_unexpected_error_dead_letters_only_its_message(
        monkeypatch: pytest.MonkeyPatch) -> None:
    real_event_row = batch_module.event_row

    def event_row(event, enrichment, source):  # type: ignore[no-untyped-def]
        if event.payload.badge_id == "POISON":
            raise OverflowError("a value no later step can handle")
        return real_event_row(event, enrichment, source)

    monkeypatch.setattr(batch_module, "event_row", event_row)
    docs = [f.scan(badge_id=f"B{n}") for n in range(40)]
    docs.insert(17, f.scan(badge_id="POISON"))
    out = validate_stage([msg(d, 0, n) for n, d in enumerate(docs)])
    assert len(out.rows_by_table["scans"]) == 40
    assert sum(len(v) for v in out.contributions_by_partition.values()) == 40
    [dead] = [orjson.loads(d) for d in out.dead_letters]
    assert (dead["reason"], dead["source_offset"]) == ("processing_error", 17)
    assert "OverflowError" in dead["detail"]


def test_an_unreadable_contribution_is_a_dead_letter_and_the_rest_count() -> None:
    out = validate_stage([msg(f.scan(badge_id=f"B{n}"), 0, n) for n in range(5)])
    messages = as_contribution_messages(out)
    broken = RawMessage(CONTRIBUTIONS, 0, 99, b'{"event_id": "x"}\n' + messages[0].value)
    leads = aggregate_leads([broken, *messages[1:]], {}.get, NOW)
    assert [orjson.loads(d)["reason"] for d in leads.dead_letters] == ["processing_error"]
    assert sum(orjson.loads(s)["scans"] for s in leads.snapshots) == 5


def test_an_oversized_event_keeps_a_bounded_prefix_its_size_and_hash() -> None:
    huge = f.scan()
    huge["payload"]["note"] = "x" * (3 * 1024 * 1024)
    raw = f.encode(huge)
    out = validate_stage([msg(raw, 0, 7)])
    [dead] = [orjson.loads(d) for d in out.dead_letters]
    assert dead["reason"] == "oversized" and dead["raw_size"] == len(raw)
    assert len(dead["raw_base64"]) <= DEAD_LETTER_RAW_PREFIX * 4 // 3 + 4
    assert dead["raw_sha256"] == hashlib.sha256(raw).hexdigest()
    assert len(out.dead_letters[0]) < 200 * 1024


def test_chunks_respect_the_size_limit_and_keep_every_row() -> None:
    rows = [b"x" * 100 for _ in range(50)]
    blocks = chunk_rows(rows, max_bytes=1000)
    assert all(len(b) <= 1000 for b in blocks)
    assert sum(len(b.split(b"\n")) for b in blocks) == 50
    assert chunk_rows([]) == []


def test_the_agents_batch_and_linger_come_from_settings() -> None:
    from pathlib import Path

    from core.settings import Settings
    from streams.app import agent_batching, create_app

    defaults = Settings(namespace="unit-batching", data_dir=Path("/nonexistent"))
    # the values the workers were tuned with before they became settings
    assert agent_batching(defaults) == (2000, 0.05)
    assert create_app(defaults).conf.producer_linger == 0.005
    tuned = defaults.model_copy(update={"worker_batch_max": 500,
                                        "worker_batch_within_ms": 20, "worker_linger_ms": 0})
    assert agent_batching(tuned) == (500, 0.02)
    assert create_app(tuned).conf.producer_linger == 0

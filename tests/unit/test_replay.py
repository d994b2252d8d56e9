"""The offline stream stages and the replay order (pure), and where a swap puts each Faust
table entry."""

from __future__ import annotations

import random
from collections import Counter

import orjson
from aiokafka.partitioner import DefaultPartitioner

from core.settings import Settings
from leadloom.commands.reprocess_swap import entry_partition, fair_partition
from schemas.registry import (
    IDENTITY_LOG_TABLE,
    LEADS_STATE_TABLE,
    MATCHMAKING_STATE_TABLE,
    RAW_TOPICS,
    TopicNames,
)
from streams.batch import RawMessage
from streams.identity.stream import entry_records
from streams.replay import Rebuild, TimedMessage, replay_order
from tests.factories.rows import NOW, fair_day_rows


def _partitions(n: int, seed: int) -> list[list[TimedMessage]]:
    rng = random.Random(seed)
    out = []
    for p in range(n):
        stamps = sorted(rng.randrange(1000) for _ in range(50))
        out.append([TimedMessage(t, RawMessage(f"t{p % 2}", p, o, b"x"))
                    for o, t in enumerate(stamps)])
    return out


def test_the_replay_order_is_one_order_whatever_the_partitions_order() -> None:
    parts = _partitions(6, seed=3)
    first = [m.order_key() for m in replay_order(iter(p) for p in parts)]
    second = [m.order_key() for m in replay_order(iter(p) for p in reversed(parts))]
    assert first == second == sorted(first)
    # each partition stays in offset order
    for p in range(6):
        offsets = [k[3] for k in first if k[2] == p]
        assert offsets == sorted(offsets)


def test_a_rebuild_gives_the_rows_the_stages_give() -> None:
    """Fed in batches, the offline stages give the factory's rows (each stage run once over
    the whole day): raw rows, dead letters and the newest leads snapshot of every entry."""
    day = fair_day_rows(events=1500, seed=4)
    topics = TopicNames("rows")
    rebuild = Rebuild(topics, {topics.name(s): s.value_schema for s in RAW_TOPICS},
                      Settings().max_message_bytes, 6, NOW)
    messages = _messages_of(day)
    rows: dict[str, list[bytes]] = {}
    for start in range(0, len(messages), 400):
        for table, got in rebuild.feed(messages[start:start + 400]).items():
            rows.setdefault(table, []).extend(got)
    for table, got in rebuild.finish().items():
        rows.setdefault(table, []).extend(got)
    for table in ("scans", "registrations", "inquiries", "dead_letters"):
        assert Counter(rows[table]) == Counter(day.rows[table]), table
    newest = {}
    for row in map(orjson.loads, day.rows["leads_minute_parts"]):
        key = (row["source_topic"], row["source_partition"], row["minute"], row["cluster_id"])
        if key not in newest or row["version"] > newest[key]["version"]:
            newest[key] = row
    assert sorted(map(orjson.loads, rows["leads_minute_parts"]), key=str) == sorted(
        newest.values(), key=str)
    state = rebuild.stream_state()
    assert set(state) == {LEADS_STATE_TABLE, IDENTITY_LOG_TABLE, MATCHMAKING_STATE_TABLE}
    logged = [r["id"] for entry in state[IDENTITY_LOG_TABLE].values()
              for r in entry_records(entry)]
    assert sorted(logged) == sorted({orjson.loads(r)["alias"] for r in rows["buyer_events"]})


def _messages_of(day) -> list[RawMessage]:  # type: ignore[no-untyped-def]
    import itertools
    import zlib
    from collections import defaultdict

    topics = TopicNames("rows")
    offsets: dict = defaultdict(itertools.count)
    out = []
    for m in day.sim.messages:
        topic = topics.raw(m.event_type)
        partition = zlib.crc32(m.key or b"") % 6
        out.append(RawMessage(topic, partition, next(offsets[topic, partition]), m.value))
    return out


def test_a_fair_lands_where_the_workers_keyed_send_lands() -> None:
    """Faust sends with aiokafka, whose default partitioner is murmur2 as Java's is."""
    partitioner = DefaultPartitioner()
    for fair in ("CIFW-2026-AW", "LIVE-2026-TL", "X-1"):
        assert fair_partition(fair) == partitioner(fair.encode(), list(range(6)),
                                                   list(range(6)))


def test_each_faust_entry_goes_to_its_owner_partition() -> None:
    assert entry_partition(LEADS_STATE_TABLE, "ns.raw.scans|4|2026-03-26 01:02:00") == 4
    fair = "CIFW-2026-AW"
    assert entry_partition(IDENTITY_LOG_TABLE, f"{fair}|000000012") == fair_partition(fair)
    for key in (f"P|{fair}|EX-1", f"V|{fair}", f"M|{fair}|e-1"):
        assert entry_partition(MATCHMAKING_STATE_TABLE, key) == fair_partition(fair)

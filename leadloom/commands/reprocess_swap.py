"""Swap a rebuilt shadow database in, with the stream workers' state to match.

The tables alone are not enough: the stream workers keep state (the leads sets, each
fair's identity log, the matchmaking index) in changelog-backed Faust tables, and a
pipeline that went on from its old state would write rows that contradict the swapped
tables (buyer ids from another order, lead counts missing what the rebuild added). So a
swap hands over both, at the rebuild's cut (the raw topics' end offsets when it started):

1. **Refusals first**: the pipeline must be stopped: no member in the stream workers' or
   the sink's group (the embedded store's lock already says ``leadloom run`` is not
   running), and the rebuild read every raw partition up to its current end (nothing was
   published since: else rebuild again).
2. **Tables**: ``EXCHANGE TABLES live.t AND shadow.t`` for every rebuilt table (atomic per
   table on the engine); the old live tables stay in the shadow database (inspect them, or
   swap them back with another rebuild).
3. **Stream state**: each Faust table's changelog (keys and values JSON, as Faust's table
   codec writes them) gets the rebuild's entries and a
   tombstone for every key it held that the rebuild has not; each entry in the partition
   Faust keeps it in (the leads entry's contribution partition; a fair's identity log and
   matchmaking state in the partition of its ``fair_id`` key, as the producer
   partitions it: murmur2); the identity log's next offset per partition is that
   partition's end.
4. **Offsets**: the stream workers' group resumes the raw topics at the cut and its
   internal topics (identity records, lead contributions, matchmaking requests) at their
   ends; the sink's group skips what the old state sent and was not stored yet (its derived
   topics at their ends; the archive goes on where it was).

Ctrl-C during the swap is held until it is done (a half-swapped store is the one outcome
worse than either side). If a step after the tables fails, the tables are exchanged back
and the error raised. Failure mode: ``SwapRefused`` with a one-line reason.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from kafka import KafkaConsumer, TopicPartition
from kafka.partitioner.default import murmur2

from core.kafka import bootstrap_list, producer
from core.settings import Settings
from core.store import Store
from leadloom.commands.groups import GroupsError, apply_reset, plan_reset
from leadloom.commands.reprocess_diff import REBUILT_TABLES
from schemas.registry import (
    IDENTITY_LOG_TABLE,
    IDENTITY_RECORDS,
    LEAD_CONTRIBUTIONS,
    LEADS_STATE_TABLE,
    MATCH_REQUESTS,
    MATCHMAKING_STATE_TABLE,
    RAW_PARTITIONS,
    RAW_TOPICS,
    changelog_topic,
)
from streams.identity.ordering import next_offset_key

Progress = Callable[[str], None]


class SwapRefused(RuntimeError):
    """A swap that would leave the pipeline inconsistent (one line: why, what to do)."""


def fair_partition(fair_id: str, partitions: int = RAW_PARTITIONS) -> int:
    """The partition a keyed send of ``fair_id`` lands on (Kafka's default: murmur2)."""
    return (murmur2(fair_id.encode("utf-8")) & 0x7FFFFFFF) % partitions


def entry_partition(table: str, key: str) -> int:
    """The changelog partition Faust keeps ``key`` of ``table`` in (module docstring)."""
    if table == LEADS_STATE_TABLE:
        return int(key.split("|")[1])  # state_key: topic|contribution partition|minute
    if table == IDENTITY_LOG_TABLE:
        return fair_partition(key.split("|", 1)[0])  # log_key: fair|seq
    return fair_partition(key.split("|")[1])  # P|fair|..., V|fair, M|fair|...


@contextmanager
def _interrupts_held() -> Iterator[None]:
    """SIGINT/SIGTERM wait until the block is done, then interrupt."""
    received: list[int] = []
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in previous:
        signal.signal(s, lambda signum, _frame: received.append(signum))
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if received:
            raise KeyboardInterrupt


def _read_keys(consumer: KafkaConsumer, topic: str) -> dict[str, int]:
    """Every live key of a changelog topic (last write not a tombstone) -> its partition."""
    partitions = [TopicPartition(topic, p) for p in sorted(
        consumer.partitions_for_topic(topic) or ())]
    if not partitions:
        return {}
    ends = consumer.end_offsets(partitions)
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    keys: dict[str, int] = {}
    while any(consumer.position(tp) < ends[tp] for tp in partitions):
        for tp, records in consumer.poll(timeout_ms=500).items():
            for r in records:
                if r.key is None:
                    continue
                key = orjson.loads(r.key)
                if r.value is None:
                    keys.pop(key, None)
                else:
                    keys[key] = tp.partition
    return keys


def _check_stopped(settings: Settings) -> None:
    from leadloom.commands.groups import namespace_groups

    for group in namespace_groups(settings):
        try:
            plan_reset(settings, group, "latest")
        except GroupsError as exc:
            if "active member" in str(exc):
                raise SwapRefused(f"{exc}; nothing was swapped") from None
            if "no partitions" not in str(exc):
                raise


def swap(settings: Settings, store: Store, shadow: str, cut: dict[str, list[int]],
         state: dict[str, dict[str, object]], progress: Progress) -> dict[str, Any]:
    """Swap ``shadow`` in and hand ``state`` over at ``cut`` (module docstring). ``cut``:
    ``topic[partition]`` -> [start, end) the rebuild read. Returns what was done."""
    _check_stopped(settings)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_list(settings),
                             enable_auto_commit=False, isolation_level="read_committed")
    try:
        raw = [TopicPartition(settings.topics.name(s), p) for s in RAW_TOPICS
               for p in sorted(consumer.partitions_for_topic(settings.topics.name(s)) or ())]
        ends = consumer.end_offsets(raw)
        moved = {f"{tp.topic}[{tp.partition}]": ends[tp] for tp in raw
                 if ends[tp] != cut.get(f"{tp.topic}[{tp.partition}]", [0, 0])[1]}
        if moved:
            raise SwapRefused(f"{len(moved)} raw partition(s) moved past the rebuild (e.g."
                              f" {next(iter(moved))}): rebuild again with the pipeline"
                              " stopped; nothing was swapped")
        live = settings.clickhouse_database
        with _interrupts_held():
            progress(f"swapping {len(REBUILT_TABLES)} tables of {live} with {shadow}")
            for table in REBUILT_TABLES:
                store.client.command(f"EXCHANGE TABLES {live}.{table} AND {shadow}.{table}")
            try:
                entries = _hand_over_state(settings, consumer, state)
                offsets = _move_offsets(settings, consumer, cut)
            except BaseException:
                progress("handing the stream state over failed: swapping the tables back")
                for table in REBUILT_TABLES:
                    store.client.command(
                        f"EXCHANGE TABLES {live}.{table} AND {shadow}.{table}")
                raise
        return {"tables": len(REBUILT_TABLES), "state_entries": entries, "offsets": offsets,
                "previous_live_tables_in": shadow}
    finally:
        consumer.close()


def _hand_over_state(settings: Settings, consumer: KafkaConsumer,
                     state: dict[str, dict[str, object]]) -> dict[str, int]:
    """Write ``state`` (and tombstones) to the Faust changelogs; counts per table."""
    identity = TopicPartition(settings.topics.name(IDENTITY_RECORDS), 0)
    identity_parts = [TopicPartition(identity.topic, p) for p in range(RAW_PARTITIONS)]
    identity_ends = consumer.end_offsets(identity_parts)
    client = producer(settings)
    counts: dict[str, int] = {}
    try:
        for table in (LEADS_STATE_TABLE, IDENTITY_LOG_TABLE, MATCHMAKING_STATE_TABLE):
            topic = changelog_topic(settings.faust_app_id, table)
            old = _read_keys(consumer, topic)
            entries = dict(state.get(table, {}))
            placed = {key: entry_partition(table, key) for key in entries}
            if table == IDENTITY_LOG_TABLE:
                for tp in identity_parts:
                    key = next_offset_key(tp.partition)
                    entries[key], placed[key] = identity_ends[tp], tp.partition
            # Faust's table codec: keys and values as JSON
            futures = [client.send(topic, key=orjson.dumps(key), value=orjson.dumps(value),
                                   partition=placed[key]) for key, value in entries.items()]
            futures += [client.send(topic, key=orjson.dumps(key), value=None,
                                    partition=partition)
                        for key, partition in old.items() if key not in entries]
            for future in futures:
                future.get(timeout=60)
            counts[table] = len(entries)
            counts[f"{table}_tombstones"] = len(old.keys() - entries.keys())
    finally:
        client.close(timeout=10)
    return counts


def _move_offsets(settings: Settings, consumer: KafkaConsumer,
                  cut: dict[str, list[int]]) -> dict[str, int]:
    """The workers' group at the cut (raw) and the ends (internal); the sink's derived
    topics at their ends. Partitions moved per group."""
    from leadloom.commands.groups import namespace_groups

    groups = namespace_groups(settings)
    internal = {settings.topics.name(s) for s in (IDENTITY_RECORDS, LEAD_CONTRIBUTIONS,
                                                  MATCH_REQUESTS)}
    raw = {settings.topics.name(s) for s in RAW_TOPICS}
    moved = {}
    for group, topics in groups.items():
        if group == settings.faust_app_id:
            wanted = [t for t in topics if t in raw or t in internal]
        else:  # the sink: its derived topics (the archive reads on where it was)
            wanted = [t for t in topics if t not in raw]
        if not wanted:
            continue
        plan = plan_reset(settings, group, "latest", wanted)
        for p in plan["partitions"]:
            ref = f"{p['topic']}[{p['partition']}]"
            if p["topic"] in raw:
                p["new"] = cut.get(ref, [p["new"], p["new"]])[1]
        apply_reset(settings, plan)
        moved[group] = len(plan["partitions"])
    return moved

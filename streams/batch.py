"""One batch of raw messages -> table rows, dead letters, leads-state updates and identity
records. Pure.

The Faust agent hands a batch here and only does I/O with the result. Outputs are
grouped so that the agent sends one Kafka message per table per batch (newline-joined
JSON rows, passed through to ClickHouse as ``JSONEachRow``) and writes each touched
leads-state entry once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson

from streams.identity.records import identity_record
from streams.leads import LEAD_KIND_BY_EVENT_TYPE, MinuteState, minute_of, part_row, state_key
from streams.rows import SourceRef, dead_letter_row, event_row, table_for
from streams.validate import Accepted, validate


@dataclass(frozen=True)
class RawMessage:
    topic: str
    partition: int
    offset: int
    value: bytes | None


@dataclass
class StateUpdate:
    """The new value of one leads-state entry and the message whose partition owns it."""

    state: dict
    owner_index: int  # index in the batch of a message that touched the entry


@dataclass
class BatchOutput:
    rows_by_table: dict[str, list[bytes]] = field(default_factory=dict)
    dead_letters: list[bytes] = field(default_factory=list)
    state_updates: dict[str, StateUpdate] = field(default_factory=dict)
    snapshots: list[bytes] = field(default_factory=list)
    identity_by_fair: dict[str, list[bytes]] = field(default_factory=dict)


@dataclass
class _Touched:
    state: MinuteState
    source: RawMessage
    minute: str
    kind: str
    owner_index: int
    clusters: set[str] = field(default_factory=set)
    changed: bool = False


def process_batch(
    messages: Iterable[RawMessage],
    event_type_of_topic: dict[str, str],
    get_state: Callable[[str], dict | None],
    max_bytes: int,
    now: datetime | None = None,
) -> BatchOutput:
    """Validate, enrich and aggregate ``messages``; ``get_state`` reads the leads table."""
    now = now or datetime.now(UTC)
    out = BatchOutput()
    touched: dict[str, _Touched] = {}
    for index, msg in enumerate(messages):
        source = SourceRef(msg.topic, msg.partition, msg.offset)
        outcome = validate(msg.value, event_type_of_topic[msg.topic], max_bytes)
        if not isinstance(outcome, Accepted):
            out.dead_letters.append(orjson.dumps(dead_letter_row(outcome, source, msg.value, now)))
            continue
        event = outcome.event
        row = event_row(event, outcome.enrichment, source)
        out.rows_by_table.setdefault(table_for(event), []).append(orjson.dumps(row))
        ident = identity_record(event, outcome.enrichment, str(row["occurred_at"]))
        if ident is not None:
            out.identity_by_fair.setdefault(event.fair_id, []).append(orjson.dumps(ident))
        kind = LEAD_KIND_BY_EVENT_TYPE.get(event.event_type)
        cluster_id = outcome.enrichment.cluster_id
        if kind is None or cluster_id is None:
            continue
        minute = minute_of(event.occurred_at)
        key = state_key(msg.topic, msg.partition, minute)
        entry = touched.get(key)
        if entry is None:
            entry = _Touched(MinuteState.load(get_state(key)), msg, minute, kind, index)
            touched[key] = entry
        badge = getattr(event.payload, "badge_id", None)
        entry.changed |= entry.state.add(cluster_id, event.event_id, badge)
        entry.clusters.add(cluster_id)
    for key, entry in touched.items():
        if entry.changed:
            out.state_updates[key] = StateUpdate(entry.state.dump(), entry.owner_index)
        # Every touched cluster re-sends its snapshot, even when unchanged: after a crash
        # the state may have survived while its snapshot did not.
        for cluster_id in sorted(entry.clusters):
            row = part_row(entry.source.topic, entry.source.partition, entry.minute,
                           cluster_id, entry.kind, entry.state, now)
            out.snapshots.append(orjson.dumps(row))
    return out


def chunk_rows(rows: list[bytes], max_bytes: int = 900_000) -> list[bytes]:
    """Join rows into newline-separated blocks of at most ~``max_bytes`` each."""
    blocks, current, size = [], [], 0
    for row in rows:
        if current and size + len(row) + 1 > max_bytes:
            blocks.append(b"\n".join(current))
            current, size = [], 0
        current.append(row)
        size += len(row) + 1
    if current:
        blocks.append(b"\n".join(current))
    return blocks

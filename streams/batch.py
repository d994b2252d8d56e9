"""One batch of raw messages -> table rows, dead letters, lead contributions, identity
records and matchmaking requests; one batch of lead contributions -> leads-state updates
and snapshots. Pure.

The Faust agents hand a batch here and only do I/O with the result. Outputs are grouped
so that an agent sends one Kafka message per table (or destination partition) per batch
(newline-joined JSON rows, passed through to ClickHouse as ``JSONEachRow``) and writes
each touched leads-state entry once.

Nothing here may lose one event for another: an unexpected error while processing an
event (a message, or one line of a batched message: ``streams.lines``) dead-letters that
event (``processing_error``, with the error) and the batch goes on. An event's outputs are
built completely before any is added to the batch, so a failure half-way leaves no partial
output behind.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson

from schemas.deadletter import Reason
from schemas.events import InquiryEvent, ProfileEvent
from streams.identity.records import identity_record
from streams.leads import (
    LEAD_KIND_BY_EVENT_TYPE,
    MinuteState,
    contribution,
    leads_partition,
    minute_of,
    part_row,
    state_key,
)
from streams.lines import event_lines
from streams.matchmaking import request_line
from streams.rows import SourceRef, dead_letter_row, event_row, table_for
from streams.validate import Accepted, Rejected, validate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RawMessage:
    topic: str
    partition: int
    offset: int
    value: bytes | None
    headers: Mapping[str, bytes] = field(default_factory=dict)  # Kafka record headers


@dataclass
class StateUpdate:
    """The new value of one leads-state entry and the message whose partition owns it."""

    state: dict
    owner_index: int  # index in the batch of a message that touched the entry


@dataclass
class BatchOutput:
    rows_by_table: dict[str, list[bytes]] = field(default_factory=dict)
    dead_letters: list[bytes] = field(default_factory=list)
    contributions_by_partition: dict[int, list[bytes]] = field(default_factory=dict)
    identity_by_fair: dict[str, list[bytes]] = field(default_factory=dict)
    match_requests_by_fair: dict[str, list[bytes]] = field(default_factory=dict)
    # events judged beyond one per message, per raw topic: a batched message's lines after
    # its first (streams.lines); a message's events = 1 + these
    extra_events_by_topic: dict[str, int] = field(default_factory=dict)


@dataclass
class LeadsOutput:
    state_updates: dict[str, StateUpdate] = field(default_factory=dict)
    snapshots: list[bytes] = field(default_factory=list)
    dead_letters: list[bytes] = field(default_factory=list)


@dataclass
class _Touched:
    state: MinuteState
    topic: str
    partition: int
    minute: str
    kind: str
    owner_index: int
    clusters: set[str] = field(default_factory=set)
    changed: bool = False


def processing_error(exc: BaseException, source: SourceRef, raw: bytes | None,
                     now: datetime, headers: Mapping[str, bytes] | None = None) -> bytes:
    """The dead letter of a message whose processing raised unexpectedly."""
    log.error("%s: processing failed (%s: %s); dead-lettered", source,
              type(exc).__name__, exc)
    detail = f"{type(exc).__name__}: {exc}"[:300]
    return orjson.dumps(dead_letter_row(Rejected(Reason.PROCESSING_ERROR, detail), source,
                                        raw, now, headers))


def process_batch(
    messages: Iterable[RawMessage],
    event_type_of_topic: dict[str, str],
    max_bytes: int,
    partitions: int,
    now: datetime | None = None,
) -> BatchOutput:
    """Validate and enrich ``messages``; route lead contributions to ``partitions``.

    A message is one event or an NDJSON batch (:func:`streams.lines.event_lines`): each
    line is validated alone, a bad line is a dead letter of its own (its line in
    ``source_line``/``origin_line``) and the good lines are stored, each with its line."""
    now = now or datetime.now(UTC)
    out = BatchOutput()
    for msg in messages:
        event_type = event_type_of_topic[msg.topic]
        value = msg.value
        if value is None or b"\n" not in value:  # one event: the path it always took
            _process_event(out, msg, SourceRef(msg.topic, msg.partition, msg.offset), value,
                           event_type, max_bytes, partitions, now)
            continue
        lines = event_lines(value, max_bytes)
        if len(lines) > 1:
            out.extra_events_by_topic[msg.topic] = (
                out.extra_events_by_topic.get(msg.topic, 0) + len(lines) - 1)
        for line, raw in lines:
            # each line alone: its own outcome, its own dead letter, its own lineage
            _process_event(out, msg, SourceRef(msg.topic, msg.partition, msg.offset, line),
                           raw, event_type, max_bytes, partitions, now)
    return out


def _process_event(out: BatchOutput, msg: RawMessage, source: SourceRef, raw: bytes | None,
                   event_type: str, max_bytes: int, partitions: int, now: datetime) -> None:
    """One event (a message, or a line of a batched one) into ``out``; never raises."""
    try:
        outcome = validate(raw, event_type, max_bytes)
        if not isinstance(outcome, Accepted):
            out.dead_letters.append(
                orjson.dumps(dead_letter_row(outcome, source, raw, now, msg.headers)))
            return
        event = outcome.event
        row = event_row(event, outcome.enrichment, source)
        encoded = orjson.dumps(row)
        ident = identity_record(event, outcome.enrichment, str(row["occurred_at"]))
        ident_line = orjson.dumps(ident) if ident is not None else None
        lead = _contribution(msg.topic, outcome, partitions)
        match_line = (request_line(event)
                      if isinstance(event, (ProfileEvent, InquiryEvent)) else None)
    except Exception as exc:  # noqa: BLE001 (data must never crash the agent)
        out.dead_letters.append(processing_error(exc, source, raw, now, msg.headers))
        return
    out.rows_by_table.setdefault(table_for(event), []).append(encoded)
    if ident_line is not None:
        out.identity_by_fair.setdefault(event.fair_id, []).append(ident_line)
    if match_line is not None:
        out.match_requests_by_fair.setdefault(event.fair_id, []).append(match_line)
    if lead is not None:
        out.contributions_by_partition.setdefault(lead[0], []).append(lead[1])


def _contribution(topic: str, outcome: Accepted, partitions: int) -> tuple[int, bytes] | None:
    event, cluster_id = outcome.event, outcome.enrichment.cluster_id
    kind = LEAD_KIND_BY_EVENT_TYPE.get(event.event_type)
    if kind is None or cluster_id is None:
        return None
    badge = getattr(event.payload, "badge_id", None)
    line = orjson.dumps(contribution(event.event_id, cluster_id, minute_of(event.occurred_at),
                                     topic, kind, badge))
    return leads_partition(badge, event.event_id, partitions), line


def aggregate_leads(
    messages: Iterable[RawMessage],
    get_state: Callable[[str], dict | None],
    now: datetime | None = None,
) -> LeadsOutput:
    """Add contributions (messages of ``leads.contributions``) to the leads state.

    ``get_state`` reads the leads table. Entries are keyed by the contribution's raw topic
    (its kind), the partition it was read from, and its minute.
    """
    now = now or datetime.now(UTC)
    out = LeadsOutput()
    touched: dict[str, _Touched] = {}
    for index, msg in enumerate(messages):
        for line in (msg.value or b"").split(b"\n"):
            if not line.strip():
                continue
            try:
                c = orjson.loads(line)
                key = state_key(c["topic"], msg.partition, c["minute"])
                entry = touched.get(key)
                if entry is None:
                    entry = _Touched(MinuteState.load(get_state(key)), c["topic"],
                                     msg.partition, c["minute"], c["kind"], index)
                changed = entry.state.add(c["cluster_id"], c["event_id"], c["badge_id"])
            except Exception as exc:  # noqa: BLE001 (an internal line we cannot read)
                source = SourceRef(msg.topic, msg.partition, msg.offset)
                out.dead_letters.append(processing_error(exc, source, line, now, msg.headers))
                continue
            touched[key] = entry
            entry.changed |= changed
            entry.clusters.add(c["cluster_id"])
    for key, entry in touched.items():
        if entry.changed:
            out.state_updates[key] = StateUpdate(entry.state.dump(), entry.owner_index)
        # Every touched cluster re-sends its snapshot, even when unchanged: after a crash
        # the state may have survived while its snapshot did not.
        for cluster_id in sorted(entry.clusters):
            row = part_row(entry.topic, entry.partition, entry.minute, cluster_id,
                           entry.kind, entry.state, now)
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

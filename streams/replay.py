"""The stream stages run offline: raw messages in, every derived row out. Pure.

``leadloom replay reprocess`` rebuilds derived state from the raw topics (or the raw
archive) with the code the workers run, in one process and one order, without Kafka
between the stages:

- :func:`streams.batch.process_batch`: validation, enrichment, raw event rows, dead letters,
  lead contributions, identity records and matchmaking requests;
- :func:`streams.batch.aggregate_leads` on the contributions of each leads partition, the
  leads state kept in a dict (only the newest snapshot of each entry is kept: the table
  keeps the newest version anyway);
- :class:`streams.identity.stream.IdentityStreams` on each fair's identity records, its log
  in a dict;
- :class:`streams.matchmaking.Matchmaker` on each fair's requests, its state in a dict.

Order. Buyer ids (and the profiles an inquiry is matched against) depend on the order in
which records are applied, so the order is part of the contract: :func:`replay_order` is
the k-way merge of every raw partition (each in offset order) by (Kafka timestamp, topic,
partition, offset). Reading Kafka and reading the archive give the same messages in the
same order, hence the same buyer ids; the live pipeline applies them in its own arrival
order, so its buyer ids may differ while the buyers (which records belong together) are
the same: the differences report compares buyers by their members.

The rows are what the live stages would have sent; the caller inserts them. Surge alerts
are decided by the caller on the rebuilt store (``streams.surges``), as ``leadloom run``
decides them on the live one.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

import orjson

from schemas.deadletter import Reason
from schemas.registry import (
    BUYER_ALIASES,
    BUYER_EVENTS_TABLE,
    BUYER_MERGES_TABLE,
    BUYERS,
    DEAD_LETTER_TABLE,
    IDENTITY_LOG_TABLE,
    LEADS_MINUTE_PARTS,
    LEADS_STATE_TABLE,
    MATCHES_TABLE,
    MATCHMAKING_STATE_TABLE,
    TopicNames,
)
from streams.batch import RawMessage, aggregate_leads, process_batch
from streams.identity.stream import IdentityStreams, Outputs
from streams.matchmaking import Matchmaker
from streams.rows import SourceRef, dead_letter_row
from streams.validate import Rejected


@dataclass(frozen=True)
class TimedMessage:
    """A raw message and its Kafka timestamp (ms since the epoch)."""

    timestamp_ms: int
    message: RawMessage

    def order_key(self) -> tuple[int, str, int, int]:
        m = self.message
        return (self.timestamp_ms, m.topic, m.partition, m.offset)


def replay_order(partitions: Iterable[Iterator[TimedMessage]]) -> Iterator[TimedMessage]:
    """Merge per-partition streams (each in offset order) by (timestamp, topic, partition,
    offset): deterministic for the same messages, whatever the source."""
    return heapq.merge(*partitions, key=TimedMessage.order_key)


Rows = dict[str, list[bytes]]


@dataclass
class RebuildCounts:
    messages: int = 0
    dead_letters: int = 0
    rows: dict[str, int] = field(default_factory=lambda: defaultdict(int))


class Rebuild:
    """Every stream stage over messages fed in :func:`replay_order` (module docstring).

    ``feed(batch)`` returns the rows the batch produced (table -> JSON rows); ``finish()``
    the leads snapshots (one per entry and cluster, newest). ``now`` stamps processing
    times (``ingested_at`` and the like are the store's own)."""

    def __init__(self, topics: TopicNames, event_type_of_topic: dict[str, str],
                 max_bytes: int, partitions: int, now: datetime) -> None:
        self.topics = topics
        self.event_type_of_topic = event_type_of_topic
        self.max_bytes = max_bytes
        self.partitions = partitions
        self.now = now
        self.counts = RebuildCounts()
        self._leads_state: dict[str, dict] = {}
        self._snapshots: dict[tuple[str, int, str, str], bytes] = {}
        self._identity = IdentityStreams()
        self._identity_log: dict[str, dict | list[dict]] = {}
        self._identity_blocks = 0  # stands in for the identity topic's offsets
        self._matchmaker = Matchmaker()
        self._match_state: dict[str, object] = {}

    def feed(self, messages: list[RawMessage]) -> Rows:
        rows: Rows = defaultdict(list)
        out = process_batch(messages, self.event_type_of_topic, self.max_bytes,
                            self.partitions, now=self.now)
        self.counts.messages += len(messages)
        for table, table_rows in out.rows_by_table.items():
            rows[table].extend(table_rows)
        rows[DEAD_LETTER_TABLE.name].extend(out.dead_letters)
        for partition, lines in sorted(out.contributions_by_partition.items()):
            self._aggregate(partition, lines, rows)
        for fair_id, lines in out.identity_by_fair.items():
            self._resolve(fair_id, lines, rows)
        for _fair_id, lines in out.match_requests_by_fair.items():
            matched = self._matchmaker.apply_block(b"\n".join(lines), self._match_state.get,
                                                   self._match_state.items, now=self.now)
            for key, value in matched.writes:
                self._match_state[key] = value
            rows[MATCHES_TABLE.name].extend(matched.rows)
            source = SourceRef(self.topics.match_requests, 0, self.counts.messages)
            rows[DEAD_LETTER_TABLE.name].extend(
                orjson.dumps(dead_letter_row(Rejected(Reason.PROCESSING_ERROR, why), source,
                                             line, self.now))
                for line, why in matched.failed)
        return self._counted(rows)

    def finish(self) -> Rows:
        """The leads snapshots, newest of each (entry, cluster)."""
        rows = {LEADS_MINUTE_PARTS.name: list(self._snapshots.values())}
        self._snapshots.clear()
        return self._counted(rows)

    def stream_state(self) -> dict[str, dict[str, object]]:
        """The stream workers' tables as the rebuild leaves them (Faust table name -> key ->
        value), what a swap hands over to the pipeline: the leads state, the identity log
        (without its next-offset entries, which belong to the identity topic) and the
        matchmaking state."""
        return {LEADS_STATE_TABLE: dict(self._leads_state),
                IDENTITY_LOG_TABLE: dict(self._identity_log),
                MATCHMAKING_STATE_TABLE: dict(self._match_state)}

    def _counted(self, rows: Rows) -> Rows:
        for table, table_rows in rows.items():
            self.counts.rows[table] += len(table_rows)
        self.counts.dead_letters += len(rows.get(DEAD_LETTER_TABLE.name, ()))
        return rows

    def _aggregate(self, partition: int, lines: list[bytes], rows: Rows) -> None:
        message = RawMessage(self.topics.lead_contributions, partition, 0, b"\n".join(lines))
        leads = aggregate_leads([message], self._leads_state.get, now=self.now)
        for key, update in leads.state_updates.items():
            self._leads_state[key] = update.state
        for snapshot in leads.snapshots:
            row = orjson.loads(snapshot)
            entry = (row["source_topic"], row["source_partition"], row["minute"],
                     row["cluster_id"])
            self._snapshots[entry] = snapshot
        rows[DEAD_LETTER_TABLE.name].extend(leads.dead_letters)

    def _resolve(self, fair_id: str, lines: list[bytes], rows: Rows) -> None:
        out = Outputs()
        self._identity.resolve_block(b"\n".join(lines), self._identity_log.get, out)
        self._identity_log.update(out.logged)
        source = SourceRef(self.topics.identity_records, 0, self._identity_blocks)
        self._identity_blocks += 1
        for reason, line, why in out.rejected:
            rows[DEAD_LETTER_TABLE.name].append(
                orjson.dumps(dead_letter_row(Rejected(reason, why), source, line, self.now)))
        for line, why in out.failed:
            rows[DEAD_LETTER_TABLE.name].append(orjson.dumps(dead_letter_row(
                Rejected(Reason.PROCESSING_ERROR, why), source, line, self.now)))
        rows[BUYER_EVENTS_TABLE.name].extend(out.events)
        rows[BUYER_ALIASES.name].extend(out.aliases)
        rows[BUYERS.name].extend(out.buyers)
        rows[BUYER_MERGES_TABLE.name].extend(out.merges)

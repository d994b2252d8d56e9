"""What ``leadloom replay republish`` selects from ``raw_archive``, as SQL; pure.

A message of the archive is **republished** when it is

- on a raw topic of the configured namespace (of a ``--type`` when given),
- in the time range: ``[--from, --to)`` on the event time ``occurred_at`` read from the
  value (a message without one, i.e. not an event, is placed at its Kafka timestamp),
- a JSON event (``event_id`` and ``event_type`` read) on the raw topic of its own type,
- **stored**: its event_id is in the raw event table of its type (``FINAL``); with
  ``--cluster``, stored with one of those clusters as the pipeline enriched it (event types
  without a cluster, registrations, are then not considered at all),
- the **first copy** of its event: the least (kafka_timestamp, topic, partition, offset) of
  the selected messages with its event_id (the archive holds an event several times when it
  was resent or republished before).

Skipped, and counted by reason (:data:`SKIP_REASONS`): ``not_an_event`` (not JSON, no
event_id, an unknown type, or on another type's topic), ``not_stored`` (a JSON event the
pipeline rejected or has not stored yet: a dead letter, which ``leadloom deadletters retry``
handles) and ``duplicate`` (a later copy of a selected event). With ``--cluster`` the first
two are counted without a cluster (a message the pipeline did not store has none).

A batched message (NDJSON, ``streams.lines``: a UTF-8 value that is not one JSON document,
has several lines and at least one that is JSON) is selected **per line**: each non-blank
line is an event of its own with the message's coordinates and its line index, judged by
the rules above, and a selected line goes out alone, as a message of one event (the
batch's key is its first event's: a line is keyed by ``key_of``), its origin header naming
its line.

Messages go out in (kafka_timestamp, topic, partition, offset, line) order; :func:`page_sql`
reads the next page after a key (keyset paging), so memory is one page whatever the day.
Every archive read is ``FINAL`` (the archive keeps one row per topic, partition, offset).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from core.settings import Settings
from leadloom.commands.times import TimeError, aware_time
from schemas.events import EventType
from schemas.registry import ORIGIN_HEADER, RAW_ARCHIVE, TABLE_BY_EVENT_TYPE
from streams.rows import SourceRef

SKIP_REASONS = ("not_an_event", "not_stored", "duplicate")
CLUSTER_COLUMN = "cluster_id"
# (kafka timestamp in ms, topic, partition, offset, line): the send order and the paging key.
PageKey = tuple[int, str, int, int, int]


class SelectionError(ValueError):
    """A selection that cannot be run (one line: what to give instead)."""


def clustered_types() -> tuple[str, ...]:
    """Event types whose table carries the cluster the pipeline enriched."""
    return tuple(t.value for t in EventType
                 if CLUSTER_COLUMN in TABLE_BY_EVENT_TYPE[t].columns)


def parse_time(text: str, flag: str) -> datetime:
    """An aware ISO-8601 time (``Z`` accepted); a naive one is refused: the zone decides
    which events are meant."""
    try:
        return aware_time(text, flag)
    except TimeError as exc:
        raise SelectionError(str(exc)) from exc


@dataclass(frozen=True)
class Selection:
    """``--from``/``--to`` (aware, half-open), ``--cluster`` and ``--type`` values."""

    since: datetime | None = None
    until: datetime | None = None
    clusters: tuple[str, ...] = ()
    types: tuple[str, ...] = ()

    @classmethod
    def parse(cls, since: str | None, until: str | None, clusters: Sequence[str] | None,
              types: Sequence[str] | None) -> Selection:
        """The selection of the command's arguments; raises :class:`SelectionError`."""
        known = [t.value for t in EventType]
        unknown = [t for t in types or () if t not in known]
        if unknown:
            raise SelectionError(f"--type {unknown[0]!r}: not an event type"
                                 f" (known: {', '.join(known)})")
        empty = [c for c in clusters or () if not c.strip()]
        if empty:
            raise SelectionError("--cluster: an empty cluster id")
        selection = cls(
            parse_time(since, "--from") if since else None,
            parse_time(until, "--to") if until else None,
            tuple(dict.fromkeys(clusters or ())), tuple(dict.fromkeys(types or ())))
        if selection.since and selection.until and selection.since >= selection.until:
            raise SelectionError("--from must be before --to")
        if selection.clusters and not selection.event_types():
            raise SelectionError(f"--cluster selects events of a cluster; {', '.join(types or ())}"
                                 " events have none")
        return selection

    def event_types(self) -> tuple[str, ...]:
        """The event types considered: ``--type`` (all by default), only those with a
        cluster when ``--cluster`` is given."""
        chosen = self.types or tuple(t.value for t in EventType)
        if self.clusters:
            with_cluster = clustered_types()
            chosen = tuple(t for t in chosen if t in with_cluster)
        return chosen

    def params(self) -> dict[str, object]:
        """For the audit row."""
        return {"from": self.since.isoformat() if self.since else None,
                "to": self.until.isoformat() if self.until else None,
                "clusters": list(self.clusters), "types": list(self.types)}


def quote(text: str) -> str:
    """``text`` as a ClickHouse string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _list(values: Sequence[str]) -> str:
    return ", ".join(quote(v) for v in values)


class SelectionSql:
    """The SQL of one selection on one database and namespace."""

    def __init__(self, selection: Selection, settings: Settings,
                 database: str | None = None, as_of: datetime | None = None) -> None:
        self.selection = selection
        # Messages with a later Kafka timestamp are not part of the run (they arrived while
        # it ran: its own republished copies, live events), so counts and pages agree.
        self.as_of = as_of
        self.database = database or settings.clickhouse_database
        self.types = selection.event_types()
        self.topics = tuple(settings.topics.raw(t) for t in self.types)
        self.archive = f"{self.database}.{RAW_ARCHIVE.name}"

    def events(self) -> str:
        """The archive's events on the selected topics, as a subquery: a message of one
        event as archived (line 0, batched 0); a batched message's non-blank lines, each
        with its index, its bytes as ``value`` and the event columns read from it as the
        archive reads them from a value (batched 1)."""
        on_topics = f"topic IN ({_list(self.topics)})"
        batched = ("value_base64 = 0 AND position(value, '\\n') > 0"
                   " AND NOT isValidJSON(value)"
                   " AND arrayExists(x -> isValidJSON(x), splitByChar('\\n', value))")
        line = "tupleElement(numbered, 2)"
        return (
            "(SELECT topic, partition, offset, 0 AS line, 0 AS batched, kafka_timestamp,"
            " key_base64, value, value_base64, headers, event_id, event_type, occurred_at"
            f" FROM {self.archive} FINAL WHERE {on_topics} AND NOT ({batched})"
            " UNION ALL"
            " SELECT topic, partition, offset, tupleElement(numbered, 1) AS line, 1 AS batched,"
            f" kafka_timestamp, key_base64, {line} AS value, value_base64, headers,"
            f" JSONExtractString({line}, 'event_id') AS event_id,"
            f" JSONExtractString({line}, 'event_type') AS event_type,"
            f" parseDateTime64BestEffortOrNull(JSONExtractString({line}, 'occurred_at'), 3,"
            " 'UTC') AS occurred_at"
            " FROM (SELECT topic, partition, offset, kafka_timestamp, key_base64, value_base64,"
            " headers, arrayJoin(arrayFilter(x -> NOT match(tupleElement(x, 2), '^\\s*$'),"
            " arrayZip(range(length(splitByChar('\\n', value))),"
            " splitByChar('\\n', value)))) AS numbered"
            f" FROM {self.archive} FINAL WHERE {on_topics} AND {batched}))"
        )

    # -- predicates over raw_archive's columns ---------------------------------------------
    def in_range(self) -> str:
        """On the selected topics and in the time range."""
        bounds = [f"topic IN ({_list(self.topics)})"]
        moment = "coalesce(occurred_at, kafka_timestamp)"
        if self.selection.since is not None:
            bounds.append(f"{moment} >= fromUnixTimestamp64Milli({_ms(self.selection.since)},"
                          " 'UTC')")
        if self.selection.until is not None:
            bounds.append(f"{moment} < fromUnixTimestamp64Milli({_ms(self.selection.until)},"
                          " 'UTC')")
        if self.as_of is not None:
            bounds.append(f"kafka_timestamp <= fromUnixTimestamp64Milli({_ms(self.as_of)},"
                          " 'UTC')")
        return " AND ".join(bounds)

    def is_event(self) -> str:
        """A JSON event on the raw topic of its own type."""
        return (f"event_id != '' AND event_type = transform(topic, [{_list(self.topics)}],"
                f" [{_list(self.types)}], '')")

    def stored(self, clusters: Sequence[str] = ()) -> str:
        """Its event_id is in its type's table (with one of ``clusters``, when given)."""
        parts = []
        for event_type in self.types:
            table = f"{self.database}.{TABLE_BY_EVENT_TYPE[EventType(event_type)].name}"
            where = f" WHERE {CLUSTER_COLUMN} IN ({_list(clusters)})" if clusters else ""
            parts.append(f"(event_type = {quote(event_type)} AND event_id IN"
                         f" (SELECT event_id FROM {table} FINAL{where}))")
        return "(" + " OR ".join(parts) + ")" if parts else "0"

    def selected(self) -> str:
        """A message of a selected event (any copy)."""
        return (f"{self.in_range()} AND {self.is_event()}"
                f" AND {self.stored(self.selection.clusters)}")

    # -- statements -------------------------------------------------------------------------
    def count_sql(self) -> str:
        """Per topic: not_an_event, not_stored, messages (selected, every copy), events
        (selected, distinct); duplicates are messages - events."""
        in_cluster = self.stored(self.selection.clusters) if self.selection.clusters else "1"
        return (
            "SELECT topic, countIf(NOT is_event) AS not_an_event,"
            " countIf(is_event AND NOT is_stored) AS not_stored,"
            " countIf(is_event AND is_stored AND in_cluster) AS messages,"
            " uniqExactIf(event_id, is_event AND is_stored AND in_cluster) AS events"
            f" FROM (SELECT topic, event_id, {self.is_event()} AS is_event,"
            f" {self.stored()} AS is_stored, {in_cluster} AS in_cluster"
            f" FROM {self.events()} WHERE {self.in_range()})"
            " GROUP BY topic ORDER BY topic"
        )

    def page_sql(self, after: PageKey | None, limit: int) -> str:
        """The next ``limit`` messages to send after ``after`` (None: from the first), in
        send order: ts_ms, topic, partition, offset, key_base64, value, value_base64,
        headers (as [name, value_base64] pairs), line, batched (1: ``value`` is that line
        of a batched message)."""
        firsts = (f"SELECT tupleElement(first, 2), tupleElement(first, 3),"
                  f" tupleElement(first, 4), tupleElement(first, 5) FROM (SELECT"
                  f" min((kafka_timestamp, topic, partition, offset, line)) AS first"
                  f" FROM {self.events()} WHERE {self.selected()} GROUP BY event_id)")
        where = [self.selected(), f"(topic, partition, offset, line) IN ({firsts})"]
        if after is not None:
            ts, topic, partition, offset, line = after
            where.append(f"(toUnixTimestamp64Milli(kafka_timestamp), topic, partition, offset,"
                         f" line) > ({int(ts)}, {quote(topic)}, {int(partition)},"
                         f" {int(offset)}, {int(line)})")
        return (
            "SELECT toUnixTimestamp64Milli(kafka_timestamp) AS ts_ms, topic, partition,"
            " offset, key_base64, value, value_base64,"
            " arrayMap(h -> [tupleElement(h, 1), tupleElement(h, 2)], headers) AS headers,"
            " line, batched"
            f" FROM {self.events()} WHERE {' AND '.join(where)}"
            f" ORDER BY kafka_timestamp, topic, partition, offset, line LIMIT {int(limit)}"
        )


@dataclass(frozen=True)
class Counts:
    """What a selection holds: messages per topic and skips per reason."""

    events_by_topic: dict[str, int]
    skipped: dict[str, int]

    @property
    def selected(self) -> int:
        return sum(self.events_by_topic.values())

    @classmethod
    def of_rows(cls, rows: Sequence[Sequence[object]]) -> Counts:
        """From :meth:`SelectionSql.count_sql`'s rows."""
        by_topic: dict[str, int] = {}
        skipped = dict.fromkeys(SKIP_REASONS, 0)
        for topic, not_event, not_stored, messages, events in rows:
            by_topic[str(topic)] = int(str(events))
            skipped["not_an_event"] += int(str(not_event))
            skipped["not_stored"] += int(str(not_stored))
            skipped["duplicate"] += int(str(messages)) - int(str(events))
        return cls(by_topic, skipped)


def with_origin(headers: Sequence[tuple[str, bytes]], source: SourceRef
                ) -> list[tuple[str, bytes]]:
    """The message's headers as they were, plus :data:`ORIGIN_HEADER` = ``source`` unless
    it has one already (a republished message keeps its first reading as its origin).

    A line of a batch sent alone (``source.line`` > 0) names its line: an existing header
    without one (the batch's first reading, where the line was the same) gains ``#line``."""
    out = list(headers)
    at = next((i for i, (name, _) in enumerate(out) if name == ORIGIN_HEADER), None)
    if at is None:
        out.append((ORIGIN_HEADER, str(source).encode("utf-8")))
    elif source.line and b"#" not in out[at][1]:
        out[at] = (ORIGIN_HEADER, out[at][1] + f"#{source.line}".encode())
    return out


def decode_message(key_base64: str | None, value: str, value_base64: int,
                   headers: Sequence[Sequence[str]]
                   ) -> tuple[bytes | None, bytes, list[tuple[str, bytes]]]:
    """The exact key, value and headers of an archived message (``streams.rows.archive_row``
    in reverse)."""
    key = None if key_base64 is None else base64.b64decode(key_base64)
    raw = base64.b64decode(value) if int(value_base64) else str(value).encode("utf-8")
    return key, raw, [(str(name), base64.b64decode(v)) for name, v in headers]

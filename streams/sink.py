"""The sink: derived topics -> ClickHouse, in batches, offsets committed after the insert.

Contract
--------
Reads every partition of the sink topics (``TopicNames.sink``) with one kafka-python
consumer that *assigns* them to itself (no group membership: nothing to rebalance, no
session of a dead predecessor to wait out) and commits its offsets under the group id
``<namespace>-sink`` (auto commit off), so lag and restarts work as for a group.

Normal path: each record's value (newline-joined JSON rows of one table) is passed through
to one ``JSONEachRow`` insert per table per batch, without parsing, the raw event tables
first (:func:`flush_order`). A batch is flushed when it holds ``sink_batch_max`` records or
has lingered ``sink_linger_ms`` (from the poll before its first record, or from the end of
the previous flush when records came during it). Offsets are committed
only after every table of the batch (dead letters included) is written (DESIGN invariant
3); every table is idempotent on its key, so a retried insert, a bisected batch or a
redelivery after a crash never double counts.

Faults, told apart by :func:`classify_insert_error`:

- the store is unreachable or failing (no ClickHouse error code, or a code that says
  nothing about particular rows): the insert is retried with backoff (0.2 s doubling to
  5 s) until it succeeds or the sink is stopped; nothing is committed meanwhile;
- the engine refuses rows (a parse or type error: :data:`ROW_REFUSALS`): the table's
  batch is bisected into halves, recursively, the halves the engine accepts are stored,
  and the rows refused one by one become ``store_refused`` dead letters (the engine's
  message as detail, the row as raw bytes, the derived record's ``topic[partition]@offset``
  as source), written in the same flush, before the commit;
- the engine refuses a row for a key its table has no column for, and that column is one
  the registry gives the table (this code writes a column the store does not have yet: a
  migration is pending, e.g. booth_scan version 2's ``dwell_seconds`` before 017): the
  rows are held, not dead-lettered. The sink applies the pending online migrations
  (``Store.apply_online_migrations``) and retries the insert with backoff until the column
  exists; nothing is committed meanwhile (:attr:`Sink.faults` shows "pending migration");
- the insert is too large for the engine (too many partitions in one block, memory): it
  is bisected the same way until the pieces fit; a single row is never dead-lettered for
  that (it is retried as an infrastructure fault);
- Kafka is unreachable: polls and commits are retried; an outage is logged when it starts,
  every minute while it lasts and when it ends (:attr:`Sink.faults` shows it meanwhile;
  failing offset commits are a fault of their own: a broker may answer and refuse them).
  Positions stay in memory; a consumer that raises is closed and a new one seeks to them,
  so nothing polled is skipped and nothing is re-read. A commit that fails after a
  successful insert is retried later (the rows are already stored).

Input cannot wedge the sink: a record without a ``table`` header or naming a table the
registry does not know becomes a ``wrong_topic`` dead letter, an empty record is skipped,
and the rows a refusing engine singles out become dead letters.

Ops metrics (:mod:`streams.metrics`): the stream workers' rows arrive on ``<ns>.metrics``
and are stored like any derived topic. The sink's own (a ``sink_batch_ms`` row per table
insert of a flush; the end-to-end latency p50/p99 of the events stored in each
:data:`~streams.metrics.INTERVAL_S`) are written straight into ``pipeline_metrics``, one
insert per interval, outside the commit path: a failed metrics insert is logged and kept
for the next interval (up to :data:`METRICS_BACKLOG_ROWS`), never retried in the loop, so
metrics cannot hold up or dead-letter the data.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import NamedTuple

import orjson
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.structs import OffsetAndMetadata

from core.kafka import bootstrap_list
from core.settings import Settings
from core.store import Store
from schemas.deadletter import Reason
from schemas.registry import (
    BUYER_EVENTS_TABLE,
    BUYER_MERGES_TABLE,
    DEAD_LETTER_TABLE,
    EVENT_TABLES,
    LEADS_MINUTE_PARTS,
    MATCHES_TABLE,
    PIPELINE_METRICS,
    RAW_ARCHIVE,
    RAW_TOPICS,
    SCHEMA_MIGRATIONS,
    SURGE_ALERTS_TABLE,
    TABLES_BY_NAME,
    Metric,
    MetricSource,
)
from streams.metrics import INTERVAL_S, LatencyWindow, metric_row, received_ms
from streams.rows import SourceRef, archive_row, dead_letter_row
from streams.validate import Rejected

log = logging.getLogger(__name__)

# ClickHouse error codes that refuse the rows themselves: the engine could not parse a row
# or fit a value to its column. Bisecting isolates such rows. Codes that can also come from
# a cut-off request body (CANNOT_READ_ALL_DATA 33, ATTEMPT_TO_READ_AFTER_EOF 32) are left
# out on purpose: a dropped connection must never turn good rows into dead letters.
ROW_REFUSALS: frozenset[int] = frozenset({
    6,    # CANNOT_PARSE_TEXT
    25,   # CANNOT_PARSE_ESCAPE_SEQUENCE
    26,   # CANNOT_PARSE_QUOTED_STRING
    27,   # CANNOT_PARSE_INPUT_ASSERTION_FAILED (not JSON, not an object, wrong JSON type)
    38,   # CANNOT_PARSE_DATE
    41,   # CANNOT_PARSE_DATETIME
    53,   # TYPE_MISMATCH
    69,   # ARGUMENT_OUT_OF_BOUND
    70,   # CANNOT_CONVERT_TYPE
    72,   # CANNOT_PARSE_NUMBER
    117,  # INCORRECT_DATA
    130,  # CANNOT_READ_ARRAY_FROM_TEXT
    131,  # TOO_LARGE_STRING_SIZE
    190,  # SIZES_OF_ARRAYS_DONT_MATCH
    321,  # VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
    349,  # CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
    376,  # CANNOT_PARSE_UUID
    407,  # DECIMAL_OVERFLOW
    467,  # CANNOT_PARSE_BOOL
    691,  # UNKNOWN_ELEMENT_OF_ENUM
})
_INCORRECT_DATA = 117  # also what a JSON key without a column is refused with
_TOO_MANY_PARTS = 252  # also "too many parts" backpressure: only its partitions variant splits
_MEMORY_LIMIT_EXCEEDED = 241
_EXCEPTION_PREFIX = re.compile(r"^(?:Code:\s*\d+\.\s*DB::Exception:\s*)+")
DETAIL_MAX_CHARS = 300

RETRY_FIRST_S = 0.2
RETRY_MAX_S = 5.0
COMMIT_TIMEOUT_MS = 5_000
METADATA_WAIT_S = 30.0  # then a topic with fewer partitions than the registry's is taken
PARTITION_CHECK_S = 30.0  # how often a running sink looks for partitions added to its topics
PROBE_S = 5  # an idle sink checks the broker this often
POSITION_TIMEOUT_MS = 200  # reading a position past transaction markers (idle, no fault)
STILL_FAILING_LOG_S = 60.0
METRICS_BACKLOG_ROWS = 10_000  # the sink's own metric rows kept while the store refuses them

# Raw event tables: their rows carry received_at, the start of the end-to-end latency.
_EVENT_TABLE_NAMES = frozenset(t.name for t in EVENT_TABLES)

# Tables a derived record may name in its "table" header.
_SINK_TABLES = frozenset(
    t.name for t in TABLES_BY_NAME.values() if not t.is_view and t is not SCHEMA_MIGRATIONS
)


class InsertFault(Enum):
    """What a failed insert says about its rows."""

    REFUSED_ROWS = "refused_rows"  # some rows are bad: bisect, dead-letter single refused rows
    TOO_LARGE = "too_large"  # the insert exceeds an engine limit: bisect, never dead-letter
    INFRASTRUCTURE = "infrastructure"  # nothing about the rows: retry the same insert


def flush_order(tables: Iterable[str]) -> list[str]:
    """The tables of a batch but the dead letters (stored last, with the rows refused
    meanwhile) in the order a flush stores them: the raw event tables first, the others as
    they arrived. A flush of a dozen tables takes 100-200 ms under load, and the raw event
    tables are what the live figures and the end-to-end latency count."""
    rest = [t for t in tables if t != DEAD_LETTER_TABLE.name]
    return ([t for t in rest if t in _EVENT_TABLE_NAMES]
            + [t for t in rest if t not in _EVENT_TABLE_NAMES])


def classify_insert_error(exc: BaseException) -> InsertFault:
    """Tell a data refusal from an infrastructure fault, conservatively.

    clickhouse-connect raises ``DatabaseError`` with the engine's numeric ``code`` for an
    error the engine reported, on the embedded (chdb) target and on HTTP alike (HTTP
    reads it from ``X-ClickHouse-Exception-Code``), and ``OperationalError`` without a
    code for a transport failure. Anything without a code, or with a code outside
    :data:`ROW_REFUSALS` and the size limits, is an infrastructure fault and is retried:
    an error we cannot attribute to rows never turns rows into dead letters. The chain
    (``__cause__``/``__context__``) is searched, so a wrapper raised ``from`` the driver's
    error classifies as that error.
    """
    code, message = _engine_error(exc)
    if code in ROW_REFUSALS:
        return InsertFault.REFUSED_ROWS
    if code == _TOO_MANY_PARTS and "partitions for single insert block" in message.lower():
        return InsertFault.TOO_LARGE
    if code == _MEMORY_LIMIT_EXCEEDED:
        return InsertFault.TOO_LARGE
    return InsertFault.INFRASTRUCTURE


def refusal_detail(exc: BaseException) -> str:
    """The engine's reason in one short line: ``NAME: message`` (first line, capped)."""
    code, message = _engine_error(exc)
    carrier = _engine_exception(exc)
    name = getattr(carrier, "name", None) if carrier is not None else None
    first = _EXCEPTION_PREFIX.sub("", message.strip().splitlines()[0] if message.strip() else "")
    label = name or (f"code {code}" if code is not None else type(exc).__name__)
    text = f"{label}: {first}" if first else label
    return text if len(text) <= DETAIL_MAX_CHARS else text[:DETAIL_MAX_CHARS - 1] + "…"


def _engine_error(exc: BaseException) -> tuple[int | None, str]:
    """(engine error code, message) of the first error in the chain that carries a code."""
    carrier = _engine_exception(exc)
    if carrier is None:
        return None, str(exc)
    return carrier.code, str(carrier)  # type: ignore[attr-defined]


def describe_error(exc: BaseException) -> str:
    """``Type: first line`` of an error, for fault reports (the type once, not twice)."""
    line, name = _first_line(str(exc)), type(exc).__name__
    return line if line.startswith(name) else f"{name}: {line}" if line else name


def _engine_exception(exc: BaseException) -> BaseException | None:
    """The first error in ``exc``'s chain (``__cause__``/``__context__``) that carries an
    engine error code."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(getattr(current, "code", None), int) and not isinstance(current, OSError):
            return current
        current = current.__cause__ or current.__context__
    return None


class Row(NamedTuple):
    """One derived record as the sink batches it: its value and where it was read."""

    topic: str
    partition: int
    offset: int
    value: bytes

    @property
    def source(self) -> SourceRef:
        return SourceRef(self.topic, self.partition, self.offset)


class Line(NamedTuple):
    """One JSON row of a record (the bisect path only), with the record it came from."""

    data: bytes
    row: Row


class Refused(NamedTuple):
    line: Line
    detail: str


def split_lines(rows: list[Row]) -> list[Line]:
    """Every non-blank line of ``rows``, each with its record (per-row provenance)."""
    return [
        Line(data, row)
        for row in rows
        for data in row.value.split(b"\n")
        if data and not data.isspace()
    ]


def refused_dead_letters(refused: list[Refused], failed_at: datetime) -> list[Row]:
    """``store_refused`` dead-letter rows for the lines the engine refused one by one.

    ``dead_letters`` is idempotent on the origin (the source coordinates, unless a replay
    set ``leadloom-origin``) and the raw bytes' hash. The refused rows of one record make
    one dead letter (raw bytes: those rows, newline-joined, in order; detail: the first
    refusal and how many rows). A redelivered record refuses the same rows and writes the
    same key again.
    """
    by_record: dict[Row, list[Refused]] = {}
    for item in refused:
        by_record.setdefault(item.line.row, []).append(item)
    letters = []
    for record, items in by_record.items():
        raw = b"\n".join(item.line.data for item in items)
        detail = items[0].detail
        if len(items) > 1:
            detail = f"{len(items)} rows refused; first: {detail}"
        rejected = Rejected(Reason.STORE_REFUSED, detail, _event_id(items[0].line.data))
        row = dead_letter_row(rejected, record.source, raw, failed_at)
        letters.append(Row(record.topic, record.partition, record.offset, orjson.dumps(row)))
    return letters


def _event_id(line: bytes) -> str | None:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    event_id = value.get("event_id") if isinstance(value, dict) else None
    return event_id if isinstance(event_id, str) else None


class _Outage:
    """One resource's fault state: logged when it starts, each minute, and when it ends."""

    def __init__(self, what: str, faults: dict[str, str]) -> None:
        self.what = what
        self.faults = faults
        self.since: float | None = None
        self._logged_at = 0.0

    def failed(self, doing: str, exc: BaseException) -> None:
        now = time.monotonic()
        reason = f"{doing}: {describe_error(exc)}"
        if self.since is None:
            self.since, self._logged_at = now, now
            log.warning("%s failing (%s); retrying until it works", self.what, reason)
        elif now - self._logged_at >= STILL_FAILING_LOG_S:
            self._logged_at = now
            log.warning("%s still failing after %.0fs (%s)", self.what, now - self.since,
                        reason)
        self.faults[self.what] = reason

    def ok(self) -> None:
        if self.since is not None:
            log.warning("%s working again after %.1fs", self.what, time.monotonic() - self.since)
            self.since = None
            self.faults.pop(self.what, None)


@dataclass
class SinkStats:
    messages_by_table: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    batches: int = 0
    insert_retries: int = 0
    bisect_inserts: int = 0  # inserts of pieces of a refused or oversized batch
    store_refused_rows: int = 0  # rows the engine refused one by one (now dead letters)
    pending_migration_retries: int = 0  # inserts held for a column the store lacks yet
    commit_failures: int = 0
    consumer_restarts: int = 0
    last_flush_at: float = 0.0


_STOPPED = object()  # an insert gave up because the sink is stopping


class Sink:
    """Derived topics -> ClickHouse; see the module docstring for the contract."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        topics = settings.topics
        self._table_of_topic = {
            topics.leads_minute: LEADS_MINUTE_PARTS.name,
            topics.dead_letters: DEAD_LETTER_TABLE.name,
            topics.buyer_events: BUYER_EVENTS_TABLE.name,
            topics.buyer_merges: BUYER_MERGES_TABLE.name,
            topics.matches: MATCHES_TABLE.name,
            topics.surge_alerts: SURGE_ALERTS_TABLE.name,
            topics.metrics: PIPELINE_METRICS.name,
        }
        self.topics = topics.sink()
        self._raw_topics = frozenset(topics.name(spec) for spec in RAW_TOPICS)
        self._raw_assigned: list[TopicPartition] = []
        self._markers_checked_at = 0.0
        self._min_partitions = {t: topics.all()[t].partitions for t in self.topics}
        self.stats = SinkStats()
        # "Kafka", "offset commits", "the store" -> the current fault, while one lasts
        self.faults: dict[str, str] = {}
        self._kafka = _Outage("Kafka", self.faults)
        # Separate from reaching Kafka: a broker can answer and still refuse commits (e.g.
        # while a dead member of the sink's group has not timed out yet).
        self._commits = _Outage("offset commits", self.faults)
        self._store_outage = _Outage("the store", self.faults)
        self._migration_wait = _Outage("pending migration", self.faults)
        self._stop = threading.Event()
        self.consumer: KafkaConsumer | None = None
        # Next offset to read per partition (past everything polled) and the offsets up to
        # which everything is stored; both outlive a consumer that is replaced.
        self._positions: dict[TopicPartition, int] = {}
        self._stored: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._commit_delay = RETRY_FIRST_S
        self._commit_at = 0.0
        self._partitions_checked_at = 0.0
        self._contact_at = time.monotonic()  # last answer from the broker
        # The sink's own metrics (streams.metrics): rows waiting for the next metrics insert
        # and the latencies of the current interval.
        self._metric_rows: list[bytes] = []
        self._latency = LatencyWindow()
        self._metrics_at = time.monotonic()
        self._metrics_interval_start = datetime.now(UTC)

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    # -- the loop --------------------------------------------------------------------
    def run(self) -> None:
        """Consume until :meth:`stop`; flush a batch when it is full or has lingered.

        Returns only when stopped; Kafka and store faults are retried inside.
        """
        linger_s = self.settings.sink_linger_ms / 1000
        batch: dict[str, list[Row]] = defaultdict(list)
        size = 0
        started = time.monotonic()
        try:
            while not self._stop.is_set():
                if self.consumer is None:
                    self.consumer = self._connect()
                    if self.consumer is None:
                        return  # stopped while connecting
                polled = self._poll()
                for tp, records in polled.items():
                    for record in records:
                        self._route(record, batch)
                    size += len(records)
                    self._positions[tp] = records[-1].offset + 1
                now = time.monotonic()
                if size and (size >= self.settings.sink_batch_max or now - started >= linger_s):
                    if not self._flush(batch):
                        return  # stopped while retrying: nothing committed, nothing lost
                    self._stored.update(self._positions)
                    self._commit()
                    batch, size, started = defaultdict(list), 0, time.monotonic()
                elif not size:
                    started = now
                    self._pass_control_records()
                    if self._stored != self._committed and now >= self._commit_at:
                        self._commit()  # one that failed earlier (e.g. during an outage)
                    elif now - self._contact_at >= PROBE_S:
                        self._probe()
                    if now - self._partitions_checked_at >= PARTITION_CHECK_S:
                        self._assign_new_partitions()
                if now - self._metrics_at >= INTERVAL_S:
                    self._write_metrics()
        finally:
            self._close_consumer()
            if self._store_outage.since is None:
                self._write_metrics()  # once, best effort: the last interval's figures

    def _route(self, record: ConsumerRecord, batch: dict[str, list[Row]]) -> None:
        """Add a raw record to the archive's batch as it is; add a derived record to its
        table's batch: one without a known table is a dead letter, an empty one has
        nothing to store."""
        if record.topic in self._raw_topics:
            row = archive_row(record.topic, record.partition, record.offset, record.timestamp,
                              record.key, record.value, record.headers or ())
            batch[RAW_ARCHIVE.name].append(
                Row(record.topic, record.partition, record.offset, orjson.dumps(row)))
            return
        value = record.value
        if not value or value.isspace():
            return
        table = self._table_of_topic.get(record.topic)
        if table is None:
            header = next((v for k, v in record.headers or () if k == "table"), None)
            name = header.decode("utf-8", "replace") if header is not None else None
            if name in _SINK_TABLES:
                table = name
            else:
                source = SourceRef(record.topic, record.partition, record.offset)
                why = ("derived record without a 'table' header" if name is None
                       else f"derived record names unknown table {name[:80]!r}")
                log.error("%s: %s; dead-lettered", source, why)
                row = dead_letter_row(Rejected(Reason.WRONG_TOPIC, why), source, value,
                                      datetime.now(UTC))
                table, value = DEAD_LETTER_TABLE.name, orjson.dumps(row)
        batch[table].append(Row(record.topic, record.partition, record.offset, value))

    # -- Kafka -----------------------------------------------------------------------
    def _new_consumer(self) -> KafkaConsumer:
        return KafkaConsumer(
            bootstrap_servers=bootstrap_list(self.settings),
            group_id=self.settings.sink_group,
            client_id=f"{self.settings.namespace}-sink",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # The archive keeps what a stream worker may process: committed records only
            # (an aborted transaction's records are never delivered to either).
            isolation_level="read_committed",
            max_poll_records=self.settings.sink_batch_max,
            fetch_max_bytes=64 * 1024 * 1024,
            max_partition_fetch_bytes=8 * 1024 * 1024,
            fetch_max_wait_ms=100,
            # Bounded waits keep stop() prompt during an outage, and a short reconnect
            # backoff resumes within a second or two of the broker's return (the default
            # backoff grows to 30 s).
            bootstrap_timeout_ms=5_000,
            request_timeout_ms=10_000,
            reconnect_backoff_max_ms=1_000,
            metadata_max_age_ms=30_000,
        )

    def _connect(self) -> KafkaConsumer | None:
        """A consumer assigned every partition of the sink topics, at the sink's positions
        (or the committed offsets, or the earliest); None if stopped first."""
        delay = RETRY_FIRST_S
        strict_until = time.monotonic() + METADATA_WAIT_S
        while not self._stop.is_set():
            consumer = None
            try:
                consumer = self._new_consumer()
                partitions = self._all_partitions(consumer, time.monotonic() < strict_until)
                if partitions is not None:
                    self._assign(consumer, partitions)
                    self._kafka.ok()
                    return consumer
            except Exception as exc:  # any Kafka client fault: retried, never fatal
                self._kafka.failed("connecting the sink consumer", exc)
            if consumer is not None:
                _close_quietly(consumer)
            if self._stop.wait(delay):
                return None
            delay = min(delay * 2, RETRY_MAX_S)
        return None

    def _all_partitions(self, consumer: KafkaConsumer, strict: bool = True
                        ) -> list[TopicPartition] | None:
        """Every partition of the sink topics, once metadata shows each topic with the
        partitions the registry gives it (None until then). Not ``strict``: any topic that
        shows partitions will do (a topic created elsewhere with fewer)."""
        found: list[TopicPartition] = []
        for topic in self.topics:
            partitions = consumer.partitions_for_topic(topic) or set()
            if not partitions or (strict and len(partitions) < self._min_partitions[topic]):
                log.info("%s: %d partitions in metadata so far", topic, len(partitions))
                return None
            found += [TopicPartition(topic, p) for p in sorted(partitions)]
        return found

    def _assign(self, consumer: KafkaConsumer, partitions: list[TopicPartition]) -> None:
        consumer.assign(partitions)
        self._raw_assigned = [tp for tp in partitions if tp.topic in self._raw_topics]
        for tp in partitions:
            if tp in self._positions:
                consumer.seek(tp, self._positions[tp])
        self._partitions_checked_at = time.monotonic()

    def _assign_new_partitions(self) -> None:
        """Take up partitions added to a sink topic while running (a group would rebalance)."""
        assert self.consumer is not None
        self._partitions_checked_at = time.monotonic()
        try:
            partitions = self._all_partitions(self.consumer, strict=False)
            if partitions and set(partitions) != self.consumer.assignment():
                log.warning("sink topics now have %d partitions; assigning them all",
                            len(partitions))
                self._assign(self.consumer, partitions)
        except Exception as exc:  # metadata during an outage: try again next time
            self._kafka.failed("reading sink topic metadata", exc)

    def _poll(self) -> dict:
        assert self.consumer is not None
        try:
            polled = self.consumer.poll(timeout_ms=100, max_records=self.settings.sink_batch_max)
        except Exception as exc:  # a consumer that raises is replaced, at our positions
            self._kafka.failed("polling", exc)
            self.stats.consumer_restarts += 1
            self._close_consumer()
            self._stop.wait(RETRY_FIRST_S)
            return {}
        if polled:
            self._contact_at = time.monotonic()
            self._kafka.ok()
        return polled

    def _probe(self) -> None:
        """Ask the broker for the end offsets: an idle consumer's poll fails silently, so
        this is how an outage with nothing to consume is noticed (and reported)."""
        assert self.consumer is not None
        self._contact_at = time.monotonic()
        try:
            self.consumer.end_offsets(list(self.consumer.assignment()),
                                      timeout_ms=PROBE_S * 1000)
        except Exception as exc:  # an outage: reported through faults, retried next time
            self._kafka.failed("reaching the broker", exc)
            return
        self._kafka.ok()

    def _pass_control_records(self) -> None:
        """With nothing pending, move stored positions up to the consumer's own: past the
        markers and aborted records of transactions on the raw topics (the archive), which
        hold offsets but are never returned, so the commit reaches the partition's end."""
        now = time.monotonic()
        if self.consumer is None or self.faults or now < self._markers_checked_at + PROBE_S:
            return  # position() may ask the broker: not during a fault, at most every 5 s
        self._markers_checked_at = now
        for tp in self._raw_assigned:
            try:
                position = self.consumer.position(tp, timeout_ms=POSITION_TIMEOUT_MS)
            except Exception:  # noqa: BLE001 - an unknown position is read at the next check
                # No answer: the broker may be gone. Asking for the other partitions would
                # cost the limit each (seconds with forty raw partitions) before an outage
                # is noticed; the probe, due now, tells an outage from a slow answer.
                self._contact_at = 0.0
                return
            if position is not None and position > self._stored.get(tp, -1):
                self._positions[tp] = self._stored[tp] = position

    def _commit(self) -> None:
        """Commit the offsets below which everything is stored; a failure is retried later."""
        offsets = {tp: OffsetAndMetadata(offset, "", -1) for tp, offset in self._stored.items()
                   if self._committed.get(tp) != offset}
        if not offsets or self.consumer is None:
            return
        try:
            self.consumer.commit(offsets, timeout_ms=COMMIT_TIMEOUT_MS)
        except Exception as exc:  # the rows are stored; committing later is enough
            self.stats.commit_failures += 1
            self._commits.failed("committing offsets", exc)
            self._commit_at = time.monotonic() + self._commit_delay
            self._commit_delay = min(self._commit_delay * 2, RETRY_MAX_S)
            return
        self._committed.update({tp: meta.offset for tp, meta in offsets.items()})
        self._commit_delay = RETRY_FIRST_S
        self._contact_at = time.monotonic()
        self._commits.ok()
        self._kafka.ok()

    def _close_consumer(self) -> None:
        if self.consumer is not None:
            _close_quietly(self.consumer)
            self.consumer = None

    # -- the store -------------------------------------------------------------------
    def _flush(self, batch: dict[str, list[Row]]) -> bool:
        """Store every table of ``batch``, the raw event tables first, dead letters last
        (with the rows the engine refused); False if stopped before all is stored."""
        refused: list[Refused] = []
        for table in flush_order(batch):
            rows = batch[table]
            began = time.monotonic()
            got = self._store_rows(table, rows)
            if got is None:
                return False
            self._measured(table, rows, began)
            refused += got
            self.stats.messages_by_table[table] += len(rows)
        letters = list(batch.get(DEAD_LETTER_TABLE.name, ()))
        incoming = len(letters)
        letters += self._dead_letters(refused)
        if letters:
            began = time.monotonic()
            got = self._store_rows(DEAD_LETTER_TABLE.name, letters)
            if got is None:
                return False
            self._measured(DEAD_LETTER_TABLE.name, letters, began)
            if got:
                # Dead letters from the dead-letter topic that the engine refused: recorded
                # as store_refused in turn. Those rows are ours and well-formed; if even they
                # were refused, the table itself is broken, so they are retried, not dropped.
                again = self._dead_letters(got)
                if not self._insert_until_stored(DEAD_LETTER_TABLE.name, again):
                    return False
            self.stats.messages_by_table[DEAD_LETTER_TABLE.name] += incoming
        self.stats.batches += 1
        self.stats.last_flush_at = time.time()
        return True

    # -- the sink's own metrics ---------------------------------------------------------
    def _measured(self, table: str, rows: list[Row], began: float) -> None:
        """Note one stored table insert: its time, and (raw event tables) the end-to-end
        latency of each event in it."""
        stored = time.time()
        at = datetime.fromtimestamp(stored, UTC)
        self._metric_rows.append(metric_row(
            at, MetricSource.SINK, Metric.SINK_BATCH_MS,
            round((time.monotonic() - began) * 1000, 3), topic=table))
        if table in _EVENT_TABLE_NAMES:
            stored_ms = round(stored * 1000)
            for row in rows:
                self._latency.stored(stored_ms, received_ms(row.value))

    def _write_metrics(self) -> None:
        """Store the sink's metric rows of the interval just ended, in one insert; on a
        failure they wait for the next interval (the oldest dropped beyond the backlog)."""
        self._metrics_at = time.monotonic()
        now = datetime.now(UTC)
        interval = (now - self._metrics_interval_start).total_seconds()
        self._metrics_interval_start = now
        self._metric_rows += self._latency.rows(now, interval)
        if not self._metric_rows:
            return
        try:
            self.store.insert_json_rows(PIPELINE_METRICS.name, self._metric_rows)
        except Exception as exc:  # metrics never hold up the data: kept, tried next time
            if classify_insert_error(exc) is not InsertFault.INFRASTRUCTURE:
                # Our own rows refused: a broken table, not a passing fault; keeping them
                # would only repeat the refusal every interval.
                log.error("the store refused %d metric rows (%s); dropped",
                          len(self._metric_rows), refusal_detail(exc))
                self._metric_rows = []
                return
            del self._metric_rows[:-METRICS_BACKLOG_ROWS]
            log.warning("storing %d metric rows failed (%s); trying again in %.0fs",
                        len(self._metric_rows), describe_error(exc), INTERVAL_S)
            return
        self._metric_rows = []

    def _dead_letters(self, refused: list[Refused]) -> list[Row]:
        if not refused:
            return []
        self.stats.store_refused_rows += len(refused)
        for item in refused:
            log.error("%s: the store refused a row of table data (%s); dead-lettered",
                      item.line.row.source, item.detail)
        return refused_dead_letters(refused, datetime.now(UTC))

    def _store_rows(self, table: str, rows: list[Row]) -> list[Refused] | None:
        """Insert ``rows`` into ``table``: the rows the engine refused one by one (stored:
        all others), or None if stopped first. Only a refused insert is split into lines."""
        error = self._insert(table, [row.value for row in rows])
        if error is None:
            return []
        if error is _STOPPED:
            return None
        assert isinstance(error, BaseException)
        lines = split_lines(rows)
        log.warning("%s refused an insert of %d rows (%s); bisecting", table, len(lines),
                    refusal_detail(error))
        return self._bisect(table, lines, error)

    def _bisect(self, table: str, lines: list[Line], error: BaseException
                ) -> list[Refused] | None:
        """Store what the engine accepts of ``lines`` (refused as a whole with ``error``)."""
        if len(lines) == 1:
            if classify_insert_error(error) is InsertFault.REFUSED_ROWS:
                return [Refused(lines[0], refusal_detail(error))]
            # One row cannot exceed a size limit by itself: the engine is short of something.
            stored = self._insert_until_stored(table, [lines[0].row._replace(value=lines[0].data)])
            return [] if stored else None
        mid = len(lines) // 2
        refused: list[Refused] = []
        for half in (lines[:mid], lines[mid:]):
            self.stats.bisect_inserts += 1
            half_error = self._insert(table, [line.data for line in half])
            if half_error is _STOPPED:
                return None
            if half_error is not None:
                assert isinstance(half_error, BaseException)
                got = self._bisect(table, half, half_error)
                if got is None:
                    return None
                refused += got
        return refused

    def _insert(self, table: str, values: list[bytes]) -> BaseException | object | None:
        """One insert, retried with backoff while the fault is infrastructure: None when
        stored, the engine's error when it refuses rows or the size, ``_STOPPED``."""
        delay = RETRY_FIRST_S
        while True:
            try:
                self.store.insert_json_rows(table, values)
            except Exception as exc:  # classified below: data refusal or infrastructure
                fault = classify_insert_error(exc)
                lacking = self._lacking_columns(table, exc) if fault is InsertFault.REFUSED_ROWS \
                    else []
                if lacking:
                    self._store_outage.ok()
                    self.stats.pending_migration_retries += 1
                    self._migration_wait.failed(
                        f"{table} has no column {', '.join(lacking)} yet; holding"
                        f" {len(values)} rows until its migration is applied", exc)
                    if self._apply_online_migrations():
                        continue  # the column may exist now: at once
                    if self._stop.wait(delay):
                        return _STOPPED
                    delay = min(delay * 2, RETRY_MAX_S)
                    continue
                if fault is not InsertFault.INFRASTRUCTURE:
                    self._store_outage.ok()
                    self._migration_wait.ok()
                    return exc
                self.stats.insert_retries += 1
                self._store_outage.failed(f"inserting {len(values)} rows into {table}", exc)
                if self._stop.wait(delay):
                    return _STOPPED
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            self._store_outage.ok()
            self._migration_wait.ok()
            return None

    def _lacking_columns(self, table: str, exc: BaseException) -> list[str]:
        """The columns of ``table`` that this code writes (the registry's), that the
        engine's refusal ``exc`` names as unknown and that the store does not have: a
        migration is pending. [] for any other refusal (those rows are dead-lettered)."""
        code, message = _engine_error(exc)
        spec = TABLES_BY_NAME.get(table)
        if code != _INCORRECT_DATA or spec is None or "unknown field" not in message.lower():
            return []
        named = [c for c in spec.columns if re.search(rf"\b{re.escape(c)}\b", message)]
        if not named:
            return []
        try:  # the engine's own list of the table's columns decides, not the message
            present = {str(r[0]) for r in self.store.query(
                "SELECT name FROM system.columns WHERE database ="
                f" '{self.store.database}' AND table = '{table}'").rows}
        except Exception as exc2:  # cannot tell now: hold the rows and ask again
            log.warning("reading the columns of %s failed (%s)", table, describe_error(exc2))
            return named
        return [c for c in named if c not in present]

    def _apply_online_migrations(self) -> bool:
        """Apply the pending online migrations now; True if any was applied."""
        try:
            applied = self.store.apply_online_migrations()
        except Exception as exc:  # tried again on the next retry
            log.warning("applying pending migrations failed (%s)", describe_error(exc))
            return False
        if applied:
            log.warning("applied migration(s) %s while running", applied)
        return bool(applied)

    def _insert_until_stored(self, table: str, rows: list[Row]) -> bool:
        """Insert ``rows`` that must not be dead-lettered: every failure is retried."""
        delay = RETRY_FIRST_S
        while True:
            error = self._insert(table, [row.value for row in rows])
            if error is None:
                return True
            if error is _STOPPED:
                return False
            log.error("%s refused %d rows that cannot be dead-lettered (%s); retrying",
                      table, len(rows), refusal_detail(error))  # type: ignore[arg-type]
            self.stats.insert_retries += 1
            if self._stop.wait(delay):
                return False
            delay = min(delay * 2, RETRY_MAX_S)


def _close_quietly(consumer: KafkaConsumer) -> None:
    try:
        consumer.close(autocommit=False, timeout_ms=2_000)
    except Exception as exc:  # closing a consumer of an unreachable broker may fail: fine
        log.debug("closing the sink consumer: %s", exc)


def _first_line(text: str) -> str:
    text = text.strip()
    return text.splitlines()[0][:200] if text else ""

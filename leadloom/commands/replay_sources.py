"""Where a rebuild reads raw messages: Kafka (start offsets found by timestamp) or the raw
archive. Both give, per raw partition, its messages in offset order as
:class:`streams.replay.TimedMessage`, for :func:`streams.replay.replay_order` to merge, and
the number of messages they will give (for the progress bar).

- **Kafka** (:class:`KafkaSource`): one ``read_committed`` consumer assigned every raw
  partition; per partition from the first offset at or after ``since`` (the consumer's
  ``offsets_for_times``; the partition's start without one) up to the end offset *as the
  rebuild starts* (or the first offset at or after ``until``): messages published while it
  runs are not part of it. Each partition is read ahead by up to ``READ_AHEAD`` messages
  when the merge needs its next one (the consumer assigned that partition alone while it
  reads), so memory stays bounded whatever the merge takes from where.
- **Archive** (:class:`ArchiveSource`): ``raw_archive`` one (topic, partition) at a time in
  offset order, in pages of :data:`PAGE_ROWS`, by Kafka timestamp in [since, until).

Failure modes: ``KafkaUnavailable`` when no broker answers; ``SourceError`` with a
one-line reason otherwise (a namespace without raw topics, an empty archive).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from datetime import datetime

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from core.kafka import KafkaUnavailable, bootstrap_list
from core.reads import QueryResult
from core.settings import Settings
from schemas.registry import RAW_ARCHIVE, RAW_TOPICS
from streams.batch import RawMessage
from streams.replay import TimedMessage

PAGE_ROWS = 20_000
READ_AHEAD = 20_000  # messages buffered per partition before it is paused
POLL_MS = 500


class SourceError(RuntimeError):
    """A source that cannot be read (one line: why, and what to do)."""


def _ms(when: datetime | None) -> int | None:
    return None if when is None else int(when.timestamp() * 1000)


class KafkaSource:
    """The raw topics of ``settings``' namespace between two times (module docstring)."""

    name = "kafka"

    def __init__(self, settings: Settings, since: datetime | None = None,
                 until: datetime | None = None) -> None:
        self.topics = [settings.topics.name(spec) for spec in RAW_TOPICS]
        try:
            self.consumer = KafkaConsumer(
                bootstrap_servers=bootstrap_list(settings), group_id=None,
                client_id=f"{settings.namespace}-replay", enable_auto_commit=False,
                isolation_level="read_committed", max_poll_records=5_000,
                fetch_max_bytes=64 * 1024 * 1024, max_partition_fetch_bytes=8 * 1024 * 1024,
                request_timeout_ms=30_000)
        except KafkaError as exc:
            raise KafkaUnavailable(f"no Kafka broker at {settings.kafka_bootstrap}: start one"
                                   " with 'leadloom infra up'") from exc
        partitions = [TopicPartition(t, p) for t in self.topics
                      for p in sorted(self.consumer.partitions_for_topic(t) or ())]
        if not partitions:
            self.consumer.close()
            raise SourceError(f"no raw topics of namespace {settings.namespace} on the broker")
        self.partitions = partitions
        self.start = self._offsets_at(since, self.consumer.beginning_offsets(partitions))
        ends = self.consumer.end_offsets(partitions)
        self.end = self._offsets_at(until, ends) if until is not None else ends
        self._next = dict(self.start)

    def _offsets_at(self, when: datetime | None, fallback: dict) -> dict:
        if when is None:
            return dict(fallback)
        found = self.consumer.offsets_for_times({tp: _ms(when) for tp in self.partitions})
        ends = self.consumer.end_offsets(self.partitions)
        return {tp: (found[tp].offset if found.get(tp) is not None else ends[tp])
                for tp in self.partitions}

    def total(self) -> int:
        """Offsets in range: an upper bound of the messages (transaction markers and
        aborted records hold offsets too)."""
        return sum(max(self.end[tp] - self.start[tp], 0) for tp in self.partitions)

    def ranges(self) -> dict[str, list[int]]:
        """``topic[partition]`` -> [start, end) offsets."""
        return {f"{tp.topic}[{tp.partition}]": [self.start[tp], self.end[tp]]
                for tp in self.partitions}

    def partition_streams(self) -> list[Iterator[TimedMessage]]:
        return [self._stream(tp) for tp in self.partitions if self.end[tp] > self.start[tp]]

    def _stream(self, tp: TopicPartition) -> Iterator[TimedMessage]:
        while self._next[tp] < self.end[tp]:
            yield from self._fill(tp)

    def _fill(self, tp: TopicPartition) -> list[TimedMessage]:
        """The next up to READ_AHEAD messages of ``tp``: the consumer is assigned that
        partition alone while it reads (no pause/resume bookkeeping across partitions)."""
        self.consumer.assign([tp])
        self.consumer.seek(tp, self._next[tp])
        out: list[TimedMessage] = []
        while len(out) < READ_AHEAD and self._next[tp] < self.end[tp]:
            try:
                records = self.consumer.poll(timeout_ms=POLL_MS).get(tp, [])
            except KafkaError as exc:
                raise KafkaUnavailable(f"reading {tp.topic}[{tp.partition}] failed: {exc}"
                                       ) from exc
            for r in records:
                if r.offset >= self.end[tp]:
                    break
                out.append(TimedMessage(r.timestamp, RawMessage(
                    r.topic, r.partition, r.offset, r.value, dict(r.headers or ()))))
            # past the records read, and past transaction markers and aborted records
            self._next[tp] = self.consumer.position(tp)
        return out

    def close(self) -> None:
        self.consumer.close()


Query = Callable[[str], QueryResult]


class ArchiveSource:
    """``raw_archive`` of ``database`` between two Kafka timestamps (module docstring)."""

    name = "archive"

    def __init__(self, query: Query, database: str, settings: Settings,
                 since: datetime | None = None, until: datetime | None = None) -> None:
        self.query, self.database = query, database
        topics = ", ".join(f"'{settings.topics.name(spec)}'" for spec in RAW_TOPICS)
        bounds = [f"topic IN ({topics})"]
        if since is not None:
            bounds.append(f"kafka_timestamp >= fromUnixTimestamp64Milli({_ms(since)}, 'UTC')")
        if until is not None:
            bounds.append(f"kafka_timestamp < fromUnixTimestamp64Milli({_ms(until)}, 'UTC')")
        self.where = " AND ".join(bounds)
        table = f"{database}.{RAW_ARCHIVE.name}"
        rows = query(f"SELECT topic, partition, count(), min(offset), max(offset)"
                     f" FROM (SELECT topic, partition, offset FROM {table} WHERE {self.where}"
                     f" LIMIT 1 BY topic, partition, offset)"
                     f" GROUP BY topic, partition ORDER BY topic, partition").rows
        if not rows:
            raise SourceError(f"the raw archive of {database} holds no message of namespace"
                              f" {settings.namespace} in that range")
        self._partitions = [(str(t), int(p)) for t, p, *_ in rows]
        self._count = sum(int(n) for _, _, n, _, _ in rows)
        self._ranges = {f"{t}[{p}]": [int(lo), int(hi) + 1] for t, p, _, lo, hi in rows}

    def total(self) -> int:
        return self._count

    def ranges(self) -> dict[str, list[int]]:
        return dict(self._ranges)

    def partition_streams(self) -> list[Iterator[TimedMessage]]:
        return [self._stream(t, p) for t, p in self._partitions]

    def _stream(self, topic: str, partition: int) -> Iterator[TimedMessage]:
        after = -1
        table = f"{self.database}.{RAW_ARCHIVE.name}"
        while True:
            page = self.query(
                f"SELECT offset, toUnixTimestamp64Milli(kafka_timestamp), key_base64, value,"
                f" value_base64, headers FROM {table}"
                f" WHERE {self.where} AND topic = '{topic}' AND partition = {partition}"
                f" AND offset > {after} ORDER BY offset LIMIT 1 BY offset"
                f" LIMIT {PAGE_ROWS}").rows
            for offset, stamp, _key, value, encoded, headers in page:
                raw = base64.b64decode(value) if encoded else str(value).encode("utf-8")
                yield TimedMessage(int(stamp), RawMessage(
                    topic, partition, int(offset), raw,
                    dict(_header(h) for h in headers)))
                after = int(offset)
            if len(page) < PAGE_ROWS:
                return

    def close(self) -> None:
        pass


def _header(h: object) -> tuple[str, bytes]:
    """One archived header: a named tuple comes back as a dict, else as a tuple."""
    if isinstance(h, dict):
        return str(h["name"]), base64.b64decode(h["value_base64"])
    pair: tuple[str, str] = h  # type: ignore[assignment]
    return str(pair[0]), base64.b64decode(pair[1])

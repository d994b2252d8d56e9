"""The simulator's batch publishing: simulated messages onto the raw topics, fast or paced,
never losing one silently. (One event at a time, with per-message results, is
``producers.publisher.Publisher``: the path other producers use.)

``publish`` does not block per message: every ``send`` gets a failure callback, the
producer is flushed once at the end (after which every send has completed, one way or the
other), and any failure raises ``PublishError`` (checked every 5000 messages too).

Speed with kafka-python (pure Python) comes from three things: keyed partitioning computed
once per key (the same murmur2 rule as kafka-python's default partitioner, so a badge lands
on the same partition as with any other producer; the keys themselves are the registry's,
set by the simulator with ``schemas.registry.key_of``), a long linger when unthrottled
(``Settings.bulk_linger_ms`` and ``bulk_batch_bytes``: fewer sender wake-ups; paced runs
keep the factory's short ``producer_linger_ms`` for latency), and the ``crc32c``
package (a dependency): without it kafka-python checksums every record batch in pure
Python at ~8 MB/s.

``batch=N`` (> 1) sends events as a gateway that batches them would: consecutive messages
for the same raw topic and destination partition (each keyed as always, the partition of
its key) are joined into one NDJSON message (``streams.lines``: the wire format) of at
most N events and at most ``Settings.max_message_bytes`` (a batch over it would be
dead-lettered whole as oversized). Batches are per partition, so per-key order holds;
a batch goes out when full, when a paced run's linger (:data:`BATCH_LINGER_S`) has passed
since its first event, and at the end. A message that cannot share one (over the limit by
itself, such as an oversized poison message, or holding a newline) goes alone, after the
partition's pending batch. Malformed messages travel inside batches like any other (a bad
line among good ones): the ground truth is the same either way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from kafka.partitioner.default import murmur2

from core import kafka as llkafka
from core.settings import Settings
from producers.simulator.fair import restamp
from producers.simulator.recorder import MALFORMED, OutgoingMessage
from schemas.registry import RAW_TOPIC_BY_EVENT_TYPE

PROGRESS_EVERY = 5000
# A paced run's batch goes out at the latest this long after its first event (a gateway's
# linger): batching must not hold events back for long at low rates.
BATCH_LINGER_S = 0.1
_MIN_SLEEP_S = 0.001
# Keys memoised at most, then the memo starts over: bounds its memory (~150 bytes an
# entry) while holding every key of a fair day (tens of thousands of badges) many times.
_MAX_MEMO_KEYS = 500_000


def bulk_tuning(settings: Settings) -> dict[str, object]:
    """Producer overrides for unthrottled publishing (from the settings)."""
    return {"linger_ms": settings.bulk_linger_ms, "batch_size": settings.bulk_batch_bytes}


class PublishError(RuntimeError):
    """Some messages were not acknowledged by the broker."""


@dataclass
class PublishReport:
    """How many events went out, by kind, in how many Kafka messages, and how long it
    took (``sent`` counts events: with ``batch=1`` one a message)."""

    sent: int
    by_kind: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0
    kafka_messages: int = 0

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed_s if self.elapsed_s > 0 else 0.0


class _Failures(list):
    """Exceptions of failed sends, appended by errbacks on the producer's I/O thread."""

    def check(self, sent: int) -> None:
        if self:
            raise PublishError(
                f"{len(self)} of {sent} messages failed; first: {self[0]!r}"
            ) from self[0]


class _Partitioner:
    """kafka-python's default rule for keyed records, memoised per (topic, key)."""

    def __init__(self, producer: object) -> None:
        self._producer = producer
        self._partitions: dict[str, list[int]] = {}
        self._cache: dict[tuple[str, bytes], int] = {}

    def __call__(self, topic: str, key: bytes | None) -> int | None:
        if key is None:
            return None  # let the producer spread unkeyed records
        hit = self._cache.get((topic, key))
        if hit is not None:
            return hit
        parts = self._partitions.get(topic)
        if parts is None:
            found = self._producer.partitions_for(topic)  # type: ignore[attr-defined]
            parts = self._partitions[topic] = sorted(found)
        if len(self._cache) > _MAX_MEMO_KEYS:
            self._cache.clear()
        partition = self._cache[(topic, key)] = parts[(murmur2(key) & 0x7FFFFFFF) % len(parts)]
        return partition


class _Batches:
    """Pending NDJSON batches per (topic, partition), sent through ``send`` (module
    docstring). ``partition`` None: an unkeyed event, spread by the producer."""

    def __init__(self, size: int, max_bytes: int,
                 send: Callable[[str, int | None, bytes | None, bytes], None]) -> None:
        self.size, self.max_bytes, self._send = size, max_bytes, send
        # (topic, partition) -> (lines, bytes so far, key of the first, started monotonic)
        self._open: dict[tuple[str, int | None], tuple[list[bytes], int, bytes | None,
                                                       float]] = {}

    def add(self, topic: str, partition: int | None, key: bytes | None, value: bytes) -> None:
        slot = (topic, partition)
        if len(value) >= self.max_bytes or b"\n" in value:
            self._flush(slot)  # goes alone, after what the partition already holds
            self._send(topic, partition, key, value)
            return
        lines, size, first_key, started = self._open.get(slot) or ([], 0, key, 0.0)
        if lines and size + 1 + len(value) > self.max_bytes:
            self._flush(slot)
            lines, size, first_key = [], 0, key
        if not lines:
            started = time.monotonic()
        lines.append(value)
        size += len(value) + (1 if len(lines) > 1 else 0)  # NDJSON: a newline between lines
        self._open[slot] = (lines, size, first_key, started)
        if len(lines) >= self.size:
            self._flush(slot)

    def flush_older(self, linger_s: float) -> None:
        """Send every batch whose first event waited ``linger_s`` or more."""
        cutoff = time.monotonic() - linger_s
        for slot in [s for s, held in self._open.items() if held[3] <= cutoff]:
            self._flush(slot)

    def flush_all(self) -> None:
        for slot in list(self._open):
            self._flush(slot)

    def _flush(self, slot: tuple[str, int | None]) -> None:
        held = self._open.pop(slot, None)
        if held is not None:
            # the first event's key: an unkeyed batch stays unkeyed, a keyed one carries a
            # key of its partition (the partition is explicit anyway)
            self._send(slot[0], slot[1], held[2], b"\n".join(held[0]))


def publish(messages: Iterable[OutgoingMessage], settings: Settings, *,
            rate: float | None = None, progress: Callable[[int], None] | None = None,
            restamp_now: bool = False, batch: int = 1) -> PublishReport:
    """Send ``messages`` in order to ``settings.topics.raw(message.event_type)``.

    ``rate`` paces the sends to that many events per second (on a schedule, so pauses
    do not accumulate drift); ``None`` sends as fast as the producer takes them.
    ``progress`` is called with the running count of events every 5000 and at the end.
    ``restamp_now`` sets occurred_at/received_at of valid and duplicate messages to the
    send time (malformed ones go as they are). ``batch``: at most that many events per Kafka
    message (NDJSON, per topic and partition: module docstring); 1, the default, sends one
    event per message as always. Raises ``PublishError`` if any send failed, ``ValueError``
    for a ``rate`` or ``batch`` below 1 event.
    """
    if rate is not None and rate <= 0:
        raise ValueError("rate must be positive (messages per second) or None")
    if batch < 1:
        raise ValueError(f"batch must be at least 1 event per message, not {batch}")
    llkafka.ensure_topics(settings)
    topics = {t: settings.topics.raw(t) for t in RAW_TOPIC_BY_EVENT_TYPE}
    producer = llkafka.producer(settings, **({} if rate is not None else bulk_tuning(settings)))
    partition_of = _Partitioner(producer)
    failures = _Failures()
    by_kind: dict[str, int] = {}
    sent = 0
    kafka_messages = 0

    def send(topic: str, partition: int | None, key: bytes | None, value: bytes) -> None:
        nonlocal kafka_messages
        future = producer.send(topic, value=value, key=key, partition=partition)
        future.add_errback(failures.append)
        kafka_messages += 1

    batches = _Batches(batch, settings.max_message_bytes, send) if batch > 1 else None
    start = time.monotonic()
    try:
        for msg in messages:
            if rate is not None:
                ahead = start + sent / rate - time.monotonic()
                while ahead > _MIN_SLEEP_S:  # in slices of the linger while batches wait
                    time.sleep(ahead if batches is None else min(ahead, BATCH_LINGER_S))
                    if batches is not None:
                        batches.flush_older(BATCH_LINGER_S)
                    ahead = start + sent / rate - time.monotonic()
            topic = topics.get(msg.event_type)
            if topic is None:
                raise ValueError(f"no raw topic for event type {msg.event_type!r}")
            value = msg.value
            if restamp_now and msg.kind != MALFORMED:
                value = restamp(value, datetime.now(UTC))
            if batches is None:
                send(topic, partition_of(topic, msg.key), msg.key, value)
            else:
                batches.add(topic, partition_of(topic, msg.key), msg.key, value)
                if rate is not None:
                    batches.flush_older(BATCH_LINGER_S)
            sent += 1
            by_kind[msg.kind] = by_kind.get(msg.kind, 0) + 1
            if sent % PROGRESS_EVERY == 0:
                failures.check(sent)
                if progress is not None:
                    progress(sent)
        if batches is not None:
            batches.flush_all()
        producer.flush()  # post-condition: every send above has completed or failed
        failures.check(sent)
    finally:
        producer.close(timeout=10)
    elapsed = time.monotonic() - start
    if progress is not None and sent % PROGRESS_EVERY:
        progress(sent)
    return PublishReport(sent, by_kind, elapsed, kafka_messages)

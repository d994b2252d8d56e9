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
    """How many messages went out, by kind, and how long it took."""

    sent: int
    by_kind: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0

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


def publish(messages: Iterable[OutgoingMessage], settings: Settings, *,
            rate: float | None = None, progress: Callable[[int], None] | None = None,
            restamp_now: bool = False) -> PublishReport:
    """Send ``messages`` in order to ``settings.topics.raw(message.event_type)``.

    ``rate`` paces the sends to that many messages per second (on a schedule, so pauses
    do not accumulate drift); ``None`` sends as fast as the producer takes them.
    ``progress`` is called with the running count every 5000 messages and at the end.
    ``restamp_now`` sets occurred_at/received_at of valid and duplicate messages to the
    send time (malformed ones go as they are). Raises ``PublishError`` if any send failed.
    """
    if rate is not None and rate <= 0:
        raise ValueError("rate must be positive (messages per second) or None")
    llkafka.ensure_topics(settings)
    topics = {t: settings.topics.raw(t) for t in RAW_TOPIC_BY_EVENT_TYPE}
    producer = llkafka.producer(settings, **({} if rate is not None else bulk_tuning(settings)))
    partition_of = _Partitioner(producer)
    failures = _Failures()
    by_kind: dict[str, int] = {}
    sent = 0
    start = time.monotonic()
    try:
        for msg in messages:
            if rate is not None:
                ahead = start + sent / rate - time.monotonic()
                if ahead > _MIN_SLEEP_S:
                    time.sleep(ahead)
            topic = topics.get(msg.event_type)
            if topic is None:
                raise ValueError(f"no raw topic for event type {msg.event_type!r}")
            value = msg.value
            if restamp_now and msg.kind != MALFORMED:
                value = restamp(value, datetime.now(UTC))
            future = producer.send(topic, value=value, key=msg.key,
                                   partition=partition_of(topic, msg.key))
            future.add_errback(failures.append)
            sent += 1
            by_kind[msg.kind] = by_kind.get(msg.kind, 0) + 1
            if sent % PROGRESS_EVERY == 0:
                failures.check(sent)
                if progress is not None:
                    progress(sent)
        producer.flush()  # post-condition: every send above has completed or failed
        failures.check(sent)
    finally:
        producer.close(timeout=10)
    elapsed = time.monotonic() - start
    if progress is not None and sent % PROGRESS_EVERY:
        progress(sent)
    return PublishReport(sent, by_kind, elapsed)

"""A long-lived publisher of raw events, for any producer (the HTTP gateway, ops tools).

``Publisher(settings)`` sends one event at a time to the raw topic of its event type,
keyed as the registry decides (:func:`schemas.registry.key_of`), and gives each send a
handle whose :meth:`Sent.result` is the :class:`Delivery`: topic, partition and offset,
or the error. The registry's topics are ensured once, on the first send (or
:meth:`Publisher.start`). Nothing fails silently: a send the client refuses at once (a
message above ``kafka_wire_max_bytes``, no broker metadata in time) returns a handle that
is already failed, a send the broker never acknowledges fails its handle, and every
failure is also logged (``topic[partition]`` and ``event_id``) and collected until the
next :meth:`Publisher.flush`, which returns them.

Delivery is at least once (acks from all in-sync replicas, retries): a retried send can
land twice, which every consumer downstream absorbs (writes are idempotent on
``event_id``). The simulator's batch publishing (``producers.simulator.publish``) is a
separate, throughput-tuned path; this module imports nothing of the simulator.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import orjson
from kafka import KafkaProducer
from kafka.errors import KafkaError

from core import kafka as llkafka
from core.settings import Settings
from schemas.registry import RAW_TOPIC_BY_EVENT_TYPE, key_of

log = logging.getLogger(__name__)

_FROM_EVENT: Any = object()  # sentinel: compute the key from the event


class UnknownEventType(ValueError):
    """The event type names no raw topic (a caller's mistake, raised at once)."""


@dataclass(frozen=True)
class Delivery:
    """The outcome of one send: where it landed, or why it did not."""

    topic: str
    partition: int | None
    offset: int | None
    error: BaseException | None = None
    event_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def where(self) -> str:
        """``topic[partition]@offset`` (``?`` for what is unknown, e.g. after a failure)."""
        part = "?" if self.partition is None else self.partition
        off = "?" if self.offset is None else self.offset
        return f"{self.topic}[{part}]@{off}"


class Sent:
    """The handle of one send; thread-safe to wait on from any thread."""

    def __init__(self, topic: str, event_id: str | None, future: Any = None,
                 error: BaseException | None = None) -> None:
        self.topic = topic
        self.event_id = event_id
        self._future = future  # kafka-python's FutureRecordMetadata, None if refused at once
        self._error = error

    def done(self) -> bool:
        return self._future is None or bool(self._future.is_done)

    def result(self, timeout: float | None = None) -> Delivery:
        """Wait up to ``timeout`` seconds (None: as long as it takes) for the outcome.

        Returns the :class:`Delivery` whether it succeeded or failed; raises
        ``TimeoutError`` only if the outcome is still unknown after ``timeout``."""
        if self._future is None:
            return Delivery(self.topic, None, None, self._error, self.event_id)
        try:
            self._future.get(timeout)
        except KafkaError:
            if not self._future.is_done:
                raise TimeoutError(f"{self.topic}: no outcome after {timeout}s "
                                   f"(event_id {self.event_id})") from None
        return self._delivery()

    def add_done_callback(self, fn: Callable[[Delivery], None]) -> None:
        """Call ``fn(delivery)`` once the outcome is known (at once if it is); it runs on
        the producer's I/O thread, so keep it short and never let it block."""
        if self._future is None:
            fn(self._delivery())
        else:
            self._future.add_both(lambda _outcome: fn(self._delivery()))

    def _delivery(self) -> Delivery:
        future = self._future
        if future is None:
            return Delivery(self.topic, None, None, self._error, self.event_id)
        if future.failed():
            return Delivery(self.topic, None, None, future.exception, self.event_id)
        md = future.value
        return Delivery(md.topic, md.partition, md.offset, None, self.event_id)


class Publisher:
    """One producer for the life of a process; safe to share between threads.

    ``bulk=True`` trades latency for throughput (``Settings.bulk_linger_ms`` and
    ``bulk_batch_bytes``); the default lingers ``producer_linger_ms``. Use as a context
    manager, or call :meth:`close`.
    """

    def __init__(self, settings: Settings, *, bulk: bool = False) -> None:
        self.settings = settings
        self._overrides: dict[str, object] = (
            {"linger_ms": settings.bulk_linger_ms, "batch_size": settings.bulk_batch_bytes}
            if bulk else {}
        )
        self._topics = {t: settings.topics.raw(t) for t in RAW_TOPIC_BY_EVENT_TYPE}
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()
        self._failures: list[Delivery] = []  # appended on the producer's I/O thread
        self._failures_lock = threading.Lock()
        self._closed = False
        self.topics_ensured = 0  # how many times this publisher ensured the topics (<= 1)

    def start(self) -> Publisher:
        """Ensure the registry's topics and connect, unless done already (idempotent)."""
        self._ready()
        return self

    def _ready(self) -> KafkaProducer:
        producer = self._producer
        if producer is not None:
            return producer
        with self._lock:
            if self._closed:
                raise RuntimeError("the publisher is closed")
            if self._producer is None:
                llkafka.ensure_topics(self.settings)
                self.topics_ensured += 1
                self._producer = llkafka.producer(self.settings, **self._overrides)
            return self._producer

    def publish(self, event: Mapping[str, object] | bytes, event_type: str | None = None, *,
                key: bytes | None = _FROM_EVENT,
                headers: Mapping[str, bytes] | None = None) -> Sent:
        """Send one event to the raw topic of its type; return its handle at once.

        ``event`` is a decoded event (serialised as JSON here; its ``event_type`` names
        the topic unless ``event_type`` is given) or the exact bytes to send (then
        ``event_type`` is required). The key is the registry's (:func:`key_of`, from the
        bytes when they parse as a JSON object, else none) unless ``key`` is given.
        Raises :class:`UnknownEventType` for a type with no raw topic; every other
        failure is in the handle's :class:`Delivery`.
        """
        doc: Mapping[str, object] | None
        if isinstance(event, bytes | bytearray | memoryview):
            value = bytes(event)
            doc = _as_object(value)
        else:
            doc = event
            value = orjson.dumps(dict(event))
        kind = event_type if event_type is not None else (doc or {}).get("event_type")
        topic = self._topics.get(kind) if isinstance(kind, str) else None
        if topic is None:
            raise UnknownEventType(f"no raw topic for event type {kind!r} "
                                   f"(known: {', '.join(sorted(self._topics))})")
        if key is _FROM_EVENT:
            key = key_of(doc) if doc is not None else None
        event_id = doc.get("event_id") if doc is not None else None
        event_id = event_id if isinstance(event_id, str) else None
        producer = self._ready()
        try:
            future = producer.send(topic, value=value, key=key,
                                   headers=list((headers or {}).items()) or None)
        except KafkaError as exc:  # refused before it was queued: e.g. above the wire limit
            sent = Sent(topic, event_id, error=exc)
            self._failed(sent._delivery())
            return sent
        sent = Sent(topic, event_id, future)
        future.add_errback(lambda _exc: self._failed(sent._delivery()))
        return sent

    def _failed(self, delivery: Delivery) -> None:
        log.error("publish to %s failed (event_id %s): %r", delivery.where, delivery.event_id,
                  delivery.error)
        with self._failures_lock:
            self._failures.append(delivery)

    def _take_failures(self) -> list[Delivery]:
        with self._failures_lock:
            failed, self._failures = self._failures, []
        return failed

    def flush(self, timeout: float | None = None) -> list[Delivery]:
        """Wait until every send so far has its outcome; return (and forget) the failed
        deliveries since the previous flush, in the order they failed."""
        if self._producer is not None:
            self._producer.flush(timeout)
        return self._take_failures()

    def close(self, timeout: float = 10.0) -> list[Delivery]:
        """Flush, close the producer and return the failures :meth:`flush` had not yet
        returned. Idempotent."""
        with self._lock:
            self._closed = True
            producer, self._producer = self._producer, None
        if producer is not None:
            producer.flush(timeout)
            producer.close(timeout=timeout)
        return self._take_failures()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        failed = self.close()
        if failed and exc is None:
            raise PublishFailed(failed)


class PublishFailed(RuntimeError):
    """Sends failed and no one collected them with ``flush()`` before the publisher closed."""

    def __init__(self, failed: list[Delivery]) -> None:
        first = failed[0]
        super().__init__(f"{len(failed)} publish(es) failed; first: {first.where} "
                         f"(event_id {first.event_id}): {first.error!r}")
        self.failed = failed


def _as_object(value: bytes) -> Mapping[str, object] | None:
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    return doc if isinstance(doc, dict) else None

"""Faust's offset bookkeeping, made safe: no commit past a message not processed.

Faust treats a jump in the offsets it *receives* as a compaction gap and later commits
across it as if those messages were processed. Around a rebalance or a restart, records
fetched before Faust seeks to the committed offsets arrive out of order, so such a "gap"
can be real unprocessed messages: committing across it loses them. The same race makes
Faust drop re-fetched records below its read offset, leaving a hole that stops commits
for good (known faust issues: prefetch before seek, duplicate/holed ack lists).

So a jump in received offsets proves nothing, and :class:`GuardedConsumer` never invents
acks for one. Legitimate gaps do exist: raw topics are never compacted, but any producer
may be transactional (``kcat -X transactional.id=...``), and each transaction leaves a
commit or abort marker (a control record) on every partition it wrote to, an offset no
consumer ever receives. The workers read with isolation level ``read_committed``
(:class:`GuardedConsumerThread`), so records of aborted transactions are never delivered
either, and their offsets are holes too. A partition whose commits are stuck behind a
hole is healed by :func:`heal_stuck` (on a timer): it asks the broker, through a
``read_committed`` probe of its own (:func:`scan_deliverable`), which offsets from the
committed one on hold a deliverable record. The offsets that hold none are acked as
processed (:meth:`GuardedConsumer.ack_undeliverable`), so the commit passes markers and
aborted records; if the committed offset itself holds a record, the partition is
re-read from there (:func:`rewind`): the messages are processed again, which every write
tolerates.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

log = logging.getLogger(__name__)

READ_COMMITTED = "read_committed"
PROBE_TIMEOUT_S = 5.0  # one scan of stuck partitions; the next timer tick goes on from there
PROBE_MAX_RECORDS = 200_000  # per scan, so that a long-stuck partition costs bounded time


class GuardedConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's aiokafka consumer thread, reading with isolation level ``read_committed``.

    Faust reads ``read_uncommitted`` unless the app itself runs exactly-once transactions,
    so records of a foreign producer's aborted transaction were processed and stored as
    events that never happened. Faust passes no option for the level, so it is set on the
    aiokafka consumer before ``start()`` builds the fetcher that reads it (aiokafka 0.14:
    ``AIOKafkaConsumer._isolation_level``). If that attribute goes, the worker refuses to
    start (and tests/unit/test_offsets.py fails); if it stops taking effect,
    tests/reliability/test_transactions.py finds the aborted scans stored.
    """

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        if getattr(consumer, "_isolation_level", None) is None:
            raise RuntimeError("aiokafka changed: cannot set the consumer's isolation level")
        consumer._isolation_level = READ_COMMITTED
        return consumer


class GuardedConsumer(faust_aiokafka.Consumer):
    """Faust's consumer, committing an offset only when everything below it was processed
    or holds no deliverable record (verified by the broker, :func:`heal_stuck`)."""

    log_start: dict[TP, int]  # first offset of partitions never committed (learn_log_starts)

    def _new_consumer_thread(self) -> GuardedConsumerThread:
        return GuardedConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def _new_offset(self, tp: TP) -> int | None:
        # Faust only refuses to commit past a hole at the head of the acked offsets when
        # it is two or more messages wide, and never when nothing was committed yet: a
        # single dropped message, or any before the first commit, was committed past as
        # if processed (measured: one event lost in about eight double-kill runs with two
        # workers). The committed offset is the next one to process: nothing may be
        # missing below the lowest acked offset. (Offsets the broker verified to hold no
        # deliverable record are acked too: ack_undeliverable.)
        acked = self._acked[tp]
        if acked and min(acked) > self.floor(tp):
            return None
        return super()._new_offset(tp)

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        # A jump in received offsets proves nothing: records may have arrived out of order.
        # Record nothing, so the commit waits until offsets offset_from..offset_to-1 are
        # processed, or until heal_stuck has the broker verify they hold no record.
        log.info("%s: offsets %d..%d not received in order; not treated as a gap",
                 tp, offset_from, offset_to - 1)

    def floor(self, tp: TP) -> int:
        """The next offset of ``tp`` to process: the committed offset, else the partition's
        first offset (0 unless retention truncated it, see :func:`learn_log_starts`)."""
        committed = self._committed_offset.get(tp)
        if committed is not None:
            return committed
        return getattr(self, "log_start", {}).get(tp, 0)

    def ack_undeliverable(self, tp: TP, offsets: Iterable[int]) -> list[int]:
        """Count ``offsets`` of ``tp`` as processed; return those newly acked, sorted.

        Only for offsets the broker verified to hold no record a ``read_committed``
        consumer can receive (transaction markers, aborted records): there is nothing to
        process, so the commit may pass them. Faust's gap tree is not used for this: it
        is applied only below acked offsets (a marker that ends a partition would never be
        committed past) and from the committed offset + 1 on (the committed offset is the
        next to process, often the marker itself); acks are also forgotten by a rewind,
        with everything else this worker acked past the commit. Offsets below the floor,
        already acked, or of a partition no longer assigned are left alone.
        """
        if tp not in self.assignment():
            return []
        floor = self.floor(tp)
        index = self._acked_index[tp]
        new = sorted({o for o in offsets if o >= floor and o not in index})
        if new:
            index.update(new)
            self._acked[tp].extend(new)
        return new


class GuardedTransport(faust_aiokafka.Transport):
    Consumer = GuardedConsumer


async def learn_log_starts(consumer: GuardedConsumer) -> None:
    """Record the first offset of assigned partitions that have no commit yet (0 unless
    retention has truncated the topic), the floor below which nothing can be missing."""
    known = consumer.__dict__.setdefault("log_start", {})
    unknown = [tp for tp in consumer.assignment()
               if tp not in known and consumer._committed_offset[tp] is None]
    if unknown:
        known.update(await consumer.earliest_offsets(*unknown))


def stuck_partitions(consumer: GuardedConsumer, topics: Iterable[str],
                     ends: Mapping[TP, int] | None = None) -> dict[TP, int]:
    """Partitions of ``topics`` whose commits cannot move, each with its floor (the
    committed offset, or the first offset when nothing is committed yet).

    Stuck: the acked offsets start past the floor (a hole at the head), or, when ``ends``
    (the partitions' end offsets) is given, nothing is acked and the floor is below the
    end: nothing more may ever be acked there if what lies at the floor is a marker.
    """
    wanted = set(topics)
    stuck = {}
    for tp in consumer.assignment():
        if tp.topic not in wanted:
            continue
        acked = consumer._acked.get(tp)
        floor = consumer.floor(tp)
        if acked:
            if min(acked) > floor:
                stuck[tp] = floor
        elif ends is not None and tp in ends and floor < ends[tp]:
            stuck[tp] = floor
    return stuck


@dataclass(frozen=True)
class Scan:
    """What a ``read_committed`` read of one partition from ``start`` found.

    Every offset in ``start..reached-1`` was read: those in ``delivered`` hold a record a
    consumer receives, the others hold none (transaction markers, aborted records).
    """

    start: int
    reached: int
    delivered: tuple[int, ...]

    def undeliverable(self) -> list[int]:
        """The offsets in ``start..reached-1`` that hold no deliverable record."""
        got = set(self.delivered)
        return [o for o in range(self.start, self.reached) if o not in got]

    @property
    def record_at_start(self) -> bool:
        """The first offset holds a real record: the hole there is a message not processed."""
        return bool(self.delivered) and self.delivered[0] == self.start


Probe = Callable[[Mapping[TP, tuple[int, int]]], Mapping[TP, Scan]]


def scan_deliverable(bootstrap: list[str], spans: Mapping[TP, tuple[int, int]],
                     timeout_s: float = PROBE_TIMEOUT_S,
                     max_records: int = PROBE_MAX_RECORDS) -> dict[TP, Scan]:
    """Read each partition from ``spans[tp][0]`` towards ``spans[tp][1]`` with isolation
    level ``read_committed``, as the worker's consumer does, and report what it found.

    Blocking (kafka-python, a consumer of its own without a group): run it in a thread.
    A partition's scan stops at its stop offset, at a record at its start (a real message:
    nothing to skip), at the last stable offset (an open transaction: undecided), or when
    ``timeout_s`` or ``max_records`` runs out; :class:`Scan` says how far it got. Raises
    kafka-python's errors (a start no longer in the log, an unreachable broker).
    """
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
        isolation_level=READ_COMMITTED, auto_offset_reset="none",
        fetch_max_wait_ms=100, request_timeout_ms=int(timeout_s * 1000) + 5000,
    )
    try:
        ours = {TopicPartition(tp.topic, tp.partition): tp for tp in spans}
        consumer.assign(list(ours))
        for ktp, tp in ours.items():
            consumer.seek(ktp, spans[tp][0])
        delivered: dict[TP, list[int]] = {tp: [] for tp in spans}
        done: dict[TP, int] = {}
        deadline = time.monotonic() + timeout_s
        read = 0
        while len(done) < len(ours) and time.monotonic() < deadline and read < max_records:
            for ktp, records in consumer.poll(timeout_ms=200).items():
                delivered[ours[ktp]].extend(r.offset for r in records)
                read += len(records)
            for ktp, tp in ours.items():
                start, stop = spans[tp]
                if tp not in done and (consumer.position(ktp) >= stop
                                       or delivered[tp][:1] == [start]):
                    done[tp] = consumer.position(ktp)
                    consumer.pause(ktp)  # its position, and so its scan, stays put
        return {tp: Scan(spans[tp][0], done.get(tp, consumer.position(ktp)),
                         tuple(delivered[tp]))
                for ktp, tp in ours.items()}
    finally:
        consumer.close()


async def heal_stuck(consumer: GuardedConsumer, suspects: Mapping[TP, int],
                     topics: Iterable[str], probe: Probe) -> dict[TP, int]:
    """Heal the partitions of ``topics`` stuck at the same floor as in ``suspects`` (the
    previous call's answer, 5 s before), and return the partitions stuck now.

    A partition is healed only if it is stuck at the same offset on two checks in a row: a
    hole that in-flight batches will fill resolves itself first. The broker is then asked
    (``probe``, run in a thread) which offsets from the floor on hold a deliverable
    record. Those that hold none are acked, so the commit passes them; if the floor itself
    holds a record while later offsets are acked, the partition is re-read from the floor.
    If the probe fails, a hole is re-read as before (safe: only slower if it is a marker).
    """
    topics = set(topics)
    ends = await _end_offsets(consumer, topics)
    still = stuck_partitions(consumer, topics, ends)
    confirmed = {tp: floor for tp, floor in suspects.items() if still.get(tp) == floor}
    if confirmed:
        spans = {}
        for tp, floor in confirmed.items():
            acked = consumer._acked.get(tp)
            spans[tp] = (floor, max(acked) + 1 if acked else ends[tp])
        try:
            scans: Mapping[TP, Scan] = await asyncio.to_thread(probe, spans)
        except Exception as exc:  # noqa: BLE001 (a broker fault: heal as without a probe)
            log.warning("probing %d stuck partition(s) failed: %r", len(spans), exc)
            scans = {}
        for tp, floor in confirmed.items():
            scan = scans.get(tp)
            skipped = consumer.ack_undeliverable(tp, scan.undeliverable()) if scan else []
            if skipped:
                log.info("%s: commits stuck at %d; %d offset(s) up to %d hold no deliverable "
                         "record (transaction markers, aborted records): passed",
                         tp, floor, len(skipped), skipped[-1])
            if skipped[:1] == [floor] or not consumer._acked.get(tp):
                continue  # the commit can move now, or nothing past the floor is waiting
            if scan is None or scan.record_at_start:
                log.warning("%s: commits stuck at %d behind a hole; re-reading from there",
                            tp, floor)
                await rewind(consumer, tp)
    # End offsets from the start of this check will do: a suspect is only acted on when
    # the next check, with fresh ones, finds it stuck at the same offset.
    return stuck_partitions(consumer, topics, ends)


async def _end_offsets(consumer: GuardedConsumer, topics: set[str]) -> dict[TP, int]:
    """End offsets of the assigned partitions of ``topics`` with nothing acked (under
    ``read_committed``: the last stable offsets); empty if the broker does not answer."""
    idle = [tp for tp in consumer.assignment()
            if tp.topic in topics and not consumer._acked.get(tp)]
    if not idle:
        return {}
    try:
        return dict(await consumer.highwaters(*idle))
    except Exception as exc:  # noqa: BLE001 (asked again on the next tick)
        log.info("end offsets of %d partition(s) unavailable: %r", len(idle), exc)
        return {}


def never_ack(consumer: GuardedConsumer, message) -> None:  # type: ignore[no-untyped-def]
    """Keep a skipped message from ever counting as processed.

    ``take_events`` acks every event of a batch after the loop body, skipped or not; an
    ack of a message that will only be re-read after a :func:`rewind` would let the
    commit run past it (measured: the re-read then never came, and the event was lost).
    """
    message.acked = True  # Consumer.ack ignores messages already marked acked
    consumer._unacked_messages.discard(message)


async def rewind(consumer: GuardedConsumer, tp: TP, to: int | None = None) -> None:
    """Re-read ``tp`` from its committed offset (or from ``to`` if that is earlier; from
    the partition's first offset if nothing is committed yet).

    What this worker acked past that point is forgotten and read again: every consumer
    here tolerates a message processed twice.
    """
    committed = consumer._committed_offset.get(tp)
    start = getattr(consumer, "log_start", {}).get(tp, 0) if committed is None else committed
    if to is not None:
        start = min(start, to)
    consumer._acked[tp] = []
    consumer._acked_index[tp] = set()
    await consumer.seek(tp, start)

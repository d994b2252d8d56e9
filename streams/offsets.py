"""Faust's offset bookkeeping, made safe for topics without legitimate offset gaps.

Faust treats a jump in the offsets it *receives* as a compaction gap and later commits
across it as if those messages were processed. Around a rebalance or a restart, records
fetched before Faust seeks to the committed offsets arrive out of order, so such a "gap"
can be real unprocessed messages: committing across it loses them. The same race makes
Faust drop re-fetched records below its read offset, leaving a hole that stops commits
for good (known faust issues: prefetch before seek, duplicate/holed ack lists).

Raw topics here are never compacted and never transactional, so there are no legitimate
gaps. :class:`GuardedConsumer` never invents acks for a gap, and :func:`heal_holes`
(run on a timer) seeks a partition whose commits are stuck behind a hole back to its
committed offset: the messages are processed again, which every write tolerates.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

log = logging.getLogger(__name__)


class GuardedConsumer(faust_aiokafka.Consumer):
    log_start: dict[TP, int]  # first offset of partitions never committed (learn_log_starts)

    def _new_offset(self, tp: TP) -> int | None:
        # Faust only refuses to commit past a hole at the head of the acked offsets when
        # it is two or more messages wide, and never when nothing was committed yet: a
        # single dropped message, or any before the first commit, was committed past as
        # if processed (measured: one event lost in about eight double-kill runs with two
        # workers). The committed offset is the next one to process: nothing may be
        # missing below the lowest acked offset.
        acked = self._acked[tp]
        if acked:
            floor = self._committed_offset[tp]
            if floor is None:
                floor = getattr(self, "log_start", {}).get(tp, 0)
            if min(acked) > floor:
                return None
        return super()._new_offset(tp)

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        # Not a compaction gap: records arrived out of order. Record nothing, so the
        # commit waits until offsets offset_from..offset_to-1 are really processed.
        log.info("%s: offsets %d..%d arrived out of order; not treated as a gap",
                 tp, offset_from, offset_to - 1)


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


def stuck_partitions(consumer: GuardedConsumer, topics: Iterable[str]) -> dict[TP, int]:
    """Partitions of ``topics`` whose acked offsets start past the committed offset."""
    wanted = set(topics)
    log_start = getattr(consumer, "log_start", {})
    stuck = {}
    for tp in consumer.assignment():
        if tp.topic not in wanted:
            continue
        acked = consumer._acked.get(tp)
        committed = consumer._committed_offset.get(tp)
        floor = committed if committed is not None else log_start.get(tp, 0)
        if acked and min(acked) > floor:
            stuck[tp] = floor
    return stuck


async def heal_holes(consumer: GuardedConsumer, suspects: dict[TP, int]) -> None:
    """Re-read from the committed offset every partition still stuck at the same place."""
    still = stuck_partitions(consumer, {tp.topic for tp in suspects}) if suspects else {}
    for tp, committed in suspects.items():
        if still.get(tp) != committed:
            continue  # it moved on by itself
        log.warning("%s: commits stuck at %d behind a hole; re-reading from there",
                    tp, committed)
        await rewind(consumer, tp)


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

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
    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        # Not a compaction gap: records arrived out of order. Record nothing, so the
        # commit waits until offsets offset_from..offset_to-1 are really processed.
        log.info("%s: offsets %d..%d arrived out of order; not treated as a gap",
                 tp, offset_from, offset_to - 1)


class GuardedTransport(faust_aiokafka.Transport):
    Consumer = GuardedConsumer


def stuck_partitions(consumer: GuardedConsumer, topics: Iterable[str]) -> dict[TP, int]:
    """Partitions of ``topics`` whose acked offsets start past the committed offset."""
    wanted = set(topics)
    stuck = {}
    for tp in consumer.assignment():
        if tp.topic not in wanted:
            continue
        acked = consumer._acked.get(tp)
        committed = consumer._committed_offset.get(tp)
        if acked and committed is not None and min(acked) > committed:
            stuck[tp] = committed
    return stuck


async def heal_holes(consumer: GuardedConsumer, suspects: dict[TP, int]) -> None:
    """Re-read from the committed offset every partition still stuck at the same place."""
    for tp, committed in suspects.items():
        if consumer._committed_offset.get(tp) != committed:
            continue  # it moved on by itself
        acked = consumer._acked.get(tp)
        if not acked or min(acked) <= committed:
            continue
        log.warning("%s: commits stuck at %d behind a hole; re-reading from there",
                    tp, committed)
        await rewind(consumer, tp)


async def rewind(consumer: GuardedConsumer, tp: TP, to: int | None = None) -> None:
    """Re-read ``tp`` from its committed offset (or from ``to`` if that is earlier; from
    0 if nothing is committed yet).

    What this worker acked past that point is forgotten and read again: every consumer
    here tolerates a message processed twice.
    """
    committed = consumer._committed_offset.get(tp)
    start = 0 if committed is None else committed
    if to is not None:
        start = min(start, to)
    consumer._acked[tp] = []
    consumer._acked_index[tp] = set()
    await consumer.seek(tp, start)

"""Commits stuck behind a hole, healed: no commit past a message not processed.

:class:`streams.faust_seam.GuardedConsumer` never commits past an offset it did not
process (a jump in received offsets proves nothing, see :mod:`streams.faust_seam`). This
module is the policy on top, using only that consumer's public methods.

Legitimate gaps do exist: raw topics are never compacted, but any producer may be
transactional (``kcat -X transactional.id=...``), and each transaction leaves a commit or
abort marker (a control record) on every partition it wrote to, an offset no consumer
ever receives. The workers read with isolation level ``read_committed``
(:class:`streams.faust_seam.GuardedConsumerThread`), so records of aborted transactions
are never delivered either, and their offsets are holes too. A partition whose commits
are stuck behind a hole is healed by :func:`heal_stuck` (on a timer): it asks the broker,
through a ``read_committed`` probe of its own (:func:`scan_deliverable`), which offsets
from the committed one on hold a deliverable record. The offsets that hold none are acked
as processed (``GuardedConsumer.ack_undeliverable``), so the commit passes markers and
aborted records; if the committed offset itself holds a record, the partition is re-read
from there (:func:`rewind`): the messages are processed again, which every write
tolerates.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from faust.types import TP

from streams.faust_seam import READ_COMMITTED, GuardedConsumer

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 5.0  # one scan of stuck partitions; the next timer tick goes on from there
PROBE_MAX_RECORDS = 200_000  # per scan, so that a long-stuck partition costs bounded time
# Checks in a row (5 s apart) a floor may stay stuck with nothing acked, its record not yet
# handed to the streams or handed over in the current generation, before it is re-read all
# the same. Such a record is normally on its way (a backlog of batched messages: a take of
# 2,000 messages of 50 events is 100,000 events, 8 s of work on 2 cores, and a stream's
# queue holds up to 8,192 messages), but Faust's fetch loop also drops records of a
# partition it holds inactive at that moment (``Consumer.getmany``: neither active nor
# buffered) after the client's position has moved past them; they come again only after a
# seek. Seen in a worker-kill test: six raw partitions stuck for minutes after a restart.
STALL_CHECKS = 12


class Suspect(NamedTuple):
    """A partition whose commits were stuck at ``floor`` on the last ``checks`` checks in a
    row."""

    floor: int
    checks: int = 1


async def learn_log_starts(consumer: GuardedConsumer) -> None:
    """Record the first offset of assigned partitions that have no commit yet (0 unless
    retention has truncated the topic), the floor below which nothing can be missing."""
    known = consumer.__dict__.setdefault("log_start", {})
    unknown = [tp for tp in consumer.assignment()
               if tp not in known and consumer.committed(tp) is None]
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
        acked = consumer.acked(tp)
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


async def heal_stuck(consumer: GuardedConsumer, suspects: Mapping[TP, Suspect],
                     topics: Iterable[str], probe: Probe) -> dict[TP, Suspect]:
    """Heal the partitions of ``topics`` stuck at the same floor as in ``suspects`` (the
    previous call's answer, 5 s before), and return the partitions stuck now.

    A partition is healed only if it is stuck at the same offset on two checks in a row: a
    hole that in-flight batches will fill resolves itself first. The broker is then asked
    (``probe``, run in a thread) which offsets from the floor on hold a deliverable
    record. Those that hold none are acked, so the commit passes them; if the floor itself
    holds a record while later offsets are acked, or the record there was handed to the
    streams since the last seek, in an earlier generation, and never processed (nothing
    acked after it: a hand-over a rebalance cancelled), the partition is re-read from the
    floor. A record not handed over yet, or handed over in the current generation (queued
    in a stream: ``GuardedConsumer.handed_in_this_generation``), is waited for, for up to
    :data:`STALL_CHECKS` checks in a row; then it is re-read all the same. If the probe
    fails, a hole is re-read as before (safe: only slower if it is a marker).
    """
    topics = set(topics)
    ends = await _end_offsets(consumer, topics)
    still = stuck_partitions(consumer, topics, ends)
    confirmed = {tp: s.floor for tp, s in suspects.items() if still.get(tp) == s.floor}
    reread: set[TP] = set()
    if confirmed:
        spans = {}
        for tp, floor in confirmed.items():
            acked = consumer.acked(tp)
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
            if skipped[:1] == [floor]:
                continue  # the commit can move now
            if not consumer.acked(tp):
                # Nothing past the floor waits. Its record is still to be handed over, or is
                # queued in a stream (handed over in this generation): wait, for a while.
                on_its_way = (not _handed_over_since(consumer, tp, floor)
                              or consumer.handed_in_this_generation(tp))
                if on_its_way and suspects[tp].checks + 1 < STALL_CHECKS:
                    continue
            if scan is None or scan.record_at_start:
                if consumer.acked(tp):
                    log.warning("%s: commits stuck at %d behind a hole; re-reading from "
                                "there", tp, floor)
                else:
                    log.warning("%s: commits stuck at %d for %d checks with nothing "
                                "processed; re-reading from there", tp, floor,
                                suspects[tp].checks + 1)
                await rewind(consumer, tp)
                reread.add(tp)
    # End offsets from the start of this check will do: a suspect is only acted on when
    # the next check, with fresh ones, finds it stuck at the same offset. A partition just
    # re-read starts counting again: its records are on their way once more.
    return {tp: Suspect(floor, suspects[tp].checks + 1
                        if confirmed.get(tp) == floor and tp not in reread else 1)
            for tp, floor in stuck_partitions(consumer, topics, ends).items()}


def _handed_over_since(consumer: GuardedConsumer, tp: TP, floor: int) -> bool:
    """Whether the record at ``floor`` (or a later one) was handed to the streams since the
    partition was last sought: then a floor stuck with nothing acked is a record a stream
    still holds (handed over in this generation) or one the worker lost (a hand-over a
    rebalance cancelled: an earlier generation), not one still to be fetched."""
    handed = consumer.handed_over(tp)
    return handed is not None and handed >= floor


async def _end_offsets(consumer: GuardedConsumer, topics: set[str]) -> dict[TP, int]:
    """End offsets of the assigned partitions of ``topics`` with nothing acked (under
    ``read_committed``: the last stable offsets); empty if the broker does not answer."""
    idle = [tp for tp in consumer.assignment()
            if tp.topic in topics and not consumer.acked(tp)]
    if not idle:
        return {}
    try:
        return dict(await consumer.highwaters(*idle))
    except Exception as exc:  # noqa: BLE001 (asked again on the next tick)
        log.info("end offsets of %d partition(s) unavailable: %r", len(idle), exc)
        return {}


async def rewind(consumer: GuardedConsumer, tp: TP, to: int | None = None) -> None:
    """Re-read ``tp`` from its committed offset (or from ``to`` if that is earlier; from
    the partition's first offset if nothing is committed yet).

    What this worker acked past that point is forgotten and read again: every consumer
    here tolerates a message processed twice.
    """
    start = consumer.floor(tp)
    if to is not None:
        start = min(start, to)
    await consumer.rewind_to(tp, start)

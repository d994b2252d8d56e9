"""The Faust seam: every use of faust-streaming's (and aiokafka's) private API, in one place.

faust-streaming is pinned to the exact version these overrides were written and tested
against (pyproject.toml). What we rely on, and why:

- ``faust.streams._current_event`` (a ContextVar): a table write's changelog partition is
  the *current* event's; in a batch that is the last event (:func:`set_in_partition_of`).
- ``Consumer._new_offset``, ``Consumer._add_gap``: Faust's commit arithmetic, overridden
  so that a commit never passes a message not processed (:class:`GuardedConsumer`).
- ``Consumer._acked``, ``_acked_index``, ``_committed_offset``, ``_unacked_messages``:
  its ack bookkeeping, read and edited through :class:`GuardedConsumer`'s public methods
  (``committed``, ``acked``, ``ack_undeliverable``, ``forget_acks``, ``never_ack``).
- ``Consumer._new_consumer_thread``, ``AIOKafkaConsumerThread._create_worker_consumer`` and
  aiokafka's ``AIOKafkaConsumer._isolation_level``: the only way to read
  ``read_committed`` (:class:`GuardedConsumerThread`).
- ``App._consumer``: the consumer Faust built (and keeps), so that the guarded transport
  is installed before it exists (:func:`install_guarded_transport`).
- ``Consumer._drain_messages`` and what its loop reads (``callback``, ``getmany``,
  ``_read_offset``, ``_commit_every``, ``_n_acked``, ``diag``, ``suspend_flow``,
  ``consumer_stopped_errors``): Faust's fetch loop, copied with one change, a record
  handed over without a task when nothing makes it wait (:meth:`GuardedConsumer._drain_messages`).

tests/unit/test_faust_seam.py is the canary: it checks each of these on the real classes
and exercises what runs without a broker, so an upgrade that renames or removes one fails
there, not in production. The policy built on top (when a partition is stuck, what the
broker is asked, when to re-read) is in :mod:`streams.offsets`, which uses only the public
methods here.

Why the commit arithmetic is overridden: Faust treats a jump in the offsets it *receives*
as a compaction gap and later commits across it as if those messages were processed.
Around a rebalance or a restart, records fetched before Faust seeks to the committed
offsets arrive out of order, so such a "gap" can be real unprocessed messages: committing
across it loses them. The same race makes Faust drop re-fetched records below its read
offset, leaving a hole that stops commits for good (known faust issues: prefetch before
seek, duplicate/holed ack lists). So a jump in received offsets proves nothing, and
:class:`GuardedConsumer` never invents acks for one; offsets that really hold no
deliverable record (transaction markers, aborted records) are acked only when the broker
says so (:func:`streams.offsets.heal_stuck`).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Coroutine, Generator, Iterable
from types import CoroutineType
from typing import Any

import faust
from faust.streams import _current_event
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, EventT

log = logging.getLogger(__name__)

READ_COMMITTED = "read_committed"
# Longest wait of a fetch for data to arrive. aiokafka keeps one fetch in flight per
# broker, for the partitions with nothing buffered; a partition whose records were handed
# over meanwhile waits for that fetch to return before its new records are asked for, up
# to this long (Faust sets 1,500 ms).
WORKER_FETCH_MAX_WAIT_MS = 100
_YIELD_EVERY = 100  # records handed over between two releases of the event loop (Faust's)


def set_in_partition_of(table: faust.Table, event: EventT, key: str, value: object) -> None:
    """``table[key] = value`` with the changelog partition of ``event``.

    Faust picks a table write's partition from the *current* event of the stream
    (``Table.partition_for_key`` reads ``current_event()``); in a batch that is the last
    event, whose partition may differ. Point Faust at the event that owns the entry.
    """
    token = _current_event.set(weakref.ref(event))
    try:
        table[key] = value
    finally:
        _current_event.reset(token)


class GuardedConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's aiokafka consumer thread, reading with isolation level ``read_committed``.

    Faust reads ``read_uncommitted`` unless the app itself runs exactly-once transactions,
    so records of a foreign producer's aborted transaction were processed and stored as
    events that never happened. Faust passes no option for the level, so it is set on the
    aiokafka consumer before ``start()`` builds the fetcher that reads it (aiokafka 0.14:
    ``AIOKafkaConsumer._isolation_level``). If that attribute goes, the worker refuses to
    start (and tests/unit/test_faust_seam.py fails); if it stops taking effect,
    tests/reliability/test_transactions.py finds the aborted scans stored.
    """

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        if getattr(consumer, "_isolation_level", None) is None:
            raise RuntimeError("aiokafka changed: cannot set the consumer's isolation level")
        consumer._isolation_level = READ_COMMITTED
        if getattr(consumer, "_fetch_max_wait_ms", None) is None:
            raise RuntimeError("aiokafka changed: cannot set the consumer's fetch wait")
        consumer._fetch_max_wait_ms = WORKER_FETCH_MAX_WAIT_MS
        return consumer


class GuardedConsumer(faust_aiokafka.Consumer):
    """Faust's consumer, committing an offset only when everything below it was processed
    or holds no deliverable record (verified by the broker, :func:`streams.offsets.heal_stuck`).
    """

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

    async def _drain_messages(self, fetcher: Any) -> None:
        """Faust's fetch loop (faust-streaming's ``Consumer._drain_messages``), with one
        change: a record is handed to the streams without a task when nothing makes it wait.

        Faust races every record's hand-over against a flow stop (a rebalance):
        ``wait_first(callback(message), suspend_flow.wait())`` makes four tasks and cancels
        three per record, about half of a worker's CPU (measured: a do-nothing agent
        topped out at 12k records/s). Almost always the hand-over finishes at once (flow
        open, room in the stream's queue), and then no flow stop could have interrupted
        it in Faust's race either. So the callback is first run here up to its first
        wait (:func:`_deliver`); only a hand-over that must wait (flow suspended, a full
        queue) is raced against the flow stop, exactly as Faust races it, and cancelled
        where Faust cancels it. Read offsets, gaps, commits and stops are Faust's.
        """
        callback = self.callback
        getmany = self.getmany
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        set_flag, unset_flag = self.diag.set_flag, self.diag.unset_flag
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        suspend_flow = self.suspend_flow
        handed = self.__dict__.setdefault("_handed", {})  # tp -> (offset, its generation)
        rewinds = self.__dict__.setdefault("_rewinds", {})
        self.__dict__["_draining"] = True
        since_yield = 0
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                if rewinds:
                    await self._apply_rewinds(rewinds)
                set_flag(faust_consumer.CONSUMER_FETCHING)
                records = getmany(timeout=1.0)
                # getmany may loop without releasing the event loop (Faust's comment)
                await self.sleep(0)
                if not self.should_stop:
                    async for tp, message in records:
                        since_yield += 1
                        if since_yield > _YIELD_EVERY:
                            await asyncio.sleep(0)
                            since_yield = 0
                        offset = message.offset
                        r_offset = get_read_offset(tp)
                        if r_offset is None or offset >= r_offset:
                            if offset - (r_offset or 0) > 1 and r_offset:
                                if acks_enabled_for(message.topic):
                                    await self._add_gap(tp, r_offset + 1, offset)
                            if commit_every is not None and self._n_acked >= commit_every:
                                self._n_acked = 0
                                await self.commit()
                            waiting = _deliver(callback(message))
                            if waiting is not None:
                                await self.wait_first(waiting, suspend_flow.wait())
                            set_read_offset(tp, offset)
                            handed[tp] = (offset, message.generation_id)
                        else:
                            self.log.dev("DROPPED MESSAGE ROFF %r: k=%r v=%r", offset,
                                         message.key, message.value)
                    unset_flag(faust_consumer.CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            self.__dict__["_draining"] = False
            unset_flag(faust_consumer.CONSUMER_FETCHING)

    async def rewind_to(self, tp: TP, offset: int) -> None:
        """Re-read ``tp`` from ``offset``, forgetting what was acked past the commit.

        While the fetch loop runs, the seek waits for the end of the fetched batch it is
        handing over: records of ``tp`` still in that batch, handed over after a seek,
        would move the read offset past the re-read ones, which Faust then drops as old
        (measured: partitions still stuck after a heal's rewind)."""
        self.forget_acks(tp)
        if self.__dict__.get("_draining"):
            pending = self.__dict__.setdefault("_rewinds", {})
            pending[tp] = min(offset, pending.get(tp, offset))
        else:
            await self.seek(tp, offset)

    async def _apply_rewinds(self, rewinds: dict[TP, int]) -> None:
        pending = dict(rewinds)
        rewinds.clear()
        assigned = self.assignment()
        for tp, offset in pending.items():
            if tp in assigned:  # a rebalance since sought it to its commit anyway
                self.forget_acks(tp)
                await self.seek(tp, offset)

    # -- the bookkeeping, for streams.offsets and the agents ------------------------------
    def committed(self, tp: TP) -> int | None:
        """The committed offset of ``tp`` (the next to process), None if never committed."""
        return self._committed_offset.get(tp)

    def acked(self, tp: TP) -> list[int]:
        """Offsets of ``tp`` acked past the commit and not committed yet (a copy)."""
        return list(self._acked.get(tp) or ())

    def handed_over(self, tp: TP) -> int | None:
        """The highest offset of ``tp`` handed to the streams since the partition was last
        sought (a rebalance, a rewind), else None. A hand-over a flow stop cancelled counts,
        as Faust counts it: its read offset moves past the record all the same."""
        return self._last_handed(tp)[0]

    def handed_in_this_generation(self, tp: TP) -> bool:
        """Whether the last record of ``tp`` handed to the streams since the partition was
        last sought (:meth:`handed_over`) was fetched in the consumer group's current
        generation: it is then still on its way through the streams, however long their
        queues. Faust's streams drop, unprocessed, only records of an earlier generation
        (``Stream._py_aiter``: a generation or flow check) and empty their queues when
        partitions are revoked; every such loss comes with a rebalance, and so with a new
        generation."""
        offset, generation = self._last_handed(tp)
        return offset is not None and generation == self.app.consumer_generation_id

    def _last_handed(self, tp: TP) -> tuple[int | None, int | None]:
        """(offset, generation) of the last hand-over of ``tp`` since the partition was last
        sought, else (None, None)."""
        offset, generation = self.__dict__.get("_handed", {}).get(tp, (None, None))
        # any seek sets the read offset to where reading resumes: a hand-over is recent
        # only while the read offset is still the one it set
        if offset is None or self._read_offset.get(tp) != offset:
            return None, None
        return int(offset), generation

    def floor(self, tp: TP) -> int:
        """The next offset of ``tp`` to process: the committed offset, else the partition's
        first offset (0 unless retention truncated it, see ``learn_log_starts``)."""
        committed = self.committed(tp)
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

    def forget_acks(self, tp: TP) -> None:
        """Forget what was acked past the commit of ``tp`` (it is about to be re-read)."""
        self._acked[tp] = []
        self._acked_index[tp] = set()

    def never_ack(self, message: Any) -> None:
        """Keep a skipped message from ever counting as processed.

        ``take_events`` acks every event of a batch after the loop body, skipped or not; an
        ack of a message that will only be re-read after a rewind would let the commit
        run past it (measured: the re-read then never came, and the event was lost).
        """
        message.acked = True  # Consumer.ack ignores messages already marked acked
        self._unacked_messages.discard(message)


def _deliver(handover: Awaitable[Any]) -> Awaitable[Any] | None:
    """Run the coroutine ``handover`` up to its first wait: None if it finished without
    waiting, else an awaitable of the rest (raise, as it would, if it failed at once).
    Any other awaitable is returned as it is, to be awaited as Faust awaits it."""
    if not isinstance(handover, CoroutineType):
        return handover
    try:
        first = handover.send(None)
    except StopIteration:
        return None
    return _Resumed(handover, first)


class _Resumed:
    """The rest of a coroutine that already ran up to its first wait, on ``first`` (what it
    yielded: a future, or None for a bare yield); awaiting it drives the coroutine as a
    task would have from there (a cancel is thrown into it where it waits)."""

    __slots__ = ("coro", "first")

    def __init__(self, coro: Coroutine[Any, Any, None], first: Any) -> None:
        self.coro, self.first = coro, first

    def __await__(self) -> Generator[Any, Any, None]:
        coro, waiting_on = self.coro, self.first
        while True:
            try:
                answer = yield waiting_on
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # noqa: BLE001 - a cancel, thrown where it waits
                try:
                    waiting_on = coro.throw(exc)
                except StopIteration:
                    return
            else:
                try:
                    waiting_on = coro.send(answer)
                except StopIteration:
                    return


class GuardedTransport(faust_aiokafka.Transport):
    Consumer = GuardedConsumer


def install_guarded_transport(app: faust.App) -> None:
    """Make ``app`` consume through :class:`GuardedConsumer`.

    Call it before anything reads ``app.consumer``: Faust builds the consumer from the
    transport once (``App._consumer``) and keeps it, so a later transport would be ignored.
    """
    if app._consumer is not None:
        raise RuntimeError("the app's consumer exists already: install the transport first")
    app.transport = GuardedTransport(app.conf.broker_consumer, app)


def guarded_consumer(app: faust.App) -> GuardedConsumer:
    """The app's consumer, which :func:`install_guarded_transport` made a guarded one."""
    consumer = app.consumer
    if not isinstance(consumer, GuardedConsumer):
        raise TypeError(f"{type(consumer).__name__} is not a GuardedConsumer: "
                        "install_guarded_transport(app) first")
    return consumer

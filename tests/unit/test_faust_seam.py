"""Canary: the private faust-streaming/aiokafka API that streams/faust_seam.py relies on.

Each test names what an upgrade could take away. If one fails after a version bump, the
seam must be revisited before the pin in pyproject.toml moves (see the seam's docstring).
Everything here runs against the real classes, without a broker.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import inspect
import weakref
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from weakref import WeakSet

import aiokafka
import faust
import faust.streams
import pytest
from faust.events import Event
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from faust.types.tuples import Message

from core.settings import Settings
from streams.app import create_app
from streams.faust_seam import (
    READ_COMMITTED,
    WORKER_FETCH_MAX_WAIT_MS,
    GuardedConsumer,
    GuardedConsumerThread,
    _deliver,
    guarded_consumer,
    install_guarded_transport,
    set_in_partition_of,
)

IDENTITY = TP("unit-seam.identity.records", 3)
DRAIN_LOOP_DIGEST = "44a2500309e83c63"


@pytest.fixture
def app() -> Iterator[faust.App]:
    """The real worker app, built as the worker builds it (nothing is started)."""
    yield create_app(Settings(namespace="unit-seam", data_dir=Path("/nonexistent")))


def message(tp: TP, offset: int) -> Message:
    return Message(tp.topic, tp.partition, offset, timestamp=0.0, timestamp_type=0,
                   headers=None, key=None, value=b"{}", checksum=None, tp=tp)


def event(app: faust.App, tp: TP, offset: int) -> Event:
    return Event(app, None, b"{}", {}, message(tp, offset))


# -- what exists on the real classes --------------------------------------------------------

def test_the_private_methods_we_override_still_exist_with_their_signatures() -> None:
    base = faust_consumer.Consumer
    assert list(inspect.signature(base._new_offset).parameters) == ["self", "tp"]
    assert inspect.iscoroutinefunction(base._add_gap)
    assert list(inspect.signature(base._add_gap).parameters) == [
        "self", "tp", "offset_from", "offset_to"]
    assert "_new_consumer_thread" in vars(faust_aiokafka.Consumer)
    assert list(inspect.signature(
        faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer).parameters)[:2] == [
        "self", "transport"]
    # the fetch loop is a copy with one change: any change to Faust's own is to be read
    # and carried over (the digest of faust-streaming 0.15.3's source of the method)
    source = inspect.getsource(base._drain_messages)
    assert hashlib.sha256(source.encode()).hexdigest()[:16] == DRAIN_LOOP_DIGEST, (
        "faust-streaming's Consumer._drain_messages changed: compare it with "
        "GuardedConsumer._drain_messages, then update DRAIN_LOOP_DIGEST")
    # the public methods the seam and its users call
    for name in ("ack", "seek", "earliest_offsets", "highwaters", "assignment"):
        assert callable(getattr(base, name)), name


def test_the_ack_bookkeeping_attributes_keep_their_shapes(app: faust.App) -> None:
    consumer = guarded_consumer(app)
    assert isinstance(consumer._acked, defaultdict) and consumer._acked.default_factory is list
    assert isinstance(consumer._acked_index, defaultdict)
    assert consumer._acked_index.default_factory is set
    assert isinstance(consumer._committed_offset, defaultdict)
    assert consumer._committed_offset[IDENTITY] is None  # "never committed" reads as None
    assert isinstance(consumer._unacked_messages, WeakSet)
    assert "acked" in Message.__slots__


def test_the_current_event_is_a_context_variable_the_tables_read(app: faust.App) -> None:
    assert isinstance(faust.streams._current_event, contextvars.ContextVar)
    current = event(app, IDENTITY, 1)
    token = faust.streams._current_event.set(weakref.ref(current))
    try:
        assert faust.streams.current_event() is current
    finally:
        faust.streams._current_event.reset(token)
    assert faust.streams.current_event() is None


# -- what the seam does, exercised on the real classes --------------------------------------

def test_the_workers_read_committed_records_only(app: faust.App) -> None:
    # Faust reads read_uncommitted unless the app runs transactions itself: an aborted
    # transaction's records would be processed. The guarded thread sets the level.
    async def build() -> object:
        thread = app.consumer._thread  # type: ignore[attr-defined]
        assert isinstance(thread, GuardedConsumerThread)
        return thread._create_worker_consumer(app.transport)

    aiokafka_consumer = asyncio.run(build())
    assert aiokafka_consumer._isolation_level == READ_COMMITTED  # type: ignore[attr-defined]


def test_the_workers_fetch_waits_are_short(app: faust.App) -> None:
    # One fetch in flight per broker: a partition handed over meanwhile waits for it to
    # return, up to the fetch wait (Faust's 1,500 ms). The fetcher is built from the
    # consumer's attribute at start().
    async def build() -> object:
        thread = app.consumer._thread  # type: ignore[attr-defined]
        return thread._create_worker_consumer(app.transport)

    aiokafka_consumer = asyncio.run(build())
    assert aiokafka_consumer._fetch_max_wait_ms == WORKER_FETCH_MAX_WAIT_MS  # type: ignore[attr-defined]
    assert "fetch_max_wait_ms=self._fetch_max_wait_ms" in inspect.getsource(
        aiokafka.AIOKafkaConsumer.start)


def test_faust_commit_arithmetic_runs_under_the_guard(app: faust.App) -> None:
    consumer = guarded_consumer(app)
    consumer._committed_offset[IDENTITY] = 100
    consumer._acked[IDENTITY].extend([100, 101, 102, 104])
    assert consumer._new_offset(IDENTITY) == 103  # Faust's own code past our check
    assert consumer.acked(IDENTITY) == [104]
    consumer._committed_offset[IDENTITY] = 103
    assert consumer._new_offset(IDENTITY) is None  # a one-message hole at 103: no commit
    consumer.assignment = lambda: {IDENTITY}  # type: ignore[method-assign]
    assert consumer.ack_undeliverable(IDENTITY, [102, 103]) == [103]  # a verified marker
    assert consumer._new_offset(IDENTITY) == 105
    consumer._acked[IDENTITY].append(107)
    asyncio.run(consumer._add_gap(IDENTITY, 105, 110))
    assert not consumer._gap[IDENTITY]  # a jump in received offsets invents no acks
    consumer.forget_acks(IDENTITY)
    assert consumer.acked(IDENTITY) == [] and consumer.committed(IDENTITY) == 103
    assert consumer._new_offset(IDENTITY) is None


def test_a_never_acked_message_is_ignored_by_fausts_ack(app: faust.App) -> None:
    consumer = guarded_consumer(app)
    skipped = message(IDENTITY, 7)
    consumer._unacked_messages.add(skipped)
    consumer.never_ack(skipped)
    assert skipped not in consumer._unacked_messages
    assert consumer.ack(skipped) is False  # take_events acks it after the batch: no effect
    assert consumer.acked(IDENTITY) == []


def test_a_table_write_goes_to_the_partition_of_the_event_given(app: faust.App) -> None:
    table = app.Table("seam-canary", default=None, partitions=8, key_type=str)
    sent: list[int | None] = []

    def send_changelog(partition, key, value, *args, **kwargs):  # type: ignore[no-untyped-def]
        sent.append(partition)
        return SimpleNamespace(message=SimpleNamespace(partition=partition))

    table.send_changelog = send_changelog  # type: ignore[method-assign]
    batch_last = event(app, TP(IDENTITY.topic, 1), 9)
    owner = event(app, IDENTITY, 4)
    token = faust.streams._current_event.set(weakref.ref(batch_last))
    try:
        set_in_partition_of(table, owner, "k", {"v": 1})
        assert faust.streams.current_event() is batch_last  # restored afterwards
        table["other"] = {"v": 2}
    finally:
        faust.streams._current_event.reset(token)
    assert sent == [IDENTITY.partition, 1]
    assert table["k"] == {"v": 1}


def test_the_guard_is_installed_before_faust_builds_its_consumer() -> None:
    def new_app() -> faust.App:
        return faust.App("unit-seam-plain", broker="kafka://127.0.0.1:1", web_enabled=False)

    plain = new_app()
    with pytest.raises(TypeError):
        guarded_consumer(plain)
    with pytest.raises(RuntimeError):  # too late: Faust keeps the consumer it built
        install_guarded_transport(plain)
    guarded = new_app()
    install_guarded_transport(guarded)
    assert isinstance(guarded_consumer(guarded), GuardedConsumer)


# -- the fetch loop: a record handed over without a task unless it must wait ----------------

def test_a_hand_over_that_does_not_wait_finishes_without_a_task() -> None:
    done: list[int] = []

    async def handover() -> None:
        done.append(1)

    async def main() -> None:
        tasks_before = len(asyncio.all_tasks())
        assert _deliver(handover()) is None
        assert done == [1] and len(asyncio.all_tasks()) == tasks_before

    asyncio.run(main())


def test_a_hand_over_that_waits_is_resumed_where_it_waited() -> None:
    steps: list[str] = []

    async def handover(room: asyncio.Future[int]) -> None:
        steps.append("queued")
        await asyncio.sleep(0)  # a bare yield
        steps.append(f"room {await room}")

    async def main() -> None:
        room: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        rest = _deliver(handover(room))
        assert rest is not None and steps == ["queued"]
        task = asyncio.ensure_future(rest)
        await asyncio.sleep(0.01)
        assert not task.done()
        room.set_result(5)
        await task
        assert steps == ["queued", "room 5"]

    asyncio.run(main())


def test_a_waiting_hand_over_is_cancelled_where_it_waits() -> None:
    cleaned: list[bool] = []

    async def handover(room: asyncio.Future[None]) -> None:
        try:
            await room
        finally:
            cleaned.append(True)

    async def main() -> None:
        room: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        rest = _deliver(handover(room))
        assert rest is not None
        task = asyncio.ensure_future(rest)
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert cleaned == [True] and room.cancelled()

    asyncio.run(main())


def test_a_hand_over_that_fails_raises_as_it_would() -> None:
    async def handover() -> None:
        raise ValueError("undecodable")

    with pytest.raises(ValueError, match="undecodable"):
        _deliver(handover())


def loop_consumer() -> GuardedConsumer:
    """The worker's guarded consumer, built on the running loop (its flow events belong to
    the loop that waits on them)."""
    return guarded_consumer(create_app(Settings(namespace="unit-seam",
                                                data_dir=Path("/nonexistent"))))


async def drain(consumer: GuardedConsumer, fetches: list[list[Message]]) -> None:
    """Run the consumer's fetch loop over ``fetches`` (one list per fetch), then stop it."""
    fetcher = SimpleNamespace(_stopped=asyncio.Event())

    async def getmany(timeout: float):  # type: ignore[no-untyped-def]
        if not fetches:
            fetcher._stopped.set()
            return
        for m in fetches.pop(0):
            yield m.tp, m

    consumer.getmany = getmany  # type: ignore[method-assign]
    await asyncio.wait_for(consumer._drain_messages(fetcher), timeout=5)


def test_the_fetch_loop_hands_over_in_order_and_races_only_a_waiting_record() -> None:
    """GuardedConsumer._drain_messages on the real class, fed two fetches: the second
    fetch's first record meets a full queue while a flow stop comes (a rebalance): it is
    cancelled as Faust cancels it, its read offset is passed as Faust passes it, and the
    loop goes on."""
    fetches = [[message(IDENTITY, o) for o in (10, 11, 12)],
               [message(IDENTITY, o) for o in (13, 14)]]
    handed: list[int] = []
    cancelled: list[int] = []

    async def main() -> GuardedConsumer:
        consumer = loop_consumer()
        full = asyncio.get_running_loop().create_future()

        async def callback(m: Message) -> None:
            if m.offset == 13:
                consumer.suspend_flow.set()  # a rebalance starts while the queue is full
                try:
                    await full
                except asyncio.CancelledError:
                    cancelled.append(m.offset)
                    raise
            handed.append(m.offset)

        consumer.callback = callback
        consumer._read_offset[IDENTITY] = 10
        await drain(consumer, fetches)
        return consumer

    consumer = asyncio.run(main())
    assert handed == [10, 11, 12, 14]
    assert cancelled == [13]
    assert consumer._read_offset[IDENTITY] == 14


def test_the_fetch_loop_notes_the_generation_each_record_was_handed_over_in() -> None:
    """A record handed over in the group's current generation is on its way through the
    streams; once a rebalance starts a new generation, it may have been dropped."""

    async def main() -> None:
        consumer = loop_consumer()

        async def callback(m: Message) -> None:
            pass

        consumer.callback = callback
        consumer.app.consumer_generation_id = 7
        fetched = [message(IDENTITY, o) for o in (10, 11)]
        for m in fetched:
            m.generation_id = 7
        await drain(consumer, [fetched])
        assert consumer.handed_over(IDENTITY) == 11
        assert consumer.handed_in_this_generation(IDENTITY)
        consumer.app.consumer_generation_id = 8  # a rebalance
        assert not consumer.handed_in_this_generation(IDENTITY)
        consumer._read_offset[IDENTITY] = 5  # sought since: no hand-over since the seek
        consumer.app.consumer_generation_id = 7
        assert not consumer.handed_in_this_generation(IDENTITY)

    asyncio.run(main())


def test_a_rewind_during_a_fetch_seeks_after_the_fetched_records_are_handed_over() -> None:
    """A seek in the middle of a fetched batch would let the batch's later records move the
    read offset past the re-read ones (Faust drops those as old): it waits for the batch."""
    fetches = [[message(IDENTITY, o) for o in (10, 11, 12)], [message(IDENTITY, 13)]]
    log: list[str] = []

    async def main() -> None:
        consumer = loop_consumer()

        async def callback(m: Message) -> None:
            log.append(f"handed {m.offset}")
            if m.offset == 11:
                await consumer.rewind_to(IDENTITY, 10)

        async def seek(tp: TP, offset: int) -> None:
            log.append(f"seek {offset}")
            consumer._read_offset[tp] = offset

        consumer.callback = callback
        consumer.seek = seek  # type: ignore[method-assign]
        consumer.assignment = lambda: {IDENTITY}  # type: ignore[method-assign]
        consumer._acked[IDENTITY].extend([10])
        await drain(consumer, fetches)
        assert consumer.acked(IDENTITY) == []  # forgotten: read again

    asyncio.run(main())
    assert log == ["handed 10", "handed 11", "handed 12", "seek 10", "handed 13"]

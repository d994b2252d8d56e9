"""The agents' batches bounded by events (streams.faust_take), on a real Faust agent.

The agent runs in Faust's own test context (its channel, no broker is contacted). That the
events of a batch are acked only after the loop body, so a killed worker re-reads them, is
exercised with the real broker in the worker-kill tests (tests/reliability)."""

from __future__ import annotations

import asyncio
import hashlib
import inspect

import faust
import faust.streams

from streams.faust_take import lines_in, take_weighted

# faust-streaming 0.15.3's Stream.take_events, which take_weighted copies with one change
TAKE_EVENTS_DIGEST = "607d48aead118ba8"


def test_the_copied_take_is_still_fausts() -> None:
    source = inspect.getsource(faust.Stream.take_events)
    assert hashlib.sha256(source.encode()).hexdigest()[:16] == TAKE_EVENTS_DIGEST, (
        "faust-streaming's Stream.take_events changed: compare it with "
        "streams.faust_take._take_weighted, then update TAKE_EVENTS_DIGEST")
    # what the copy reaches into on the stream
    assert "_active_agens" in inspect.getsource(faust.streams._tracks_buffer_agen)
    for name in ("_enable_passive", "add_processor", "wait_for_stopped", "ack", "wait"):
        assert callable(getattr(faust.Stream, name)), name


def test_a_message_weighs_its_lines() -> None:
    assert lines_in(b'{"event_id": "a"}') == 1
    assert lines_in(b'{"a": 1}\n{"a": 2}\n{"a": 3}') == 3
    assert lines_in(None) == 1


def batches_of(values: list[bytes], max_weight: int, within: float) -> list[list[bytes]]:
    app = faust.App("unit-take", broker="kafka://localhost:1", store="memory://")
    got: list[list[bytes]] = []

    @app.agent()
    async def take(stream: faust.Stream) -> None:
        async for events in take_weighted(stream, max_weight, within):
            got.append([e.value for e in events])

    async def run() -> None:
        async with take.test_context() as agent:
            for value in values:
                await agent.put(value)
            for _ in range(50):
                if sum(map(len, got)) >= len(values):
                    break
                await asyncio.sleep(0.05)

    asyncio.run(run())
    return got


def test_a_batch_is_full_at_its_events_not_its_messages() -> None:
    values = [b"a\nb\nc", b"d", b"e\nf", b"g\nh\ni\nj\nk", b"l"]
    # 3 + 1 events fill a batch of 4; 2 + 5 go over it (a message is never split); the
    # last one waits for the timeout alone
    assert batches_of(values, 4, 0.3) == [[b"a\nb\nc", b"d"], [b"e\nf", b"g\nh\ni\nj\nk"],
                                          [b"l"]]


def test_single_event_messages_batch_as_faust_batches_them() -> None:
    values = [f"{{\"n\": {i}}}".encode() for i in range(7)]
    assert batches_of(values, 3, 0.3) == [values[0:3], values[3:6], values[6:7]]

"""A stream agent's batches bounded by the events they hold, not the messages.

Faust's ``Stream.take_events(max_, within)`` yields a batch when it holds ``max_`` messages
or ``within`` seconds have passed. A raw message may carry a batch of events (NDJSON, up to
50 lines from a gateway), and the internal topics carry blocks of rows, so a take of 2,000
messages could hold 100,000 events: several seconds of work before anything is sent on,
while the sink waits, then a burst. Measured on the 2-core machine (``leadloom bench``,
50,000 events, 50 a message, two runs each): takes of 2,000 messages, 12.0k and 12.2k
events/s, worker peak RSS 1.05-1.08 GB; takes of 2,000 events, 14.9k and 14.2k events/s,
0.36-0.37 GB (ARCHITECTURE.md, "Performance notes").

Contract
--------
:func:`take_weighted` is ``take_events`` with one change: a batch is full when the events
of its messages (:func:`lines_in`) add up to ``max_weight``, so one message carrying more
than that is a batch alone. Everything else is Faust's, line for
line: the buffering processor, the ``within`` timeout, the events acked only after the
loop body has run for the batch (at least once), and the generator registered on the
stream, which closes it when it stops. tests/unit/test_faust_take.py pins a digest of
Faust's method: an upgrade that changes it fails until this copy is compared again.
"""

from __future__ import annotations

import asyncio
from asyncio import CancelledError
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import faust
from faust.types import EventT
from mode.utils.aiter import aiter
from mode.utils.futures import notify
from mode.utils.times import want_seconds


def lines_in(value: object) -> int:
    """The events a raw or internal message carries: its newline-separated lines (an
    unbatched message, or anything not bytes, is one)."""
    return value.count(b"\n") + 1 if isinstance(value, bytes) else 1


def take_weighted(stream: faust.Stream, max_weight: int, within: float
                  ) -> AsyncIterator[list[EventT]]:
    """``stream.take_events(max_weight, within)`` with batches bounded by the events
    their messages carry (:func:`lines_in`, module docstring). Registered on the stream as
    Faust registers its own takes."""
    agen = _take_weighted(stream, max_weight, within)
    stream._active_agens.add(agen)
    return agen


async def _take_weighted(self: Any, max_: int, within: float
                         ) -> AsyncGenerator[list[EventT], None]:
    # faust-streaming 0.15.3 Stream.take_events, ``self`` the stream; changed lines: the
    # running ``taken`` weight (marked "weighted").
    buffer: list[Any] = []
    events: list[EventT] = []
    buffer_add = buffer.append
    event_add = events.append
    taken = 0  # weighted
    buffer_full = asyncio.Event()
    buffer_consumed = asyncio.Event()
    timeout = want_seconds(within) if within else None
    stream_enable_acks: bool = self.enable_acks

    buffer_consuming: asyncio.Future | None = None

    channel_it = aiter(self.channel)

    # We add this processor to populate the buffer, and the stream
    # is passively consumed in the background (enable_passive below).
    async def add_to_buffer(value: Any) -> Any:
        nonlocal taken, buffer_consuming  # weighted: taken
        try:
            # buffer_consuming is set when consuming buffer after timeout.
            if buffer_consuming is not None:
                try:
                    await buffer_consuming
                finally:
                    buffer_consuming = None
            buffer_add(value)
            event = self.current_event
            if event is None:
                raise RuntimeError("Take buffer found current_event is None")
            event_add(event)
            taken += lines_in(value)  # weighted
            if taken >= max_:  # weighted
                # signal that the buffer is full and should be emptied.
                buffer_full.set()
                # strict wait for buffer to be consumed after buffer full.
                buffer_consumed.clear()
                await self.wait(buffer_consumed)
        except CancelledError:  # pragma: no cover
            raise
        except Exception as exc:
            self.log.exception("Error adding to take buffer: %r", exc)
            await self.crash(exc)
        return value

    # Disable acks to ensure this method acks manually
    # events only after they are consumed by the user
    self.enable_acks = False

    self.add_processor(add_to_buffer)
    self._enable_passive(channel_it)
    try:
        while not self.should_stop:
            # wait until buffer full, or timeout.
            await self.wait_for_stopped(buffer_full, timeout=timeout)
            if buffer:
                # make sure background thread does not add new items to
                # buffer while we read.
                buffer_consuming = self.loop.create_future()
                try:
                    yield list(events)
                finally:
                    buffer.clear()
                    taken = 0  # weighted
                    for event in events:
                        await self.ack(event)
                    events.clear()
                    # allow writing to buffer again
                    notify(buffer_consuming)
                    buffer_full.clear()
                    buffer_consumed.set()
    finally:
        # Restore last behaviour of "enable_acks"
        self.enable_acks = stream_enable_acks
        self._processors.remove(add_to_buffer)

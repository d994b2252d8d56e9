"""The load ``leadloom bench`` offers, and what each process spends on it.

:class:`Publisher` publishes in a process of its own, so that the producer
neither shares the interpreter lock with the sink it measures nor sets the pace for it:
it gets the day the bench simulated (the same events the offline core ran), and the
clock starts when the publisher is told to go. :func:`cpu_seconds` reads a process's CPU
time from ``/proc``, so the bench can report CPU per event for the workers, the sink's
process, the broker and the publisher.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from core.settings import Settings
from producers.simulator.recorder import OutgoingMessage

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
_READY_TIMEOUT_S = 300.0


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of the live process ``pid`` so far, in seconds; None if
    it is gone or ``/proc`` does not show it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: count from its end
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_S  # utime, stime


@dataclass(frozen=True)
class Published:
    messages: int  # Kafka messages sent
    events: int  # events in them
    seconds: float  # from the go to the last acknowledgement
    cpu_s: float  # the publisher's CPU time while publishing


@dataclass(frozen=True)
class Load:
    """What to publish: ``messages`` in order, paced to ``rate`` events/s (None: as fast as
    the producer goes), restamped at the send time if ``restamp_now`` (a latency probe), at
    most ``batch`` events per Kafka message (NDJSON)."""

    messages: list[OutgoingMessage]
    rate: float | None = None
    restamp_now: bool = False
    batch: int = 1


class Publisher:
    """A process of its own that takes ``load`` (the bench simulated it) and publishes it
    on :meth:`go`.

    Raises ``RuntimeError`` with the child's reason if it fails or does not get ready.
    """

    def __init__(self, settings: Settings, load: Load) -> None:
        context = multiprocessing.get_context("spawn")  # no copy of this process's threads
        self._conn, child = context.Pipe()
        self.process = context.Process(target=_publisher_main, args=(settings, load, child),
                                       name="bench-publisher", daemon=True)
        self.process.start()
        child.close()
        self._receive("ready", _READY_TIMEOUT_S)  # started, its imports done

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    def go(self) -> None:
        self._conn.send("go")

    def wait(self, timeout_s: float) -> Published:
        result = self._receive("done", timeout_s)
        self.process.join(timeout=10)
        return Published(**result)

    def close(self) -> None:
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=10)
        self._conn.close()

    def _receive(self, expected: str, timeout_s: float) -> Any:
        if not self._conn.poll(timeout_s):
            self.close()
            raise RuntimeError(f"the bench's publisher did not report {expected!r}"
                               f" within {timeout_s:.0f} s")
        try:
            kind, value = self._conn.recv()
        except EOFError:
            self.close()
            raise RuntimeError("the bench's publisher exited without a word") from None
        if kind == "failed":
            self.close()
            raise RuntimeError(f"the bench's publisher failed: {value}")
        return value


def _publisher_main(settings: Settings, load: Load, conn: Connection) -> None:
    # imported here: the spawned child starts from a bare interpreter
    from producers.simulator.publish import publish

    try:
        conn.send(("ready", None))
        conn.recv()
        started, cpu = time.time(), time.process_time()
        report = publish(load.messages, settings, rate=load.rate,
                         restamp_now=load.restamp_now, batch=load.batch)
        conn.send(("done", {"messages": report.kafka_messages, "events": report.sent,
                            "seconds": time.time() - started,
                            "cpu_s": time.process_time() - cpu}))
    except Exception as exc:  # noqa: BLE001 - reported to the bench as its one-line reason
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()

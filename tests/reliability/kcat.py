"""kcat (librdkafka's command-line client, Debian package ``kcat``) as the only producer.

A foreign client has its own default partitioner (``consistent_random``: CRC32 of the key;
the Java client and kafka-python use murmur2), its own framing and its own limits, so the
pipeline sees what a new user's tools send. Messages go through kcat's stdin, framed with
delimiters that never occur in a message (checked), so values may hold newlines, NUL
bytes and invalid UTF-8. Where each message landed is read back from the broker
(:func:`read_back`): kcat does not report offsets.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from core.kafka import bootstrap_list, fetch_sizes
from core.settings import Settings
from schemas.registry import RAW_TOPIC_BY_EVENT_TYPE
from tests.reliability.traffic import Message

MESSAGE_DELIMITER = b"\x1e\x1fLEADLOOM-MESSAGE\x1f\x1e"
KEY_DELIMITER = b"\x1e\x1fLEADLOOM-KEY\x1f\x1e"
# librdkafka refuses messages over its message.max.bytes (default 1,000,000 bytes): runs with
# a value above this (less framing overhead) raise it to the pipeline's wire limit.
LARGE = 900_000
INSTALL_HINT = "install it: apt-get install -y kcat (./dev test does this when run as root)"


class KcatError(AssertionError):
    """kcat failed to deliver (a test failure, never a skip)."""


def _escaped(delimiter: bytes) -> str:
    """kcat's -D/-K syntax: \\xNN for control bytes, the rest as is."""
    return "".join(f"\\x{b:02x}" if b < 0x20 else chr(b) for b in delimiter)


def kcat_binary() -> str:
    path = shutil.which("kcat")
    if path is None:
        raise KcatError(f"kcat not found on PATH: {INSTALL_HINT}")
    return path


def frame(messages: Iterable[Message]) -> bytes:
    """kcat's stdin for ``messages``: key, key delimiter, value, message delimiter."""
    parts = []
    for m in messages:
        value = m.value or b""
        for delimiter in (MESSAGE_DELIMITER, KEY_DELIMITER):
            if delimiter in value or delimiter in m.key:
                raise ValueError(f"{m.kind}: the message contains kcat's delimiter")
        parts.append(m.key + KEY_DELIMITER + value + MESSAGE_DELIMITER)
    return b"".join(parts)


def command(settings: Settings, event_type: str, *, partitioner: str | None = None,
            null_values: bool = False, large: bool = False) -> list[str]:
    topic = settings.topics.raw(event_type)
    args = [kcat_binary(), "-P", "-q", "-b", ",".join(bootstrap_list(settings)), "-t", topic,
            "-D", _escaped(MESSAGE_DELIMITER), "-K", _escaped(KEY_DELIMITER),
            "-X", "acks=all"]
    if partitioner is not None:
        args += ["-X", f"partitioner={partitioner}"]
    if null_values:
        args.append("-Z")  # an empty value goes as NULL (a tombstone)
    if large:
        args += ["-X", f"message.max.bytes={settings.kafka_wire_max_bytes}"]
    return args


def produce(settings: Settings, messages: list[Message], *, partitioner: str | None = None,
            timeout_s: float = 120) -> float:
    """Send ``messages`` with one kcat run per raw topic, in order; return the seconds taken.

    Null values (``value is None``) go in a run of their own with ``-Z``. Raises
    :class:`KcatError` when kcat reports any failed delivery.
    """
    runs: list[tuple[str, bool, list[Message]]] = []
    for m in messages:
        null = m.value is None
        if runs and runs[-1][0] == m.event_type and runs[-1][1] == null:
            runs[-1][2].append(m)
        else:
            runs.append((m.event_type, null, [m]))
    start = time.monotonic()
    for event_type, null, batch in runs:
        large = any(len(m.value or b"") > LARGE for m in batch)
        args = command(settings, event_type, partitioner=partitioner, null_values=null,
                       large=large)
        done = subprocess.run(args, input=frame(batch), capture_output=True, timeout=timeout_s,
                              check=False)
        _check(done.returncode, done.stderr, args)
    return time.monotonic() - start


def _check(returncode: int, stderr: bytes, args: list[str]) -> None:
    text = stderr.decode(errors="replace")
    if returncode != 0 or "Delivery failed" in text or "ERROR" in text:
        raise KcatError(f"kcat exited {returncode}: {text.strip()[:2000]} ({' '.join(args)})")


class Stream:
    """One kcat per raw topic, fed through stdin while it runs (a paced, live producer)."""

    def __init__(self, settings: Settings, *, partitioner: str | None = None) -> None:
        self.settings = settings
        self.partitioner = partitioner
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.sent = 0

    def send(self, m: Message) -> None:
        if m.value is None:
            raise ValueError("a stream sends no null values (they need kcat -Z)")
        proc = self.procs.get(m.event_type)
        if proc is None:
            args = command(self.settings, m.event_type, partitioner=self.partitioner,
                           large=True)
            proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE)
            self.procs[m.event_type] = proc
        assert proc.stdin is not None
        proc.stdin.write(frame([m]))
        self.sent += 1

    def flush(self) -> None:
        for proc in self.procs.values():
            assert proc.stdin is not None
            proc.stdin.flush()

    def close(self, timeout_s: float = 120) -> None:
        """Close every stdin, wait for kcat to deliver everything; raise on any failure."""
        failures = []
        for proc in self.procs.values():
            assert proc.stdin is not None and proc.stderr is not None
            proc.stdin.close()
        for proc in self.procs.values():
            assert proc.stderr is not None
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            stderr = proc.stderr.read()
            try:
                _check(proc.returncode, stderr, list(map(str, proc.args)))  # type: ignore[arg-type]
            except KcatError as exc:
                failures.append(str(exc))
        if failures:
            raise KcatError("; ".join(failures))


@dataclass(frozen=True)
class Landed:
    """Where one message landed, and the label the caller gave its value."""

    topic: str
    partition: int
    offset: int
    label: str
    size: int = 0  # of the value (a null value has size 0)
    sha256: str = ""  # of the value
    head: bytes = b""  # its first 64 bytes

    @property
    def where(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


def read_back(settings: Settings, label_of: Callable[[bytes | None], str],
              event_types: Iterable[str] = tuple(RAW_TOPIC_BY_EVENT_TYPE),
              timeout_s: float = 60) -> list[Landed]:
    """Every record now on the raw topics, labelled by ``label_of(value)``."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap_list(settings), enable_auto_commit=False,
        **fetch_sizes(settings),
    )
    try:
        partitions = [TopicPartition(t, p)
                      for t in (settings.topics.raw(e) for e in event_types)
                      for p in sorted(consumer.partitions_for_topic(t) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        landed: list[Landed] = []
        remaining = {tp for tp in partitions if ends[tp] > 0}
        deadline = time.monotonic() + timeout_s
        while remaining:
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read back the raw topics: {remaining}")
            for tp, records in consumer.poll(timeout_ms=500).items():
                for r in records:
                    value = r.value or b""
                    landed.append(Landed(r.topic, r.partition, r.offset, label_of(r.value),
                                         len(value), hashlib.sha256(value).hexdigest(),
                                         value[:64]))
                if consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        return landed
    finally:
        consumer.close()

"""Transactional producers: committed transactions are stored once, aborted ones never, and
neither wedges the commits.

kcat with ``-X transactional.id=...`` sends its whole input in one transaction, committed
when stdin closes; interrupted before that, it leaves the transaction to the broker, which
aborts it after its timeout. Each transaction leaves a marker (a control record) on every
partition it wrote to: an offset no consumer receives. The worker's
stuck-commit guard once took such a marker for a dropped message and re-read the partition
every 10 s for good (206 messages of raw lag after 10 transactional and 200 ordinary
scans), and the worker read ``read_uncommitted``, so a transaction interrupted before its
commit stored 7 scans that never happened.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterable

import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from core.kafka import bootstrap_list
from core.settings import Settings
from leadloom.pipeline import Pipeline
from schemas.registry import TABLE_BY_EVENT_TYPE
from tests.reliability import kcat
from tests.reliability.conftest import Figures
from tests.reliability.ledger import audit, fail_unless_exact, settle
from tests.reliability.traffic import SCAN, Message, message, valid_event, valid_mix

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

SETTLE_S = 60  # a marker is verified and passed within two heal checks (5 s apart)
ROUNDS = 5


def transactional(settings: Settings, txn_id: str) -> list[str]:
    """kcat producing raw scans in one transaction (committed at end of input)."""
    return [*kcat.command(settings, SCAN), "-X", f"transactional.id={txn_id}"]


TXN_TIMEOUT_MS = 5000  # the broker aborts a transaction its producer left open after this
FILLER = b'{"filler": "' + b"x" * 8192 + b'"}'


class OpenTransaction:
    """A transaction that has written ``messages`` to the raw scans topic, not committed.

    ``kcat``: a transactional kcat, fed one message a line (key TAB value) and a last line
    of 8 KiB filler (also in the transaction): kcat reads its input in 4 KiB blocks, so
    the messages before it are sent at once. :meth:`abort` interrupts it with SIGINT
    before it commits; kcat then exits without aborting (measured: "Program terminated
    while producing"), and the broker aborts the transaction after its timeout.
    ``kafka-python``: kafka-python's transactional producer; :meth:`abort` calls
    ``abort_transaction()``, which writes the abort markers at once.
    """

    def __init__(self, settings: Settings, messages: list[Message], client: str,
                 txn_id: str) -> None:
        self.client = client
        self.proc: subprocess.Popen[bytes] | None = None
        self.producer: KafkaProducer | None = None
        if client == "kcat":
            args = [kcat.kcat_binary(), "-P", "-q", "-b", ",".join(bootstrap_list(settings)),
                    "-t", settings.topics.raw(SCAN), "-K", "\\t", "-X", "acks=all",
                    "-X", f"transactional.id={txn_id}",
                    "-X", f"transaction.timeout.ms={TXN_TIMEOUT_MS}"]
            lines = []
            for m in [*messages, Message(SCAN, b"filler", FILLER, "filler")]:
                assert m.value and b"\n" not in m.value and b"\t" not in m.key + m.value
                lines.append(m.key + b"\t" + m.value + b"\n")
            self.proc = subprocess.Popen(args, stdin=subprocess.PIPE,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            assert self.proc.stdin is not None
            self.proc.stdin.write(b"".join(lines))
            self.proc.stdin.flush()
        else:
            self.producer = KafkaProducer(bootstrap_servers=bootstrap_list(settings),
                                          transactional_id=txn_id)
            self.producer.init_transactions()
            self.producer.begin_transaction()
            for m in messages:
                self.producer.send(settings.topics.raw(SCAN), key=m.key, value=m.value)
            self.producer.flush()

    def abort(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGINT)
            assert self.proc.stdin is not None and self.proc.stderr is not None
            self.proc.stdin.close()  # kcat notices the signal once its read returns
            self.proc.wait(timeout=30)
            self.proc.stderr.close()
        if self.producer is not None:
            self.producer.abort_transaction()
            self.producer.close()


def send_in_transaction(settings: Settings, messages: list[Message], txn_id: str) -> None:
    args = transactional(settings, txn_id)
    done = subprocess.run(args, input=kcat.frame(messages), capture_output=True, timeout=120,
                          check=False)
    text = done.stderr.decode(errors="replace")
    if done.returncode != 0 or "ERROR" in text or "Delivery failed" in text:
        raise kcat.KcatError(f"transactional kcat exited {done.returncode}: {text[:2000]}")


def scan_topic_records(settings: Settings, isolation_level: str) -> tuple[list[int], int]:
    """(offsets of the records on the raw scans topic a consumer with ``isolation_level``
    receives, the sum of the partitions' end offsets)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_list(settings),
                             enable_auto_commit=False, isolation_level=isolation_level)
    try:
        topic = settings.topics.raw(SCAN)
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        got: list[int] = []
        deadline = time.monotonic() + 30
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            assert time.monotonic() < deadline, "could not read the scans topic"
            for records in consumer.poll(timeout_ms=300).values():
                got += [r.offset for r in records]
        return got, sum(ends.values())
    finally:
        consumer.close()


def rewinds(pipe: Pipeline) -> int:
    """How often a worker re-read a partition from its committed offset."""
    return sum(p.read_text(errors="replace").count("re-reading from there")
               for p in pipe.log_dir.glob("*.log"))


def event_ids(messages: Iterable[Message]) -> set[str]:
    return {m.event_id for m in messages if m.event_id}


def stored_event_ids(pipe: Pipeline) -> set[str]:
    assert pipe.store is not None
    db = pipe.settings.clickhouse_database
    table = TABLE_BY_EVENT_TYPE[SCAN].name
    return {r[0] for r in pipe.store.query(f"SELECT DISTINCT event_id FROM {db}.{table}").rows}


def test_committed_transactions_amid_ordinary_scans_are_stored_once_and_commits_pass_markers(
    pipeline: Pipeline, figures: Figures,
) -> None:
    sent: list[Message] = []
    for _ in range(ROUNDS):
        batch = [message(valid_event(SCAN)) for _ in range(10)]
        send_in_transaction(pipeline.settings, batch, "leadloom-test-tx")
        ordinary = valid_mix(20)
        kcat.produce(pipeline.settings, ordinary)
        sent += batch + ordinary
    last = [message(valid_event(SCAN)) for _ in range(10)]  # markers end the partitions
    send_in_transaction(pipeline.settings, last, "leadloom-test-tx")
    sent += last
    idle, seconds, why = settle(pipeline, SETTLE_S)
    raw_lag, sink_lag = pipeline.lag()

    records, end = scan_topic_records(pipeline.settings, "read_uncommitted")
    markers = end - len(records)
    landed = kcat.read_back(pipeline.settings, lambda _v: "valid")
    assert len(landed) == len(sent), "kcat delivered every message exactly once"
    found = audit(pipeline, sent, landed)
    figures.record(f"{ROUNDS + 1} kcat transactions of 10 scans amid {ROUNDS * 20} ordinary "
                   f"events ({markers} markers)", lost=found.lost, doubled=found.doubled,
                   seconds=seconds, settled=idle,
                   raw_lag=raw_lag, rewinds=rewinds(pipeline))
    assert markers >= ROUNDS + 1, "each transaction left a marker on the scans topic"
    fail_unless_exact(idle, why, found, "transactional batches")
    assert (raw_lag, sink_lag) == (0, 0)


@pytest.mark.parametrize("client", ["kcat", "kafka-python"])
def test_an_aborted_transaction_stores_nothing_and_holds_up_nothing_for_good(
    pipeline: Pipeline, figures: Figures, client: str,
) -> None:
    settings = pipeline.settings
    before = valid_mix(10)
    kcat.produce(settings, before)
    doomed = [message(valid_event(SCAN)) for _ in range(7)]
    txn = OpenTransaction(settings, doomed, client, f"leadloom-test-abort-{client}")
    deadline = time.monotonic() + 30
    while len(scan_topic_records(settings, "read_uncommitted")[0]) < len(
            [m for m in before if m.event_type == SCAN]) + len(doomed):
        assert time.monotonic() < deadline, "the transaction's scans never reached the log"
        time.sleep(0.2)
    during = valid_mix(10)  # behind the open transaction: held up until it ends
    kcat.produce(settings, during)
    time.sleep(2)
    txn.abort()
    aborted_at = time.monotonic()
    after = valid_mix(10)
    kcat.produce(settings, after)
    sent = before + during + after

    idle, seconds, why = settle(pipeline, SETTLE_S + 20)
    raw_lag, sink_lag = pipeline.lag()
    committed, _ = scan_topic_records(settings, "read_committed")
    doomed_values = {m.value for m in doomed} | {FILLER}
    landed = kcat.read_back(settings, lambda v: "aborted" if v in doomed_values else "valid")
    found = audit(pipeline, sent, landed)
    stored_doomed = event_ids(doomed) & stored_event_ids(pipeline)
    figures.record(f"a transaction of {len(doomed)} scans aborted ({client}) amid "
                   f"{len(sent)} ordinary events", lost=found.lost, doubled=found.doubled,
                   seconds=time.monotonic() - aborted_at, settled=idle, raw_lag=raw_lag,
                   aborted_stored=len(stored_doomed), rewinds=rewinds(pipeline))
    assert sum(1 for at in landed if at.label == "aborted") >= len(doomed), (
        "the aborted scans were written to the log")
    assert len(committed) == sum(1 for m in sent if m.event_type == SCAN), (
        "a read_committed consumer sees only the ordinary scans")
    assert not stored_doomed, f"aborted scans stored: {sorted(stored_doomed)}"
    fail_unless_exact(idle, why, found, f"a transaction aborted ({client})")
    assert (raw_lag, sink_lag) == (0, 0)


def test_the_probe_tells_records_from_markers_and_aborted_records(
    pipeline_settings: Settings,
) -> None:
    """The broker's word the heal acts on (streams.offsets.scan_deliverable), against a real
    log: a committed transaction's records are deliverable; its marker, an aborted
    transaction's records and their marker are not."""
    from faust.types import TP

    from core.kafka import ensure_topics
    from streams.offsets import Scan, scan_deliverable

    settings = pipeline_settings
    ensure_topics(settings)
    bootstrap = bootstrap_list(settings)
    tp = TP(settings.topics.raw(SCAN), 0)
    value = orjson.dumps(valid_event(SCAN))
    producer = KafkaProducer(bootstrap_servers=bootstrap, transactional_id="leadloom-probe")
    try:
        producer.init_transactions()
        for finish in (producer.commit_transaction, producer.abort_transaction):
            producer.begin_transaction()
            for _ in range(3):
                producer.send(tp.topic, value=value, partition=0)
            producer.flush()  # else an abort drops them unsent
            finish()  # @0..2 and a commit marker @3; @4..6 and an abort marker @7
    finally:
        producer.close()
    kcat.produce(settings, [Message(SCAN, b"", value)], partitioner="random")
    records, end = scan_topic_records(settings, "read_uncommitted")
    assert len(records) == 7 and end == 9

    def scan(start: int, stop: int) -> Scan:
        return scan_deliverable(bootstrap, {tp: (start, stop)})[tp]

    if scan(8, 9).reached == 8:  # the random partitioner put the last record elsewhere
        assert scan(3, 8) == Scan(3, 8, ())
    else:
        assert scan(3, 9) == Scan(3, 9, (8,))
    assert scan(0, 8).record_at_start
    assert scan(3, 8).undeliverable() == [3, 4, 5, 6, 7]

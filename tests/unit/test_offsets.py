"""The guarded Faust consumer never commits past an offset it did not process."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from types import SimpleNamespace

from faust.types import TP
from intervaltree import IntervalTree

from streams.faust_seam import GuardedConsumer
from streams.offsets import STALL_CHECKS, Scan, Suspect, heal_stuck, rewind, stuck_partitions

TOPIC_PARTITION = TP("t.raw.scans", 5)


def consumer(acked: list[int], committed: int | None, log_start: int | None = None):
    c = object.__new__(GuardedConsumer)
    c._acked = defaultdict(list, {TOPIC_PARTITION: list(acked)})
    c._acked_index = defaultdict(set, {TOPIC_PARTITION: set(acked)})
    c._gap = defaultdict(IntervalTree)
    c._committed_offset = defaultdict(lambda: None, {TOPIC_PARTITION: committed})
    if log_start is not None:
        c.log_start = {TOPIC_PARTITION: log_start}
    c.assignment = lambda: {TOPIC_PARTITION}
    return c


def test_contiguous_acks_from_the_commit_are_committed() -> None:
    assert consumer([100, 101, 102], committed=100)._new_offset(TOPIC_PARTITION) == 103


def test_a_single_missing_message_at_the_head_stops_the_commit() -> None:
    c = consumer([101, 102, 103], committed=100)
    assert c._new_offset(TOPIC_PARTITION) is None
    assert stuck_partitions(c, ["t.raw.scans"]) == {TOPIC_PARTITION: 100}


def test_before_the_first_commit_nothing_may_be_missing_above_the_log_start() -> None:
    assert consumer([3, 4], committed=None)._new_offset(TOPIC_PARTITION) is None
    assert consumer([0, 1], committed=None)._new_offset(TOPIC_PARTITION) == 2
    assert consumer([40, 41], committed=None, log_start=40)._new_offset(TOPIC_PARTITION) == 42


# -- transactions: offsets that hold no deliverable record ---------------------------------
# A transactional producer leaves a commit or abort marker (a control record) on every
# partition it wrote to; under read_committed, aborted records are never delivered either.
# Such offsets are skipped only when the broker says so (a Scan of the partition).

OTHER = TP("t.raw.scans", 4)


def test_a_scan_reports_the_offsets_without_a_deliverable_record() -> None:
    # 100..102 a committed transaction, 103 its marker, 104..105 aborted, 106 their marker
    scan = Scan(start=100, reached=108, delivered=(100, 101, 102, 107))
    assert scan.undeliverable() == [103, 104, 105, 106]
    assert scan.record_at_start
    assert not Scan(103, 108, (107,)).record_at_start
    assert Scan(103, 103, ()).undeliverable() == []  # nothing read: nothing verified


def test_a_verified_marker_at_the_head_lets_the_commit_pass() -> None:
    c = consumer([101, 102, 103], committed=100)
    assert c._new_offset(TOPIC_PARTITION) is None
    assert c.ack_undeliverable(TOPIC_PARTITION, [100]) == [100]
    assert c._new_offset(TOPIC_PARTITION) == 104


def test_a_marker_that_ends_a_partition_is_stuck_and_then_committed() -> None:
    c = consumer([], committed=100)
    assert stuck_partitions(c, ["t.raw.scans"]) == {}
    assert stuck_partitions(c, ["t.raw.scans"], ends={TOPIC_PARTITION: 101}) == {
        TOPIC_PARTITION: 100}
    assert stuck_partitions(c, ["t.raw.scans"], ends={TOPIC_PARTITION: 100}) == {}
    c.ack_undeliverable(TOPIC_PARTITION, [100])
    assert c._new_offset(TOPIC_PARTITION) == 101


def test_only_offsets_at_or_past_the_floor_and_not_acked_are_acked() -> None:
    c = consumer([101, 102], committed=100)
    assert c.ack_undeliverable(TOPIC_PARTITION, [98, 99, 102, 104, 100]) == [100, 104]
    assert sorted(c._acked[TOPIC_PARTITION]) == [100, 101, 102, 104]
    assert c._new_offset(TOPIC_PARTITION) == 103  # 103 is a real message still to come
    assert c.ack_undeliverable(OTHER, [0, 1]) == []  # not assigned (revoked meanwhile)


class FakeBroker:
    """The probe's answers, and the seeks a rewind makes."""

    def __init__(self, scans: dict | Exception, ends: dict | None = None) -> None:
        self.scans, self.ends = scans, ends or {}
        self.spans: list[dict] = []
        self.seeks: list[tuple[TP, int]] = []

    def probe(self, spans: dict) -> dict:
        self.spans.append(dict(spans))
        if isinstance(self.scans, Exception):
            raise self.scans
        return self.scans

    def attach(self, c: GuardedConsumer) -> GuardedConsumer:
        async def highwaters(*tps: TP) -> dict:
            return {tp: self.ends[tp] for tp in tps if tp in self.ends}

        async def seek(tp: TP, offset: int) -> None:
            self.seeks.append((tp, offset))

        c.highwaters = highwaters  # type: ignore[method-assign]
        c.seek = seek  # type: ignore[method-assign]
        return c


def heal(c: GuardedConsumer, broker: FakeBroker, suspects: dict) -> dict:
    return asyncio.run(heal_stuck(c, suspects, ["t.raw.scans"], broker.probe))


def test_the_broker_is_asked_only_when_stuck_at_the_same_offset_twice() -> None:
    broker = FakeBroker({TOPIC_PARTITION: Scan(100, 104, (101, 102, 103))})
    c = broker.attach(consumer([101, 102, 103], committed=100))
    suspects = heal(c, broker, {})
    assert suspects == {TOPIC_PARTITION: Suspect(100)} and broker.spans == []
    moved = heal(c, broker, {TOPIC_PARTITION: Suspect(99)})
    assert moved == {TOPIC_PARTITION: Suspect(100)}
    assert broker.spans == []
    assert heal(c, broker, suspects) == {}
    assert broker.spans == [{TOPIC_PARTITION: (100, 104)}]  # up to the highest acked
    assert broker.seeks == []  # a marker: passed, nothing re-read
    assert c._new_offset(TOPIC_PARTITION) == 104


def test_several_markers_behind_the_commit_are_passed_in_one_check() -> None:
    acked = [101, 102, 104, 105, 107]
    broker = FakeBroker({TOPIC_PARTITION: Scan(100, 108, (101, 102, 104, 105, 107))})
    c = broker.attach(consumer(acked, committed=100))
    heal(c, broker, {TOPIC_PARTITION: Suspect(100)})
    assert c._new_offset(TOPIC_PARTITION) == 108 and broker.seeks == []


def test_a_real_message_at_the_hole_is_re_read() -> None:
    broker = FakeBroker({TOPIC_PARTITION: Scan(100, 101, (100,))})
    c = broker.attach(consumer([101, 102], committed=100))
    heal(c, broker, {TOPIC_PARTITION: Suspect(100)})
    assert broker.seeks == [(TOPIC_PARTITION, 100)]
    assert c._acked[TOPIC_PARTITION] == []  # forgotten: read again


def test_without_the_brokers_word_a_hole_is_re_read_as_before() -> None:
    broker = FakeBroker(OSError("broker gone"))
    c = broker.attach(consumer([101, 102], committed=100))
    heal(c, broker, {TOPIC_PARTITION: Suspect(100)})
    assert broker.seeks == [(TOPIC_PARTITION, 100)]


def test_an_undecided_transaction_at_the_hole_is_neither_skipped_nor_re_read() -> None:
    # The last stable offset is 100: the scan could read nothing. Ask again later.
    broker = FakeBroker({TOPIC_PARTITION: Scan(100, 100, ())})
    c = broker.attach(consumer([101, 102], committed=100))
    assert heal(c, broker, {TOPIC_PARTITION: Suspect(100)}) == {TOPIC_PARTITION: Suspect(100, 2)}
    assert broker.seeks == [] and c._new_offset(TOPIC_PARTITION) is None


def test_a_trailing_abort_is_passed_and_a_trailing_message_left_to_arrive() -> None:
    # 100..104 aborted, 105 the abort marker, nothing after: the commit must reach 106.
    broker = FakeBroker({TOPIC_PARTITION: Scan(100, 106, ())}, ends={TOPIC_PARTITION: 106})
    c = broker.attach(consumer([], committed=100))
    suspects = heal(c, broker, {})
    assert suspects == {TOPIC_PARTITION: Suspect(100)}
    heal(c, broker, suspects)
    assert broker.spans == [{TOPIC_PARTITION: (100, 106)}]
    assert c._new_offset(TOPIC_PARTITION) == 106

    # A real message at the floor with nothing acked past it is in flight: no re-read.
    broker = FakeBroker({TOPIC_PARTITION: Scan(100, 101, (100,))}, ends={TOPIC_PARTITION: 101})
    c = broker.attach(consumer([], committed=100))
    heal(c, broker, {TOPIC_PARTITION: Suspect(100)})
    assert broker.seeks == [] and c._new_offset(TOPIC_PARTITION) is None


def test_a_rewind_re_reads_from_the_commit_or_an_earlier_offset() -> None:
    broker = FakeBroker({})
    c = broker.attach(consumer([103, 104], committed=100))
    asyncio.run(rewind(c, TOPIC_PARTITION))
    asyncio.run(rewind(c, TOPIC_PARTITION, to=90))
    asyncio.run(rewind(c, TOPIC_PARTITION, to=120))  # never past the commit
    assert broker.seeks == [(TOPIC_PARTITION, 100), (TOPIC_PARTITION, 90),
                            (TOPIC_PARTITION, 100)]
    assert c.acked(TOPIC_PARTITION) == []
    fresh = broker.attach(consumer([5], committed=None, log_start=3))
    asyncio.run(rewind(fresh, TOPIC_PARTITION))
    assert broker.seeks[-1] == (TOPIC_PARTITION, 3)  # nothing committed: the log start


def handed_over(c: GuardedConsumer, offset: int, generation: int, current: int
                ) -> GuardedConsumer:
    """``c`` as it is after handing ``offset`` to the streams, fetched in ``generation``,
    with the group now in generation ``current``."""
    c._read_offset = {TOPIC_PARTITION: offset}
    c._handed = {TOPIC_PARTITION: (offset, generation)}
    c.__dict__["app"] = SimpleNamespace(consumer_generation_id=current)
    return c


def test_a_handed_over_record_never_processed_is_re_read() -> None:
    # The record at the floor went to the streams before a rebalance and nothing was acked
    # after it (a hand-over the rebalance cancelled, at the partition's end): nothing else
    # will come.
    broker = FakeBroker({TOPIC_PARTITION: Scan(100, 101, (100,))}, ends={TOPIC_PARTITION: 101})
    c = handed_over(broker.attach(consumer([], committed=100)), 100, generation=3, current=4)
    heal(c, broker, {TOPIC_PARTITION: Suspect(100)})
    assert broker.seeks == [(TOPIC_PARTITION, 100)]

    # Sought since (the read offset moved elsewhere): the hand-over is history, wait.
    broker = FakeBroker({TOPIC_PARTITION: Scan(100, 101, (100,))}, ends={TOPIC_PARTITION: 101})
    c = broker.attach(consumer([], committed=100))
    c._read_offset = {TOPIC_PARTITION: 99}
    c._handed = {TOPIC_PARTITION: (100, 4)}
    heal(c, broker, {TOPIC_PARTITION: Suspect(100)})
    assert broker.seeks == []


def test_a_record_queued_in_a_stream_of_this_generation_is_waited_for_not_re_read() -> None:
    # A backlog: the floor's record was handed over in the current generation and waits in
    # a stream's queue behind a long batch; nothing of the partition is acked yet.
    broker = FakeBroker({TOPIC_PARTITION: Scan(100, 101, (100,))}, ends={TOPIC_PARTITION: 101})
    c = handed_over(broker.attach(consumer([], committed=100)), 100, generation=4, current=4)
    suspects = heal(c, broker, {})
    for checks in range(2, STALL_CHECKS):
        suspects = heal(c, broker, suspects)
        assert suspects == {TOPIC_PARTITION: Suspect(100, checks)}
        assert broker.seeks == []
    # stuck for STALL_CHECKS checks in a row: re-read all the same, and counted afresh
    assert heal(c, broker, suspects) == {TOPIC_PARTITION: Suspect(100)}
    assert broker.seeks == [(TOPIC_PARTITION, 100)]


def test_a_record_the_fetch_loop_never_handed_over_is_re_read_after_the_stall_bound() -> None:
    # Faust's fetch loop drops the records of a partition it holds inactive after the
    # client's position moved past them: nothing is handed over, nothing will come.
    broker = FakeBroker({TOPIC_PARTITION: Scan(100, 101, (100,))}, ends={TOPIC_PARTITION: 101})
    c = broker.attach(consumer([], committed=100))
    suspects = heal(c, broker, {})
    for _ in range(2, STALL_CHECKS):
        suspects = heal(c, broker, suspects)
    assert broker.seeks == [] and suspects == {TOPIC_PARTITION: Suspect(100, STALL_CHECKS - 1)}
    heal(c, broker, suspects)
    assert broker.seeks == [(TOPIC_PARTITION, 100)]


def test_the_stall_count_starts_again_when_the_floor_moves() -> None:
    broker = FakeBroker({TOPIC_PARTITION: Scan(100, 101, (100,))}, ends={TOPIC_PARTITION: 101})
    c = handed_over(broker.attach(consumer([], committed=100)), 100, generation=4, current=4)
    assert heal(c, broker, {TOPIC_PARTITION: Suspect(90, STALL_CHECKS - 1)}) == {
        TOPIC_PARTITION: Suspect(100)}
    assert broker.seeks == []

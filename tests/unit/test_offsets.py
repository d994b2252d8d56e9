"""The guarded Faust consumer never commits past an offset it did not process."""

from __future__ import annotations

from collections import defaultdict

from faust.types import TP
from intervaltree import IntervalTree

from streams.offsets import GuardedConsumer, stuck_partitions

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

"""When the store owner refreshes the lead intelligence snapshots: only after a change, at
most every MIN_INTERVAL_S, and pausing DUTY_FACTOR times the last refresh's duration; and
on how many engine threads beside the stream."""

from __future__ import annotations

import threading

import pytest

from core import snapshots
from core.snapshots import DUTY_FACTOR, MIN_INTERVAL_S, SnapshotRefresher


class Inputs:
    """A clock, a signature that changes when told and a refresh that takes ``cost`` s."""

    def __init__(self, cost: float = 0.1) -> None:
        self.now = 100.0
        self.version = 0
        self.cost = cost
        self.refreshed = 0

    def clock(self) -> float:
        return self.now

    def signature(self) -> tuple[int, int, int]:
        return (self.version, 0, 0)

    def refresh(self) -> None:
        self.now += self.cost
        self.refreshed += 1


def refresher(inputs: Inputs) -> SnapshotRefresher:
    return SnapshotRefresher(inputs.refresh, inputs.signature, clock=inputs.clock)


def test_the_first_check_refreshes_and_an_unchanged_store_is_left_alone() -> None:
    inputs = Inputs()
    r = refresher(inputs)
    assert r.due()
    r.refresh_now()
    inputs.now += 3600
    assert not r.due()
    assert not r.refresh_if_changed()
    assert inputs.refreshed == 1


def test_a_change_waits_for_the_pause_after_the_last_refresh() -> None:
    inputs = Inputs(cost=0.1)  # cheap: the pause is the minimum interval
    r = refresher(inputs)
    r.refresh_now()
    inputs.version += 1
    assert not r.due()
    inputs.now += MIN_INTERVAL_S
    assert r.due()


def test_a_slow_refresh_pauses_in_proportion_so_refreshing_stays_a_fraction_of_the_time(
        ) -> None:
    inputs = Inputs(cost=10.0)
    r = refresher(inputs)
    assert r.refresh_now() == pytest.approx(10.0)
    inputs.version += 1
    inputs.now += DUTY_FACTOR * 10.0 - 0.01
    assert not r.due()
    inputs.now += 0.02
    assert r.due()
    assert r.last_took_s / (r.last_took_s + DUTY_FACTOR * 10.0) <= 0.25


def test_a_change_during_a_refresh_is_seen_by_the_next_check() -> None:
    inputs = Inputs()
    r = refresher(inputs)

    def refresh_while_rows_arrive() -> None:
        inputs.refresh()
        inputs.version += 1  # stored while the refresh ran: maybe not in this snapshot

    r.refresh_all = refresh_while_rows_arrive
    r.refresh_now()
    inputs.now += MIN_INTERVAL_S
    assert r.due()


def test_refresh_if_changed_ignores_the_pause_at_the_end_of_a_run() -> None:
    inputs = Inputs()
    r = refresher(inputs)
    r.refresh_now()
    inputs.version += 1
    assert not r.due()  # paused
    assert r.refresh_if_changed()
    assert inputs.refreshed == 2


def test_the_loop_keeps_going_after_a_failed_refresh() -> None:
    inputs = Inputs()
    calls = []

    def failing_then_stop() -> None:
        calls.append(1)
        stopping.set()
        raise RuntimeError("engine busy")

    stopping = threading.Event()
    r = SnapshotRefresher(failing_then_stop, inputs.signature, clock=inputs.clock)
    r.run(stopping)  # returns once stopped; the failure is logged, not raised
    assert calls == [1] and r.refreshes == 0


@pytest.mark.parametrize(("cpus", "threads"), [(1, 1), (2, 1), (3, 2), (8, 7)])
def test_refreshes_beside_the_stream_leave_it_one_cpu_of_those_the_process_may_use(
        monkeypatch: pytest.MonkeyPatch, cpus: int, threads: int) -> None:
    monkeypatch.setattr(snapshots.os, "sched_getaffinity", lambda pid: set(range(cpus)))
    assert snapshots.threads_beside_the_stream() == threads

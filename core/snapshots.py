"""Lead intelligence snapshots: each view's result stored, refreshed when its inputs change.

Migration 012 turned every view of ``schemas.registry.INTELLIGENCE_VIEWS`` into three
objects (migration 014 made ``delegation_buyers`` the same way): ``<view>_live`` (the
view's query, exact at every moment, 0.4-2 s on a 1M-event fair), ``<view>`` (a table
holding that query's result as of the latest refresh: what every reader, named query and
dashboard reads, in milliseconds) and ``<view>__next`` (its twin, used while refreshing).

Contract
--------
- :func:`refresh` recomputes snapshots: ``<view>__next`` is emptied (a refresh killed
  midway may have left rows), filled from ``<view>_live``, exchanged with ``<view>``
  (``EXCHANGE TABLES``: atomic), then emptied again. A reader sees the previous refresh or
  this one, never a mix, and a refresh interrupted at any point leaves a whole snapshot.
  Views are refreshed in ``INTELLIGENCE_VIEWS`` order: ``momentum_ranking_live`` ranks the
  ``momentum_cluster_5m`` snapshot refreshed just before it.
- :func:`inputs_signature` changes whenever a part of a table the views read is added or
  merged (an insert always adds one), so an unchanged signature means the snapshots are
  current and a refresh would only cost time.
- :class:`SnapshotRefresher` runs in the store owner (``leadloom run``): it refreshes when
  the signature changed, waiting at least ``MIN_INTERVAL_S`` after the previous refresh
  and ``DUTY_FACTOR`` times as long as that refresh took, so refreshing takes at most a
  quarter of the time however large the fair grows (the snapshots then trail the stream
  by a few refresh durations: ARCHITECTURE.md, "Speed"). Embedded, ``leadloom run``
  refreshes on :func:`threads_beside_the_stream`: every CPU but one.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence

from clickhouse_connect.driver.client import Client

from core.migrations import on_cluster
from schemas.registry import (
    BUYER_ALIASES,
    BUYER_EVENTS_TABLE,
    BUYERS,
    CURRENCY_RATES,
    DELEGATION_BUYERS,
    INQUIRIES,
    INTELLIGENCE_VIEWS,
    MATCHES_TABLE,
    PROCUREMENT_STEPS,
    REGISTRATIONS,
    SCANS,
    SEASON_BASELINE,
    SUPPLIER_PROFILES,
)

log = logging.getLogger(__name__)

# The intelligence views (migration 012), then a delegation's buyers (migration 014).
SNAPSHOT_VIEWS: tuple[str, ...] = tuple(
    v.name for v in INTELLIGENCE_VIEWS + (DELEGATION_BUYERS,))
LIVE_SUFFIX = "_live"
NEXT_SUFFIX = "__next"
# Every table the live views read (migrations 011, 014).
INPUT_TABLES: tuple[str, ...] = tuple(t.name for t in (
    SCANS, INQUIRIES, PROCUREMENT_STEPS, SUPPLIER_PROFILES, REGISTRATIONS, BUYER_EVENTS_TABLE,
    BUYER_ALIASES, MATCHES_TABLE, SEASON_BASELINE, CURRENCY_RATES, BUYERS))
CHECK_EVERY_S = 1.0
MIN_INTERVAL_S = 5.0  # a wall refreshes every 10 s: fresher snapshots would go unseen
DUTY_FACTOR = 3.0  # wait 3x the last refresh's duration: refreshing <= 1/4 of the time


def live_name(view: str) -> str:
    """The exact, computed-at-query-time view behind the snapshot ``view``."""
    return f"{view}{LIVE_SUFFIX}"


def threads_beside_the_stream() -> int:
    """Engine threads for refreshes that run beside the stream in the owner process: the
    CPUs this process may use but one, at least one.

    On every CPU, a refresh of a large store (2-3 s of CPU on two cores) starved the stream
    worker, the sink and the broker on the same machine: the bench's latency probes at
    5,000 events/s waited 2.7-3.4 s (p50) in the worker, against 0.3-1.2 s with refreshes
    on one thread (ARCHITECTURE.md, "Performance notes").
    """
    return max(1, len(os.sched_getaffinity(0)) - 1)


def refresh(client: Client, database: str, views: Sequence[str] = SNAPSHOT_VIEWS,
            cluster: str = "", max_threads: int | None = None) -> dict[str, float]:
    """Recompute the snapshots of ``views`` (module docstring); seconds taken per view.

    ``cluster``: run the DDL on every node of that ClickHouse cluster (the INSERT runs
    once; the replicated twin carries its rows). ``max_threads``: the engine's threads for
    each view's query (None: the engine's default, every core). ``ValueError`` for a name
    that is not a snapshot view.
    """
    unknown = sorted(set(views) - set(SNAPSHOT_VIEWS))
    if unknown:
        raise ValueError(f"not a snapshot view: {', '.join(unknown)}")

    def ddl(statement: str) -> None:
        client.command(on_cluster(statement, cluster) if cluster else statement)

    query_settings = {"max_threads": max_threads} if max_threads else None
    took = {}
    for view in (v for v in SNAPSHOT_VIEWS if v in views):  # dependency order
        started = time.perf_counter()
        table, twin = f"{database}.{view}", f"{database}.{view}{NEXT_SUFFIX}"
        ddl(f"TRUNCATE TABLE {twin}")
        client.command(f"INSERT INTO {twin} SELECT * FROM {database}.{live_name(view)}",
                       settings=query_settings)
        ddl(f"EXCHANGE TABLES {table} AND {twin}")
        ddl(f"TRUNCATE TABLE {twin}")
        took[view] = time.perf_counter() - started
    return took


def inputs_signature(client: Client, database: str) -> tuple[int, int, int]:
    """(active parts, rows, a hash of their names) over the tables the views read."""
    names = ", ".join(f"'{t}'" for t in INPUT_TABLES)
    row = client.query(
        "SELECT count(), sum(rows), groupBitXor(cityHash64(name)) FROM system.parts"
        f" WHERE database = '{database}' AND active AND table IN ({names})").result_rows[0]
    return int(row[0]), int(row[1]), int(row[2])


class SnapshotRefresher:
    """Keeps the snapshots current in the store owner (module docstring).

    ``refresh_all`` recomputes every snapshot (``Store.refresh_snapshots``), ``signature``
    reads :func:`inputs_signature` (``Store.snapshot_inputs_signature``). ``refresh_now``
    refreshes at once (end of stream, the demo); ``run`` is the thread's loop. Both go
    through one lock, so two refreshes never interleave.
    """

    def __init__(self, refresh_all: Callable[[], object],
                 signature: Callable[[], tuple[int, int, int]],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.refresh_all = refresh_all
        self.signature = signature
        self.clock = clock
        self.refreshes = 0
        self.last_took_s = 0.0
        self._signature: tuple[int, int, int] | None = None
        self._next_at = 0.0
        self._lock = threading.Lock()

    def refresh_now(self) -> float:
        """Refresh every snapshot now; the seconds it took."""
        with self._lock:
            signature = self.signature()  # before: a change during the refresh still counts
            started = self.clock()
            self.refresh_all()
            took = self.clock() - started
            self._signature = signature
            self._next_at = self.clock() + max(MIN_INTERVAL_S, DUTY_FACTOR * took)
            self.refreshes += 1
            self.last_took_s = took
            return took

    def due(self) -> bool:
        """True when the inputs changed since the last refresh and its pause is over."""
        if self.clock() < self._next_at:
            return False
        return self.signature() != self._signature

    def refresh_if_changed(self) -> bool:
        """Refresh now, pause or not, if the inputs changed since the last refresh."""
        if self.signature() == self._signature:
            return False
        self.refresh_now()
        return True

    def run(self, stopping: threading.Event) -> None:
        """Refresh whenever due until ``stopping``; a failed refresh is retried when due."""
        while not stopping.wait(CHECK_EVERY_S):
            try:
                if self.due():
                    self.refresh_now()
            except Exception:  # noqa: BLE001 - the next check retries
                log.warning("snapshot refresh failed; retrying", exc_info=True)
                self._next_at = self.clock() + MIN_INTERVAL_S

"""The lag sampler: consumer lag per (group, topic, partition) into ``pipeline_metrics``.

Runs in the process that owns the store (``leadloom run``, demo, bench), every
``metrics.INTERVAL_S``: reads each group's committed offsets and the partitions' end
offsets (``core.kafka.LagReader``, clients kept open) and writes the samples
``metrics.LagReport`` picks in one insert. Lag is what a group has not *committed*, so it
counts what is processed but not yet durable too (the workers commit every 0.5 s, the sink
after each insert).

Best effort, like every metric: a broker that does not answer or a store that refuses the
insert costs that sample (logged once per outage) and nothing else.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from core.kafka import LagReader
from core.settings import Settings
from schemas.registry import PIPELINE_METRICS
from streams.metrics import INTERVAL_S, LagKey, LagReport

log = logging.getLogger(__name__)

Insert = Callable[[str, list[bytes]], None]  # Store.insert_json_rows


class LagSampler:
    """Samples ``groups`` (group id -> the topics it consumes) into ``insert``."""

    def __init__(self, settings: Settings, groups: Mapping[str, list[str]], insert: Insert,
                 interval_s: float = INTERVAL_S) -> None:
        self.settings = settings
        self.groups = dict(groups)
        self.insert = insert
        self.interval_s = interval_s
        self.report = LagReport()
        self.samples = 0  # rounds stored
        self._reader: LagReader | None = None
        self._failing: str | None = None

    def run(self, stopping: threading.Event) -> None:
        """Sample until ``stopping`` is set."""
        try:
            while not stopping.wait(self.interval_s):
                self.sample()
        finally:
            self._drop_reader()

    def sample(self) -> int:
        """One round: read every group's lag and store the rows it calls for; their count."""
        try:
            lags = self._read()
            rows = self.report.rows(datetime.now(UTC), lags)
            if rows:
                self.insert(PIPELINE_METRICS.name, rows)
        except Exception as exc:  # noqa: BLE001 - a sample lost, never the sampler
            self._drop_reader()
            reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200]}" \
                if str(exc).strip() else type(exc).__name__
            if self._failing is None:
                log.warning("lag sampler: sample failed (%s); trying again every %.0fs",
                            reason, self.interval_s)
            self._failing = reason
            return 0
        if self._failing is not None:
            log.warning("lag sampler: sampling again")
            self._failing = None
        self.samples += 1
        return len(rows)

    def _read(self) -> dict[LagKey, int]:
        if self._reader is None:
            self._reader = LagReader(self.settings)
        out: dict[LagKey, int] = {}
        for group, topics in self.groups.items():
            for (topic, partition), lag in self._reader.partition_lags(group, topics).items():
                out[group, topic, partition] = lag
        return out

    def _drop_reader(self) -> None:
        if self._reader is not None:
            try:
                self._reader.close()
            except Exception:  # noqa: BLE001 - closing clients of a broker that is gone
                log.debug("lag sampler: closing its clients failed", exc_info=True)
            self._reader = None

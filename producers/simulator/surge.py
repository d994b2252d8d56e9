"""The surge option: a burst of extra buyers at one cluster's booths from a local time on.

``parse_surge("keqiao@14:30")`` reads the command-line form; ``simulate_fair(...,
surge=...)`` adds the burst (``BuyerDay.run_surge``) and the ground truth's ``surge``
names its cluster and its UTC window.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from producers.simulator.params import SimulationParams
from schemas.reference import CLUSTERS, CLUSTERS_BY_ID

_FORM = re.compile(r"^\s*([^@\s]+)\s*@\s*(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True)
class Surge:
    """A burst for ``cluster_id`` starting at ``start_local`` ("HH:MM", the fair's local
    time, ``SimulationParams.timezone``), lasting ``SimulationParams.surge_minutes``."""

    cluster_id: str
    start_local: str

    @property
    def start_hour(self) -> float:
        """The start as a local hour of the day (14:30 -> 14.5)."""
        hh, mm = self.start_local.split(":")
        return int(hh) + int(mm) / 60


def parse_surge(text: str, params: SimulationParams | None = None) -> Surge:
    """``"CLUSTER@HH:MM"`` -> :class:`Surge`.

    Raises ``ValueError`` with a one-line reason: not of that form, an unknown cluster id,
    a time that is not a clock time, or a burst that would not fit in the opening hours
    (it must start at or after opening and end by closing).
    """
    m = _FORM.match(text or "")
    if m is None:
        raise ValueError(f"surge {text!r} is not CLUSTER@HH:MM (e.g. keqiao@14:30)")
    cluster_id, hh, mm = m.group(1), int(m.group(2)), int(m.group(3))
    if cluster_id not in CLUSTERS_BY_ID:
        known = ", ".join(c.id for c in CLUSTERS)
        raise ValueError(f"surge cluster {cluster_id!r} is unknown; one of: {known}")
    if hh > 23 or mm > 59:
        raise ValueError(f"surge time {m.group(2)}:{m.group(3)} is not a clock time (HH:MM)")
    surge = Surge(cluster_id, f"{hh:02d}:{mm:02d}")
    check_surge(surge, params or SimulationParams())
    return surge


def check_surge(surge: Surge, p: SimulationParams) -> None:
    """``ValueError`` unless the cluster exists and the burst fits in the opening hours."""
    if surge.cluster_id not in CLUSTERS_BY_ID:
        raise ValueError(f"surge cluster {surge.cluster_id!r} is unknown")
    start = surge.start_hour
    if start < p.open_hour or start + p.surge_minutes / 60 > p.close_hour:
        raise ValueError(
            f"surge time {surge.start_local} ({p.timezone}) must leave {p.surge_minutes} min"
            f" within opening hours {_hhmm(p.open_hour)}-{_hhmm(p.close_hour)}")


def surge_events(events: int, p: SimulationParams) -> int:
    """How many of a run's ``events`` the burst takes: ``surge_share`` of them, at least
    ``surge_min_events`` (the caller caps it at what the run has left)."""
    return max(p.surge_min_events, round(p.surge_share * events))


def _hhmm(hour: float) -> str:
    minutes = round(hour * 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"

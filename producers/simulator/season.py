"""A previous season: a smaller, seeded fair a year earlier, and its professional buyers.

The seed's KPI is "professional buyers versus the previous season" (+35%). The product
imports a previous season's counts as CSV (``leadloom season import FILE``); this module
makes such a file from a simulated earlier fair: ``PREVIOUS_SCALE`` of the events (so about
1/0.74 = 1.35x more buyers this season), its own seed derived from the current one, the
same roster.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path

from producers.simulator.fair import DEFAULT_DAY, SimulationParams, simulate_fair
from producers.simulator.insight import season_rows

PREVIOUS_SEASON = "CIFW-2025-AW"
PREVIOUS_SCALE = 0.74
CSV_COLUMNS = ("season", "pavilion_id", "cluster_id", "professional_buyers")


def previous_season_seed(seed: int) -> int:
    """The previous season's seed: derived from ``seed`` (string seeding is stable across
    processes and Python versions), never equal to it in practice."""
    return random.Random(f"previous-season:{seed}").getrandbits(63)


def previous_season_counts(events: int, seed: int, *,
                           params: SimulationParams | None = None) -> list[dict[str, object]]:
    """The true professional buyers per (pavilion_id, cluster_id) of the previous season.

    Simulates fair ``PREVIOUS_SEASON`` one year before ``DEFAULT_DAY`` with
    ``round(PREVIOUS_SCALE * events)`` events and seed :func:`previous_season_seed`.
    Rows ``{"pavilion_id", "cluster_id", "professional_buyers"}`` sorted by pavilion then
    cluster, clusters without a professional buyer left out: distinct true buyers whose
    ``buyer_type`` is in ``PROFESSIONAL_BUYER_TYPES`` with a scan at a booth of the cluster.
    Deterministic: the same ``events`` and ``seed`` give the same rows.
    """
    day = date(DEFAULT_DAY.year - 1, DEFAULT_DAY.month, DEFAULT_DAY.day)
    sim = simulate_fair(round(PREVIOUS_SCALE * events), previous_season_seed(seed),
                        fair_id=PREVIOUS_SEASON, day=day, params=params)
    professional: Mapping[str, int] = sim.ground_truth["professional_buyers"]
    return season_rows(professional)


def write_season_csv(rows: Iterable[Mapping[str, object]], path: str | Path,
                     season: str = PREVIOUS_SEASON) -> Path:
    """Write ``season,pavilion_id,cluster_id,professional_buyers`` (header, then one line per
    row, ``\\n`` endings; parent directories created): what ``leadloom season import``
    reads. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(CSV_COLUMNS)
        for r in rows:
            out.writerow((season, r["pavilion_id"], r["cluster_id"], r["professional_buyers"]))
    return path

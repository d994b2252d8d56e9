"""The fair-day simulator: realistic raw messages of one CIFW day and their ground truth.

One producer among others (see ``producers/``): it builds messages; publishing them is
the publisher's job. ``simulate_fair`` is the entry point (``producers.simulator.fair``);
``parse_surge`` reads a surge option, ``previous_season_counts`` and ``write_season_csv``
make a previous season's professional buyers (``producers.simulator.season``).
"""

from producers.simulator.fair import (
    OutgoingMessage,
    Simulation,
    SimulationParams,
    restamp,
    simulate_fair,
    write_ground_truth,
)
from producers.simulator.season import previous_season_counts, write_season_csv
from producers.simulator.surge import Surge, parse_surge

__all__ = [
    "OutgoingMessage", "Simulation", "SimulationParams", "Surge", "parse_surge",
    "previous_season_counts", "restamp", "simulate_fair", "write_ground_truth",
    "write_season_csv",
]

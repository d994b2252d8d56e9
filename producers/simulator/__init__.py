"""The fair-day simulator: realistic raw messages of one CIFW day and their ground truth.

One producer among others (see ``producers/``): it builds messages; publishing them is
the publisher's job. ``simulate_fair`` is the entry point (``producers.simulator.fair``).
"""

from producers.simulator.fair import (
    OutgoingMessage,
    Simulation,
    SimulationParams,
    restamp,
    simulate_fair,
    write_ground_truth,
)

__all__ = [
    "OutgoingMessage", "Simulation", "SimulationParams", "restamp", "simulate_fair",
    "write_ground_truth",
]

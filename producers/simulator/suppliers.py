"""The simulator's own notion of supplier fit: the hidden best suppliers of each inquiry.

The ground truth's ``best_suppliers`` is what a good matchmaking system should find; it is
computed here from the profiles the simulator generated, independently of the stream's
matcher (``streams.matching``, which producers never import), so match quality can be
measured against it rather than against itself.

Fit, in order:

1. Hard constraints, all of them: a profile category equals one of the inquiry's
   categories; with a stated quantity, ``moq <= quantity`` and
   ``monthly_capacity >= quantity``; with a stated lead time, the profile's
   ``lead_time_days`` is at most it.
2. The inquiry's target cluster first (the cluster it names, or the cluster of the
   exhibitor it names).
3. More capacity headroom (``monthly_capacity / quantity``). One inquiry has one quantity,
   so this is the order of ``monthly_capacity`` itself, compared as integers (no float
   ties); without a stated quantity the same order applies.
4. ``exhibitor_id`` ascending: a deterministic tie-break.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

BEST_K = 3


@dataclass(frozen=True, slots=True)
class Supplier:
    """The fields of one exhibitor's latest profile that fit depends on."""

    exhibitor_id: str
    cluster_id: str
    categories: tuple[str, ...]
    monthly_capacity: int
    moq: int
    lead_time_days: int

    @classmethod
    def from_payload(cls, payload: Mapping[str, object]) -> Supplier:
        cats = payload["categories"]
        assert isinstance(cats, list)
        return cls(str(payload["exhibitor_id"]), str(payload["cluster_id"]),
                   tuple(str(c) for c in cats), int(payload["monthly_capacity"]),  # type: ignore[call-overload]
                   int(payload["moq"]), int(payload["lead_time_days"]))  # type: ignore[call-overload]


class SupplierBook:
    """The latest profile per exhibitor, by category; ``best`` ranks them for an inquiry."""

    def __init__(self, suppliers: Iterable[Supplier] = ()) -> None:
        self._by_category: dict[str, list[Supplier]] = {}
        self._by_exhibitor: dict[str, Supplier] = {}
        for s in suppliers:
            self.put(s)

    def put(self, supplier: Supplier) -> None:
        """Add a profile, replacing the exhibitor's earlier one (call in event-time order)."""
        old = self._by_exhibitor.get(supplier.exhibitor_id)
        if old is not None:
            for cat in old.categories:
                self._by_category[cat].remove(old)
        self._by_exhibitor[supplier.exhibitor_id] = supplier
        for cat in supplier.categories:
            self._by_category.setdefault(cat, []).append(supplier)

    def get(self, exhibitor_id: str) -> Supplier | None:
        return self._by_exhibitor.get(exhibitor_id)

    def best(self, categories: Iterable[str], quantity: int | None, lead_time_days: int | None,
             target_cluster: str | None, k: int = BEST_K) -> list[str]:
        """Up to ``k`` exhibitor ids that fit, best first (module docstring); ``[]`` if none."""
        seen: set[str] = set()
        ranked: list[tuple[bool, int, str]] = []
        for cat in dict.fromkeys(categories):
            for s in self._by_category.get(cat, ()):
                if s.exhibitor_id in seen or not fits(s, quantity, lead_time_days):
                    continue
                seen.add(s.exhibitor_id)
                ranked.append((s.cluster_id != target_cluster, -s.monthly_capacity,
                               s.exhibitor_id))
        return [ex for _, _, ex in heapq.nsmallest(k, ranked)]


def fits(s: Supplier, quantity: int | None, lead_time_days: int | None) -> bool:
    """The quantity and lead-time hard constraints (the category one is the index's)."""
    if quantity is not None and (s.moq > quantity or s.monthly_capacity < quantity):
        return False
    return lead_time_days is None or s.lead_time_days <= lead_time_days

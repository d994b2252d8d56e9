"""The simulator's own notion of supplier fit: the hidden best suppliers of each inquiry.

The ground truth's ``best_suppliers`` is what a good matchmaking system should find; it is
computed here from the profiles the simulator generated, independently of the stream's
matcher (``streams.matching``, which producers never import), so match quality can be
measured against it rather than against itself.

Fit, in order (a buyer's preferences, not the stream matcher's weights):

1. Hard constraints, all of them: a profile category equals one of the inquiry's
   categories; the profile's ``lead_time_days`` is at most the inquiry's (when stated);
   with a stated quantity, ``moq <= quantity`` and the factory makes the quantity before the
   deadline: ``monthly_capacity * window / 30 >= quantity``, the window being the lead time
   (a month when none is stated).
2. The exhibitor the inquiry names, then the inquiry's target cluster (the cluster it
   names, or the named exhibitor's).
3. More of the inquiry's categories made.
4. Spare capacity in whole multiples of the quantity, up to 4x: a buyer gains from room for
   a rush or a reorder, not from a factory a hundred times their order rather than ten.
5. A shorter lead time (days to spare for sampling and shipping).
6. ``exhibitor_id`` ascending: a deterministic tie-break.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

BEST_K = 3
WINDOW_DAYS = 30  # the production window of an inquiry that states no lead time
HEADROOM_CAP = 4  # spare capacity beyond 4x the order makes no difference to the buyer


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
             target_cluster: str | None, k: int = BEST_K, named: str | None = None
             ) -> list[str]:
        """Up to ``k`` exhibitor ids that fit, best first (module docstring); ``[]`` if none."""
        seen: set[str] = set()
        wanted = tuple(dict.fromkeys(categories))
        ranked: list[tuple[bool, bool, int, int, int, str]] = []
        for cat in wanted:
            for s in self._by_category.get(cat, ()):
                if s.exhibitor_id in seen or not fits(s, quantity, lead_time_days):
                    continue
                seen.add(s.exhibitor_id)
                covered = sum(1 for c in wanted if c in s.categories)
                ranked.append((s.exhibitor_id != named, s.cluster_id != target_cluster, -covered,
                               -_headroom(s, quantity, lead_time_days), s.lead_time_days,
                               s.exhibitor_id))
        return [r[-1] for r in heapq.nsmallest(k, ranked)]


def _headroom(s: Supplier, quantity: int | None, lead_time_days: int | None) -> int:
    """Capacity in the window over the quantity, in whole multiples up to ``HEADROOM_CAP``:
    a buyer gains from spare capacity (a rush, a reorder), but not from a factory a hundred
    times their order rather than ten."""
    if not quantity:
        return HEADROOM_CAP
    window = WINDOW_DAYS if lead_time_days is None else lead_time_days
    return min(HEADROOM_CAP, s.monthly_capacity * window // (quantity * 30))


def fits(s: Supplier, quantity: int | None, lead_time_days: int | None) -> bool:
    """The quantity and lead-time hard constraints (the category one is the index's)."""
    if lead_time_days is not None and s.lead_time_days > lead_time_days:
        return False
    if quantity is None:
        return True
    # What the factory can make before the buyer's deadline (a month when none is stated).
    window = WINDOW_DAYS if lead_time_days is None else lead_time_days
    return s.moq <= quantity and s.monthly_capacity * window >= quantity * 30

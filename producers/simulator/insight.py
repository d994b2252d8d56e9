"""Ground truth for lead intelligence: the funnel per cluster, professional buyers, best
suppliers. Tallied while events are emitted, from the values that go on the wire.

Buyers are the simulator's true buyer ids (``buyer-000123``), never badges: what a correct
pipeline reaches after resolving identities and merges.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from schemas.events import FUNNEL_STAGES, PROFESSIONAL_BUYER_TYPES
from schemas.reference import CLUSTERS, CLUSTERS_BY_ID

SCAN_STAGE, INQUIRY_STAGE = FUNNEL_STAGES[0], FUNNEL_STAGES[1]
_PROFESSIONAL = frozenset(PROFESSIONAL_BUYER_TYPES)


class _Cell:
    """One (cluster, stage): events, distinct buyers, distinct (buyer, exhibitor) pairs,
    values summed per currency (exact decimals)."""

    __slots__ = ("buyers", "events", "pairs", "values")

    def __init__(self) -> None:
        self.events = 0
        self.buyers: set[str] = set()
        self.pairs: set[tuple[str, str]] = set()
        self.values: dict[str, Decimal] = {}

    def add(self, buyer: str, exhibitor: str | None, value: object, currency: object) -> None:
        self.events += 1
        self.buyers.add(buyer)
        if exhibitor is not None:
            self.pairs.add((buyer, exhibitor))
        if value is not None:
            cur = str(currency or "CNY")
            self.values[cur] = self.values.get(cur, Decimal(0)) + Decimal(str(value))

    def to_json(self) -> dict[str, object]:
        return {"events": self.events, "buyers": len(self.buyers), "pairs": len(self.pairs),
                "value_by_currency": {c: format(self.values[c], "f")
                                      for c in sorted(self.values)}}


class Insight:
    """Tallies of one simulated day; ``truth`` renders them for the ground truth."""

    def __init__(self) -> None:
        self.cells = {(c.id, s): _Cell() for c in CLUSTERS for s in FUNNEL_STAGES}
        self.best_suppliers: dict[str, list[str]] = {}

    def scan(self, cluster: str, buyer: str, exhibitor: str) -> None:
        """A booth scan: cluster and exhibitor of the booth (whatever the payload says)."""
        self.cells[cluster, SCAN_STAGE].add(buyer, exhibitor, None, None)

    def inquiry(self, cluster: str, buyer: str, event_id: str, payload: Mapping[str, object],
                best: list[str] | None) -> None:
        """An online inquiry: its cluster (named, or its exhibitor's), a pair only when it
        names an exhibitor, its budget; its hidden best suppliers if any fit."""
        exhibitor = payload.get("exhibitor_id")
        self.cells[cluster, INQUIRY_STAGE].add(
            buyer, exhibitor if isinstance(exhibitor, str) else None, payload.get("budget"),
            payload.get("currency"))
        if best:
            self.best_suppliers[event_id] = best

    def step(self, cluster: str, buyer: str, payload: Mapping[str, object]) -> None:
        """A procurement step: the stage is its ``step``, the value its ``value``."""
        self.cells[cluster, str(payload["step"])].add(
            buyer, str(payload["exhibitor_id"]), payload.get("value"), payload.get("currency"))

    def funnel_by_cluster(self) -> dict[str, dict[str, dict[str, object]]]:
        """{cluster: {stage: {events, buyers, pairs, value_by_currency}}}, every cluster and
        stage (zeros included), values as exact decimal strings per currency."""
        return {c.id: {s: self.cells[c.id, s].to_json() for s in FUNNEL_STAGES}
                for c in CLUSTERS}

    def professional_buyers(self, buyer_types: Mapping[str, str]) -> dict[str, int]:
        """{"pavilion_id|cluster_id": n}: distinct true buyers of a professional type with a
        booth scan in the cluster; clusters without any are left out (like a GROUP BY)."""
        out: dict[str, int] = {}
        for c in CLUSTERS:
            n = sum(1 for b in self.cells[c.id, SCAN_STAGE].buyers
                    if buyer_types.get(b) in _PROFESSIONAL)
            if n:
                out[f"{c.pavilion_id}|{c.id}"] = n
        return out


def season_rows(professional: Mapping[str, int]) -> list[dict[str, object]]:
    """``professional_buyers`` truth -> rows (pavilion_id, cluster_id, professional_buyers),
    sorted by pavilion then cluster."""
    rows: list[dict[str, object]] = []
    for key in sorted(professional):
        pavilion, cluster = key.split("|", 1)
        assert CLUSTERS_BY_ID[cluster].pavilion_id == pavilion
        rows.append({"pavilion_id": pavilion, "cluster_id": cluster,
                     "professional_buyers": professional[key]})
    return rows

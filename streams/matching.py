"""Supplier matchmaking: the top suppliers for one online inquiry, with the reasons why.

Pure: no Kafka, no store. The stream keeps a :class:`SupplierIndex` built from
``supplier.profile`` events and calls :func:`top_matches` for each ``online.inquiry``.

Contract
--------
- A supplier is a *candidate* only if it passes every hard constraint
  (:data:`HARD_CONSTRAINTS`); candidates are ranked by a score in [0, 1] made of the soft
  preferences weighted by :data:`WEIGHTS`. An inquiry with no candidate gets ``[]``.
- Ranking is deterministic: score (rounded to :data:`SCORE_DIGITS` so float noise cannot
  reorder), then ``exhibitor_id`` ascending. The index keeps, per exhibitor, the profile
  with the greatest ``(occurred_at, event_id)``, not the last one to arrive, so a replay
  that delivers profiles in another order builds the same index and the same matches.
- Unknown inquiry terms (no ``quantity``, no ``lead_time_days``) cannot exclude anyone:
  the constraint is reported as ``None`` ("not stated") in the explanation.

Hard constraints (a buyer's need, DOMAIN.md: "naming a cluster, product category,
quantity, budget and lead time"):

- ``category``: the supplier makes at least one of the inquiry's categories.
- ``moq``: the supplier's minimum order quantity is at most the inquiry's quantity.
- ``lead_time``: the supplier's lead time is at most the inquiry's lead time.
- ``capacity``: what the supplier can make within the inquiry's lead time,
  ``monthly_capacity * window_days / 30``, covers the quantity. The window is the
  inquiry's lead time, or one month (:data:`DEFAULT_WINDOW_DAYS`) when it states none.

Soft preferences (each in [0, 1]; weights and their reasons in :data:`WEIGHTS`):

- ``coverage``: share of the inquiry's categories the supplier makes.
- ``target``: 1 for the exhibitor the inquiry names, 0.6 for a supplier of the cluster it
  names (or, naming only an exhibitor, of that exhibitor's cluster), else 0.
- ``headroom``: capacity in the window over quantity; ``min(1, (ratio - 1) / 3)``, so a
  supplier with 4x the quantity scores full and one at exactly the quantity scores 0.
- ``lead_slack``: ``(inquiry lead - supplier lead) / inquiry lead``.
- ``crafts``: the supplier's crafts the inquiry's message mentions (``min(1, n / 2)``).
- ``certifications``: the supplier's certifications the message mentions, else a small
  credit for holding any (``min(1, n / 3) / 2``): the seed's certified suppliers earn a
  10-15% premium, so buyers value them even unasked.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from schemas.events import OnlineInquiry, SupplierProfile

HARD_CONSTRAINTS: Final = ("category", "moq", "lead_time", "capacity")

# The one place the soft preferences are weighed. They add up to 1.
WEIGHTS: Final[Mapping[str, float]] = {
    # The buyer named this exhibitor or cluster: a match there is the lead they came for and
    # the delegation that will follow up; other clusters are an alternative, not the answer.
    # Heaviest: a supplier in the named cluster outranks a fuller fit elsewhere.
    "target": 0.45,
    # One supplier for the whole need beats two half-suppliers: the buyer asked for all of it.
    "coverage": 0.30,
    # Spare capacity absorbs a reorder, a rush or a failed batch without missing the date.
    "headroom": 0.15,
    # Days to spare before the buyer's deadline, for sampling and shipping.
    "lead_slack": 0.07,
    # Crafts and certifications are stated only in free text (no field in the inquiry), and
    # a mention is not a requirement ("like your embroidery"), so they only break near-ties.
    # Measured: at 0.06/0.04 they overruled the stated terms and cost 5-7 points of
    # precision@3 (ARCHITECTURE.md, "Matchmaking").
    "crafts": 0.02,
    "certifications": 0.01,
}
TARGET_CLUSTER_CREDIT: Final = 0.6  # in the named cluster: below the named booth itself
HEADROOM_FULL_RATIO: Final = 4.0  # capacity/quantity at which headroom scores full
DEFAULT_WINDOW_DAYS: Final = 30  # production window when the inquiry states no lead time
DAYS_PER_MONTH: Final = 30
SCORE_DIGITS: Final = 9


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why a supplier matched. ``None`` means the inquiry did not state that term."""

    matched_categories: tuple[str, ...]
    missing_categories: tuple[str, ...]
    matched_crafts: tuple[str, ...]
    certifications: tuple[str, ...]
    requested_certifications: tuple[str, ...]
    capacity_in_window: int
    capacity_headroom: int | None  # units: capacity in the window minus quantity
    capacity_ratio: float | None  # capacity in the window / quantity
    moq: int
    moq_satisfied: bool | None
    lead_time_days: int
    lead_time_satisfied: bool | None
    lead_time_slack_days: int | None
    cluster_id: str
    target: str  # "exhibitor", "cluster" or "other": how the supplier relates to the ask
    components: Mapping[str, float]  # each soft preference's value in [0, 1], unweighted

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (lists, not tuples; ratio rounded to 3 places)."""
        return {
            "matched_categories": list(self.matched_categories),
            "missing_categories": list(self.missing_categories),
            "matched_crafts": list(self.matched_crafts),
            "certifications": list(self.certifications),
            "requested_certifications": list(self.requested_certifications),
            "capacity_in_window": self.capacity_in_window,
            "capacity_headroom": self.capacity_headroom,
            "capacity_ratio": None if self.capacity_ratio is None
            else round(self.capacity_ratio, 3),
            "moq": self.moq,
            "moq_satisfied": self.moq_satisfied,
            "lead_time_days": self.lead_time_days,
            "lead_time_satisfied": self.lead_time_satisfied,
            "lead_time_slack_days": self.lead_time_slack_days,
            "cluster_id": self.cluster_id,
            "target": self.target,
            "components": {k: round(v, 4) for k, v in self.components.items()},
        }


@dataclass(frozen=True, slots=True)
class Match:
    """One recommended supplier for one inquiry; ``rank`` starts at 1."""

    exhibitor_id: str
    cluster_id: str
    rank: int
    score: float
    explanation: Explanation

    def to_json(self) -> dict[str, object]:
        return {"exhibitor_id": self.exhibitor_id, "cluster_id": self.cluster_id,
                "rank": self.rank, "score": self.score,
                "explanation": self.explanation.to_json()}


@dataclass(frozen=True, slots=True)
class _Entry:
    profile: SupplierProfile
    version: tuple[datetime, str]
    categories: frozenset[str]


@dataclass(slots=True)
class SupplierIndex:
    """The latest profile per exhibitor, indexed by category.

    ``upsert`` keeps the profile with the greatest ``(occurred_at, event_id)`` per
    exhibitor: event time, not arrival order, so replays build the same index.
    """

    _by_exhibitor: dict[str, _Entry] = field(default_factory=dict)
    _by_category: dict[str, set[str]] = field(default_factory=dict)

    @classmethod
    def build(cls, profiles: Iterable[tuple[SupplierProfile, datetime, str]]) -> SupplierIndex:
        """From ``(profile, occurred_at, event_id)`` triples, in any order."""
        index = cls()
        for profile, occurred_at, event_id in profiles:
            index.upsert(profile, occurred_at, event_id)
        return index

    def upsert(self, profile: SupplierProfile, occurred_at: datetime, event_id: str) -> bool:
        """Add or replace the exhibitor's profile; False if a newer one is already held."""
        version = (occurred_at, event_id)
        old = self._by_exhibitor.get(profile.exhibitor_id)
        if old is not None:
            if old.version >= version:
                return False
            for cat in old.categories:
                members = self._by_category[cat]
                members.discard(profile.exhibitor_id)
                if not members:
                    del self._by_category[cat]
        entry = _Entry(profile, version, frozenset(profile.categories))
        self._by_exhibitor[profile.exhibitor_id] = entry
        for cat in entry.categories:
            self._by_category.setdefault(cat, set()).add(profile.exhibitor_id)
        return True

    def get(self, exhibitor_id: str) -> SupplierProfile | None:
        entry = self._by_exhibitor.get(exhibitor_id)
        return None if entry is None else entry.profile

    def candidates(self, categories: Iterable[str]) -> set[str]:
        """Exhibitors making at least one of ``categories``."""
        out: set[str] = set()
        for cat in categories:
            out |= self._by_category.get(cat, set())
        return out

    def __len__(self) -> int:
        return len(self._by_exhibitor)


def top_matches(inquiry: OnlineInquiry, index: SupplierIndex, k: int = 3) -> list[Match]:
    """The ``k`` best suppliers for ``inquiry``, best first; ``[]`` if none qualifies.

    Only suppliers sharing a category with the inquiry are scored (the category index).
    """
    if k <= 0:
        return []
    wanted = tuple(dict.fromkeys(inquiry.categories))  # de-duplicated, order kept
    text = (inquiry.message or "").casefold()
    target_cluster = inquiry.cluster_id
    if target_cluster is None and inquiry.exhibitor_id is not None:
        named = index.get(inquiry.exhibitor_id)  # naming a booth names its cluster too
        target_cluster = None if named is None else named.cluster_id
    scored: list[tuple[float, str, _Assessment]] = []
    for exhibitor_id in index.candidates(wanted):
        assessed = _assess(inquiry, wanted, text, target_cluster, index._by_exhibitor[exhibitor_id])
        if assessed is not None:
            scored.append((_score(assessed.components), exhibitor_id, assessed))
    best = heapq.nsmallest(k, scored, key=lambda s: (-s[0], s[1]))
    # Explanations only for the few kept: building one per candidate would double the cost.
    return [Match(ex, a.profile.cluster_id, rank, score, _explanation(inquiry, wanted, a))
            for rank, (score, ex, a) in enumerate(best, start=1)]


def _score(components: Mapping[str, float]) -> float:
    return round(sum(WEIGHTS[name] * value for name, value in components.items()), SCORE_DIGITS)


@dataclass(frozen=True, slots=True)
class _Assessment:
    profile: SupplierProfile
    categories: frozenset[str]
    matched: tuple[str, ...]
    crafts: tuple[str, ...]
    asked_certs: tuple[str, ...]
    capacity: int
    target: str
    components: dict[str, float]


def _assess(inquiry: OnlineInquiry, wanted: tuple[str, ...], text: str,
            target_cluster: str | None, entry: _Entry) -> _Assessment | None:
    """The soft-preference values if every hard constraint holds, else None."""
    p = entry.profile
    qty, lead = inquiry.quantity, inquiry.lead_time_days
    if qty is not None and p.moq > qty:
        return None
    if lead is not None and p.lead_time_days > lead:
        return None
    window = DEFAULT_WINDOW_DAYS if lead is None else lead
    capacity = p.monthly_capacity * window // DAYS_PER_MONTH
    if qty is not None and capacity < qty:
        return None
    matched = tuple(c for c in wanted if c in entry.categories)
    if not matched:
        return None
    crafts = tuple(c for c in p.crafts if c.casefold() in text) if text else ()
    asked_certs = tuple(c for c in p.certifications if c.casefold() in text) if text else ()
    if inquiry.exhibitor_id == p.exhibitor_id:
        target, target_credit = "exhibitor", 1.0
    elif target_cluster == p.cluster_id:
        target, target_credit = "cluster", TARGET_CLUSTER_CREDIT
    else:
        target, target_credit = "other", 0.0
    components = {
        "coverage": len(matched) / len(wanted),
        "target": target_credit,
        "headroom": 0.0 if qty is None
        else min(1.0, max(0.0, (capacity / qty - 1) / (HEADROOM_FULL_RATIO - 1))),
        "lead_slack": 0.0 if not lead else (lead - p.lead_time_days) / lead,
        "crafts": min(1.0, len(crafts) / 2),
        "certifications": min(1.0, len(asked_certs) / 2) if asked_certs
        else min(1.0, len(p.certifications) / 3) / 2,
    }
    return _Assessment(p, entry.categories, matched, crafts, asked_certs, capacity, target,
                       components)


def _explanation(inquiry: OnlineInquiry, wanted: tuple[str, ...], a: _Assessment
                 ) -> Explanation:
    p, qty, lead = a.profile, inquiry.quantity, inquiry.lead_time_days
    return Explanation(
        matched_categories=a.matched,
        missing_categories=tuple(c for c in wanted if c not in a.categories),
        matched_crafts=a.crafts,
        certifications=tuple(p.certifications),
        requested_certifications=a.asked_certs,
        capacity_in_window=a.capacity,
        capacity_headroom=None if qty is None else a.capacity - qty,
        capacity_ratio=None if qty is None else a.capacity / qty,
        moq=p.moq,
        moq_satisfied=None if qty is None else True,
        lead_time_days=p.lead_time_days,
        lead_time_satisfied=None if lead is None else True,
        lead_time_slack_days=None if lead is None else lead - p.lead_time_days,
        cluster_id=p.cluster_id,
        target=a.target,
        components=a.components,
    )

"""The lead score: how worth a call a (buyer, exhibitor) or (buyer, cluster) pair is.

Contract:

* ``LeadSignals`` holds the signals of one pair, folded from its events
  (``LeadSignals.from_event`` then ``combine``). ``combine`` is associative and commutative,
  so the signals of a merged buyer are ``a.combine(b)`` and equal those folded from all of
  both buyers' events, in any order.
* ``score(signals, now, model) -> LeadScore``: a value in [0, 100] and a tier. The score is
  a weighted sum of six parts, each in [0, 1], whose weights add up to 100 (``ScoreModel``).
  It never decreases when a signal grows (more scans, more days, a stronger rating, an
  inquiry or a larger one, a further procurement step, a more recent activity).
* ``score_sql(model, now)``: the same formula as a ClickHouse expression over columns named
  like the ``LeadSignals`` fields (see ``score_sql`` for their types); ``tier_sql`` maps a
  score expression to the tier. A test evaluates both on the embedded engine against
  ``score``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Literal, TypeVar, get_args
from zoneinfo import ZoneInfo

from schemas.events import InquiryEvent, ProcurementEvent, ProcurementStep, ScanEvent

Rating = Literal["hot", "warm", "cold"]
Step = Literal["sample_request", "quote_request", "cooperation_intent", "purchase_order"]
Tier = Literal["hot", "warm", "cold"]
PairEvent = ScanEvent | InquiryEvent | ProcurementEvent  # the events that carry lead signals

# The procurement ladder, in the order a buyer climbs it (DOMAIN.md's buyer journey).
STEPS: tuple[Step, ...] = ("sample_request", "quote_request", "cooperation_intent",
                           "purchase_order")
RATINGS: tuple[Rating, ...] = ("cold", "warm", "hot")  # weakest to strongest
# Fair days are local days: the fair runs in Shaoxing/Keqiao, and a scan at 01:00 UTC is on
# that morning's fair day, not the previous evening's.
FAIR_TZ = ZoneInfo("Asia/Shanghai")

assert STEPS == get_args(ProcurementStep.model_fields["step"].annotation), (
    "the ladder must name every ProcurementStep.step value"
)


@dataclass(frozen=True)
class ScoreModel:
    """Every weight, scale, the half-life and the tier cut-offs of the lead score, in one place.

    The score is ``sum(weight * part)``, each part in [0, 1], the weights summing to 100.
    Why each value (DOMAIN.md: a buyer visits 10-25 booths a day over a 4-5 day fair; of
    scanned pairs roughly 10% request samples, 3-5% sign a cooperation intent, about 1% place
    a purchase order):

    * ``step_weight`` = 30, the largest: a procurement step is a commitment the buyer made,
      and the ladder is rare (10% -> 3-5% -> 1%), so reaching it separates leads most.
      ``step_ladder``: the part reached at each step (sample 0.4, quote 0.6, intent 0.85,
      order 1.0), rising as the funnel narrows; an intent is nearly an order.
    * ``inquiry_weight`` = 8 for writing in at all, plus ``budget_weight`` = 6,
      ``quantity_weight`` = 3 and ``urgency_weight`` = 3 for a concrete need: 20 in all, the
      second signal after a step, since a written need with figures is stated intent.
      ``budget_scale_cny`` = 200,000 and ``quantity_scale`` = 5,000 pieces saturate the
      parts at a typical mid-size garment/fabric order (linear below, capped above).
      ``urgency_horizon_days`` = 90: a lead time of 0 days is fully urgent, one a season
      (90 days) or longer adds nothing; an inquiry without a lead time adds no urgency.
    * ``rating_weight`` = 15: the staff's judgement after talking to the buyer, the best
      human signal at the booth; the strongest rating seen counts (hot 1.0, warm 0.5,
      cold and unrated 0), so a later cold rating at another booth of a cluster does not
      undo a hot one.
    * ``scan_weight`` = 10 with ``scan_scale`` = 5: repeated scans show interest, but a
      buyer is scanned at most booths they pass, so scans saturate quickly.
    * ``days_weight`` = 10 with ``days_scale`` = 2: coming back on another day is the
      strong part of repetition; the part is ``(days - 1) / 2`` capped at 1, so the first
      day adds nothing, a second day half, a third day all.
    * ``recency_weight`` = 15, ``half_life_hours`` = 24: organizers ask "which leads are
      worth a call tonight"; a lead last active yesterday keeps half its recency part, one
      from three days ago an eighth. Activity in the future (clock skew) counts as now.
    * Tiers: ``hot_cutoff`` = 55, ``warm_cutoff`` = 30 (score >= cut-off). A fresh single
      scan scores 17 (cold); a fresh scan rated hot with a second scan 34 (warm), with a
      quote request 52 (still warm); hot needs a cooperation intent (59.5), or a quote
      request plus an inquiry (60): the buyer has committed, not only shown interest.
    """

    scan_weight: float = 10.0
    scan_scale: float = 5.0
    days_weight: float = 10.0
    days_scale: float = 2.0
    rating_weight: float = 15.0
    rating_ladder: tuple[float, float, float] = (0.0, 0.5, 1.0)  # cold, warm, hot
    inquiry_weight: float = 8.0
    budget_weight: float = 6.0
    budget_scale_cny: float = 200_000.0
    quantity_weight: float = 3.0
    quantity_scale: float = 5_000.0
    urgency_weight: float = 3.0
    urgency_horizon_days: float = 90.0
    step_weight: float = 30.0
    step_ladder: tuple[float, float, float, float] = (0.4, 0.6, 0.85, 1.0)  # STEPS order
    recency_weight: float = 15.0
    half_life_hours: float = 24.0
    hot_cutoff: float = 55.0
    warm_cutoff: float = 30.0

    def __post_init__(self) -> None:
        total = (self.scan_weight + self.days_weight + self.rating_weight + self.inquiry_weight
                 + self.budget_weight + self.quantity_weight + self.urgency_weight
                 + self.step_weight + self.recency_weight)
        if abs(total - 100.0) > 1e-9:
            raise ValueError(f"the weights must add up to 100, not {total}")
        if not 0 < self.warm_cutoff < self.hot_cutoff <= 100:
            raise ValueError("cut-offs must satisfy 0 < warm < hot <= 100")
        ladders = (list(self.rating_ladder), list(self.step_ladder))
        if any(ladder != sorted(ladder) or not 0 <= ladder[0] <= ladder[-1] <= 1
               for ladder in ladders):
            raise ValueError("ladders must rise within [0, 1]")
        if min(self.scan_scale, self.days_scale, self.budget_scale_cny, self.quantity_scale,
               self.urgency_horizon_days, self.half_life_hours) <= 0:
            raise ValueError("scales and the half-life must be positive")


DEFAULT_MODEL = ScoreModel()
_N = TypeVar("_N", int, float)


def _max_opt(a: _N | None, b: _N | None) -> _N | None:
    return b if a is None else a if b is None else max(a, b)


def _min_opt(a: _N | None, b: _N | None) -> _N | None:
    return b if a is None else a if b is None else min(a, b)


@dataclass(frozen=True)
class LeadSignals:
    """The signals of one (buyer, exhibitor) or (buyer, cluster) pair.

    Fields (and the SQL column of the same name, see ``score_sql``):

    * ``scans``: booth scans of the buyer (count).
    * ``scan_days``: the fair days (local, ``FAIR_TZ``) with a scan; a set, so that merging
      two buyers scanned on the same day counts the day once.
    * ``ratings``: the staff ratings seen (``hot``/``warm``/``cold``; unrated scans add none).
    * ``has_inquiry``: the buyer wrote an online inquiry to this exhibitor/cluster.
    * ``inquiry_quantity``: the largest quantity asked (pieces), None if never stated.
    * ``inquiry_budget_cny``: the largest budget stated, in CNY; None if never stated or not
      convertible.
    * ``inquiry_lead_time_days``: the shortest lead time asked (most urgent), None if never.
    * ``furthest_step``: the furthest procurement step reached (``STEPS`` order), or None.
    * ``last_activity``: the latest event time (aware UTC) of any of the above.

    Merging two buyers: ``a.combine(b)``: counts add, day and rating sets unite, the inquiry
    keeps its strongest figures (largest quantity and budget, shortest lead time), the
    furthest step and the last activity are the maxima.
    """

    last_activity: datetime
    scans: int = 0
    scan_days: frozenset[date] = field(default_factory=frozenset)
    ratings: frozenset[Rating] = field(default_factory=frozenset)
    has_inquiry: bool = False
    inquiry_quantity: int | None = None
    inquiry_budget_cny: float | None = None
    inquiry_lead_time_days: int | None = None
    furthest_step: Step | None = None

    def __post_init__(self) -> None:
        if self.last_activity.tzinfo is None:
            raise ValueError("last_activity must be timezone-aware")
        if self.scans < 0:
            raise ValueError("scans must be >= 0")

    def combine(self, other: LeadSignals) -> LeadSignals:
        """The signals of both pairs together (associative and commutative)."""
        return LeadSignals(
            last_activity=max(self.last_activity, other.last_activity),
            scans=self.scans + other.scans,
            scan_days=self.scan_days | other.scan_days,
            ratings=self.ratings | other.ratings,
            has_inquiry=self.has_inquiry or other.has_inquiry,
            inquiry_quantity=_max_opt(self.inquiry_quantity, other.inquiry_quantity),
            inquiry_budget_cny=_max_opt(self.inquiry_budget_cny, other.inquiry_budget_cny),
            inquiry_lead_time_days=_min_opt(self.inquiry_lead_time_days,
                                            other.inquiry_lead_time_days),
            furthest_step=_further(self.furthest_step, other.furthest_step),
        )

    @classmethod
    def from_event(
        cls,
        event: PairEvent,
        to_cny: Callable[[Decimal, str], Decimal | None] | None = None,
    ) -> LeadSignals:
        """The signals one event carries (fold many with ``combine``).

        ``to_cny(amount, currency)`` converts a non-CNY inquiry budget (the rates table);
        without it, or when it returns None, such a budget is left out rather than guessed.
        """
        at = event.occurred_at.astimezone(UTC)
        if isinstance(event, ScanEvent):
            rating = event.payload.rating
            return cls(last_activity=at, scans=1,
                       scan_days=frozenset({at.astimezone(FAIR_TZ).date()}),
                       ratings=frozenset({rating}) if rating else frozenset())
        if isinstance(event, InquiryEvent):
            p = event.payload
            budget: Decimal | None = p.budget
            if budget is not None and p.currency != "CNY":
                budget = to_cny(budget, p.currency) if to_cny else None
            return cls(last_activity=at, has_inquiry=True, inquiry_quantity=p.quantity,
                       inquiry_budget_cny=None if budget is None else float(budget),
                       inquiry_lead_time_days=p.lead_time_days)
        return cls(last_activity=at, furthest_step=event.payload.step)


def _further(a: Step | None, b: Step | None) -> Step | None:
    if a is None or b is None:
        return b if a is None else a
    return a if STEPS.index(a) >= STEPS.index(b) else b


SIGNAL_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(LeadSignals))


@dataclass(frozen=True)
class LeadScore:
    """A score in [0, 100] (higher: more worth a call) and its tier."""

    value: float
    tier: Tier


def tier_of(value: float, model: ScoreModel = DEFAULT_MODEL) -> Tier:
    if value >= model.hot_cutoff:
        return "hot"
    return "warm" if value >= model.warm_cutoff else "cold"


def recency_part(last_activity: datetime, now: datetime, model: ScoreModel = DEFAULT_MODEL
                 ) -> float:
    """1 at ``now`` (or later), halving every ``half_life_hours`` of age."""
    age_hours = max(0.0, (now - last_activity).total_seconds() / 3600.0)
    return float(0.5 ** (age_hours / model.half_life_hours))


def score(signals: LeadSignals, now: datetime, model: ScoreModel = DEFAULT_MODEL) -> LeadScore:
    """The lead score of ``signals`` at ``now`` (aware); see ``ScoreModel`` for the formula.

    The operations mirror ``score_sql`` term by term so both give the same float.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    s = signals
    rating = max((RATINGS.index(r) + 1 for r in s.ratings), default=0)
    step = STEPS.index(s.furthest_step) + 1 if s.furthest_step else 0
    has = 1.0 if s.has_inquiry else 0.0
    budget = s.inquiry_budget_cny or 0.0
    quantity = s.inquiry_quantity or 0
    urgency = (0.0 if s.inquiry_lead_time_days is None
               else max(0.0, 1.0 - s.inquiry_lead_time_days / model.urgency_horizon_days))
    value = (
        model.scan_weight * min(s.scans / model.scan_scale, 1.0)
        + model.days_weight * min(max(len(s.scan_days) - 1, 0) / model.days_scale, 1.0)
        + model.rating_weight * ((0.0, *model.rating_ladder)[rating])
        + has * (model.inquiry_weight
                 + model.budget_weight * min(budget / model.budget_scale_cny, 1.0)
                 + model.quantity_weight * min(quantity / model.quantity_scale, 1.0)
                 + model.urgency_weight * urgency)
        + model.step_weight * ((0.0, *model.step_ladder)[step])
        + model.recency_weight * recency_part(s.last_activity, now, model)
    )
    # Guard float drift at the edges only; the parts already keep the sum within [0, 100].
    value = min(max(value, 0.0), 100.0)
    return LeadScore(value=value, tier=tier_of(value, model))


def _f(x: float) -> str:
    return repr(float(x))


def score_sql(model: ScoreModel = DEFAULT_MODEL, now: str = "now64(6, 'UTC')") -> str:
    """The ``score`` formula as one ClickHouse expression (Float64 in [0, 100]).

    Columns it reads, named like the ``LeadSignals`` fields: ``scans`` (integer),
    ``scan_days`` (Array(Date), distinct days, e.g. ``groupUniqArray``), ``ratings``
    (Array(String)), ``has_inquiry`` (UInt8/Bool), ``inquiry_quantity`` (Nullable integer),
    ``inquiry_budget_cny`` (Nullable(Float64)), ``inquiry_lead_time_days`` (Nullable
    integer), ``furthest_step`` (Nullable(String), a ``STEPS`` value), ``last_activity``
    (DateTime64 or DateTime). ``now`` is an SQL expression of the scoring time.
    """
    rating_ladder = ", ".join(_f(x) for x in (0.0, *model.rating_ladder))
    step_ladder = ", ".join(_f(x) for x in (0.0, *model.step_ladder))
    ratings = ", ".join(f"'{r}'" for r in RATINGS)
    steps = ", ".join(f"'{s}'" for s in STEPS)
    # arrayMax over indexOf: the strongest rating seen (0 when none); arrays are 1-based.
    rating_index = f"arrayMax(arrayMap(r -> indexOf([{ratings}], r), arrayPushBack(ratings, '')))"
    step_index = f"indexOf([{steps}], ifNull(furthest_step, ''))"
    micros = "toUnixTimestamp64Micro(toDateTime64({}, 6, 'UTC'))"
    age_hours = (f"greatest(0., ({micros.format(now)} - {micros.format('last_activity')})"
                 f" / 1000000. / 3600.)")
    urgency = (f"ifNull(greatest(0., 1. - inquiry_lead_time_days"
               f" / {_f(model.urgency_horizon_days)}), 0.)")
    return (
        f"least(greatest("
        f"{_f(model.scan_weight)} * least(scans / {_f(model.scan_scale)}, 1.)"
        f" + {_f(model.days_weight)}"
        f" * least(greatest(length(scan_days) - 1, 0) / {_f(model.days_scale)}, 1.)"
        f" + {_f(model.rating_weight)} * [{rating_ladder}][{rating_index} + 1]"
        f" + if(has_inquiry, 1., 0.) * ({_f(model.inquiry_weight)}"
        f" + {_f(model.budget_weight)}"
        f" * least(ifNull(inquiry_budget_cny, 0.) / {_f(model.budget_scale_cny)}, 1.)"
        f" + {_f(model.quantity_weight)}"
        f" * least(ifNull(inquiry_quantity, 0) / {_f(model.quantity_scale)}, 1.)"
        f" + {_f(model.urgency_weight)} * {urgency})"
        f" + {_f(model.step_weight)} * [{step_ladder}][{step_index} + 1]"
        f" + {_f(model.recency_weight)} * pow(0.5, {age_hours} / {_f(model.half_life_hours)})"
        f", 0.), 100.)"
    )


def tier_sql(score_expr: str, model: ScoreModel = DEFAULT_MODEL) -> str:
    """The tier (``'hot'``/``'warm'``/``'cold'``) of a score expression, as ``tier_of``."""
    return (f"multiIf(({score_expr}) >= {_f(model.hot_cutoff)}, 'hot',"
            f" ({score_expr}) >= {_f(model.warm_cutoff)}, 'warm', 'cold')")

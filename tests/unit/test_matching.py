"""Supplier matchmaking: hard constraints exclude, soft preferences rank, results explain."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest

from producers.simulator.payloads import inquiry_terms, profile
from schemas.events import OnlineInquiry, SupplierProfile
from schemas.reference import CLUSTERS_BY_ID, booth_roster
from streams.matching import WEIGHTS, SupplierIndex, top_matches

T0 = datetime(2026, 3, 26, 8, 0, tzinfo=UTC)


def supplier(exhibitor_id: str, **overrides: object) -> SupplierProfile:
    fields: dict[str, object] = {
        "exhibitor_id": exhibitor_id, "cluster_id": "foshan", "categories": ["childrenswear"],
        "crafts": [], "monthly_capacity": 10_000, "moq": 100, "lead_time_days": 20,
        "certifications": [],
    }
    fields.update(overrides)
    return SupplierProfile.model_validate(fields)


def inquiry(**overrides: object) -> OnlineInquiry:
    fields: dict[str, object] = {
        "cluster_id": "foshan", "categories": ["childrenswear"], "quantity": 1000,
        "lead_time_days": 30, "channel": "web",
    }
    fields.update(overrides)
    return OnlineInquiry.model_validate(fields)


def index_of(*profiles: SupplierProfile) -> SupplierIndex:
    return SupplierIndex.build((p, T0, f"ev-{p.exhibitor_id}") for p in profiles)


def ids(matches: list) -> list[str]:
    return [m.exhibitor_id for m in matches]


def test_weights_add_up_to_one() -> None:
    assert sum(WEIGHTS.values()) == pytest.approx(1.0)


@pytest.mark.parametrize("excluded, why", [
    (supplier("x", categories=["denim"]), "no shared category"),
    (supplier("x", moq=1001), "MOQ above the quantity"),
    (supplier("x", lead_time_days=31), "slower than the buyer's deadline"),
    # 30 days at 999/month makes 999 < 1000
    (supplier("x", monthly_capacity=999), "cannot make the quantity in the window"),
])
def test_each_hard_constraint_excludes(excluded: SupplierProfile, why: str) -> None:
    index = index_of(excluded, supplier("ok"))
    assert ids(top_matches(inquiry(), index)) == ["ok"], why


def test_capacity_counts_over_the_buyers_lead_time() -> None:
    # 600/month over 60 days makes 1200 >= 1000; over 30 days only 600.
    index = index_of(supplier("slow", monthly_capacity=600, lead_time_days=10))
    assert ids(top_matches(inquiry(lead_time_days=60), index)) == ["slow"]
    assert top_matches(inquiry(lead_time_days=30), index) == []


def test_unstated_terms_exclude_nobody_and_say_so() -> None:
    index = index_of(supplier("big-moq", moq=5000, lead_time_days=200))
    [m] = top_matches(inquiry(quantity=None, lead_time_days=None), index)
    assert (m.explanation.moq_satisfied, m.explanation.lead_time_satisfied) == (None, None)
    assert m.explanation.capacity_headroom is None
    assert m.explanation.capacity_in_window == 10_000  # one month by default


def test_no_candidate_returns_empty() -> None:
    assert top_matches(inquiry(categories=["hanfu"]), index_of(supplier("a"))) == []
    assert top_matches(inquiry(), SupplierIndex()) == []
    assert top_matches(inquiry(categories=[]), index_of(supplier("a"))) == []


def test_ranking_prefers_the_named_cluster_then_coverage_then_headroom() -> None:
    index = index_of(
        supplier("half", categories=["childrenswear"], monthly_capacity=400_000),
        supplier("full-other", cluster_id="zhili", categories=["childrenswear", "knitwear"]),
        supplier("full-cluster", categories=["childrenswear", "knitwear"],
                 monthly_capacity=1500),
        supplier("full-cluster-roomy", categories=["childrenswear", "knitwear"],
                 monthly_capacity=4000),
    )
    matches = top_matches(inquiry(categories=["childrenswear", "knitwear"]), index, k=4)
    # In the named cluster even half the need outranks all of it elsewhere (WEIGHTS).
    assert ids(matches) == ["full-cluster-roomy", "full-cluster", "half", "full-other"]
    assert [m.rank for m in matches] == [1, 2, 3, 4]
    assert [m.score for m in matches] == sorted((m.score for m in matches), reverse=True)
    assert matches[0].explanation.components["headroom"] == 1.0  # 4x the quantity
    assert matches[1].explanation.components["headroom"] == pytest.approx(0.5 / 3)


def test_named_exhibitor_ranks_first_and_names_its_cluster() -> None:
    index = index_of(supplier("named"), supplier("colleague"),
                     supplier("elsewhere", cluster_id="zhili"))
    matches = top_matches(inquiry(cluster_id=None, exhibitor_id="named"), index)
    assert ids(matches) == ["named", "colleague", "elsewhere"]
    assert [m.explanation.target for m in matches] == ["exhibitor", "cluster", "other"]


def test_top_k_is_three_by_default() -> None:
    index = index_of(*(supplier(f"s{i:02d}") for i in range(10)))
    assert len(top_matches(inquiry(), index)) == 3
    assert len(top_matches(inquiry(), index, k=5)) == 5
    assert top_matches(inquiry(), index, k=0) == []


def test_ties_break_by_exhibitor_id_whatever_the_insertion_order() -> None:
    profiles = [supplier(f"s{i}") for i in (5, 1, 9, 3)]
    a = top_matches(inquiry(), index_of(*profiles))
    b = top_matches(inquiry(), index_of(*reversed(profiles)))
    assert ids(a) == ids(b) == ["s1", "s3", "s5"]
    assert a == b


def test_explanation_contents_and_json() -> None:
    index = index_of(supplier(
        "a", categories=["childrenswear", "knitwear"], crafts=["embroidery", "quilting"],
        certifications=["GOTS", "OEKO-TEX Standard 100"], monthly_capacity=3000, moq=200,
        lead_time_days=12))
    q = inquiry(categories=["childrenswear", "denim"], quantity=1500, lead_time_days=45,
                message="Need embroidery on kids tops, OEKO-TEX Standard 100 please")
    [m] = top_matches(q, index)
    e = m.explanation
    assert e.matched_categories == ("childrenswear",)
    assert e.missing_categories == ("denim",)
    assert e.matched_crafts == ("embroidery",)
    assert e.requested_certifications == ("OEKO-TEX Standard 100",)
    assert e.capacity_in_window == 4500  # 3000/month over 45 days
    assert (e.capacity_headroom, e.capacity_ratio) == (3000, 3.0)
    assert (e.moq_satisfied, e.lead_time_satisfied, e.lead_time_slack_days) == (True, True, 33)
    assert (m.cluster_id, e.target) == ("foshan", "cluster")
    doc = json.loads(json.dumps(m.to_json()))
    assert doc["explanation"]["matched_categories"] == ["childrenswear"]
    assert doc["rank"] == 1 and doc["score"] == m.score
    assert 0 < m.score <= 1


def test_newer_profile_replaces_older_by_event_time_not_arrival() -> None:
    old = supplier("a", categories=["childrenswear"])
    new = supplier("a", categories=["denim"], cluster_id="zhongshan")
    for order in ([(old, T0, "e1"), (new, T0 + timedelta(hours=1), "e2")],
                  [(new, T0 + timedelta(hours=1), "e2"), (old, T0, "e1")]):
        index = SupplierIndex.build(order)
        assert len(index) == 1
        assert top_matches(inquiry(), index) == []  # no longer makes childrenswear
        assert ids(top_matches(inquiry(categories=["denim"]), index)) == ["a"]
    same_time = SupplierIndex.build([(new, T0, "e2"), (old, T0, "e1")])
    assert same_time.get("a") == new  # equal times: the greater event id wins


def test_matches_are_deterministic_over_a_simulated_fair() -> None:
    profiles, inquiries, _ = simulated(seed=7, n_inquiries=300)
    shuffled = profiles[:]
    random.Random(1).shuffle(shuffled)
    a, b = SupplierIndex.build(profiles), SupplierIndex.build(shuffled)
    assert [top_matches(q, a) for q in inquiries] == [top_matches(q, b) for q in inquiries]


def simulated(seed: int, n_inquiries: int
              ) -> tuple[list[tuple[SupplierProfile, datetime, str]], list[OnlineInquiry],
                         list[set[str]]]:
    """Profiles and inquiries drawn by the simulator's own payload code, and the oracle.

    The oracle's relevant set for an inquiry: suppliers that fit it completely (every
    hard constraint, every requested category) in the cluster the buyer named. It knows
    nothing of the weights.
    """
    rng = random.Random(seed)
    roster = booth_roster()
    profiles = [(SupplierProfile.model_validate(profile(rng, b, CLUSTERS_BY_ID[b.cluster_id])),
                 T0, f"p{i}") for i, b in enumerate(roster)]
    clusters = sorted(CLUSTERS_BY_ID)
    inquiries, relevant = [], []
    for _ in range(n_inquiries):
        cluster = CLUSTERS_BY_ID[rng.choice(clusters)]
        terms = inquiry_terms(rng, cluster, "CNY", "en", None)
        q = OnlineInquiry.model_validate({**terms, "cluster_id": cluster.id, "channel": "web"})
        inquiries.append(q)
        relevant.append({p.exhibitor_id for p, _, _ in profiles if _fits(q, p)})
    return profiles, inquiries, relevant


def _fits(q: OnlineInquiry, p: SupplierProfile) -> bool:
    window = q.lead_time_days or 30
    return (p.cluster_id == q.cluster_id and set(q.categories) <= set(p.categories)
            and (q.quantity is None or (p.moq <= q.quantity
                                        and p.monthly_capacity * window // 30 >= q.quantity))
            and (q.lead_time_days is None or p.lead_time_days <= q.lead_time_days))


@pytest.mark.parametrize("seed", [1, 2])
def test_precision_at_3_against_the_simulators_generation_oracle(seed: int) -> None:
    profiles, inquiries, relevant = simulated(seed, n_inquiries=1000)
    index = SupplierIndex.build(profiles)
    scores = [len(set(ids(top_matches(q, index))) & rel) / min(3, len(rel))
              for q, rel in zip(inquiries, relevant, strict=True) if rel]
    assert len(scores) > 500  # most simulated inquiries have a perfect-fit supplier
    assert sum(scores) / len(scores) >= 0.95

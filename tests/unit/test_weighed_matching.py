"""The weighed path of buyer resolution: comparisons, blocking, the EM estimates, the
threshold, and the resolver's decisions on records that share no identifier."""

from __future__ import annotations

import io
import random

import orjson
import pytest

from leadloom.commands.resolve import pairwise, resolve_lines
from schemas.identity import IdentityRecord
from streams.identity import blocking
from streams.identity import fellegi_sunter as fs
from streams.identity.comparisons import FIELDS, LEVELS, MISSING, compare, name_levels
from streams.identity.resolver import Features, Resolver
from streams.identity.stream import FairIdentity, Outputs
from tests.factories.people import person_records

FAIR = "CIFW-2026-AW"


# -- comparisons and keys ---------------------------------------------------------------

@pytest.mark.parametrize(("token", "code"), [
    ("robert", "r163"), ("rupert", "r163"), ("ashcraft", "a261"), ("tymczak", "t522"),
    ("pfister", "p236"), ("jacob", "j210"), ("jacbo", "j210"), ("lee", "l000"),
])
def test_soundex_codes_are_the_standard_ones(token: str, code: str) -> None:
    assert blocking.soundex(token) == code


def test_name_parts_align_in_the_better_order() -> None:
    assert name_levels(("max", "varano"), ("varano", "max"), False) == (0, 0)
    assert name_levels(("jacob", "gencheff"), ("jacbo", "gencheff"), False) == (0, 1)
    assert name_levels(("s",), ("sarah", "davis"), False) == (3, MISSING)
    assert name_levels(("tahlia", "reid"), ("molly", "reid"), False) == (0, 4)
    assert name_levels((), ("molly", "reid"), False) == (MISSING, MISSING)


def record(**fields: object) -> Features:
    return Features.of({"id": "x", **fields})


def test_typos_are_one_level_down_and_scripts_fold() -> None:
    a = record(full_name="Madeline Mason", postcode="2280", city="Thornlie",
               address="7 Dixon Drive Jestarlei")
    b = record(full_name="madellne mason", postcode="2820", city="thornlei",
               address="7 dixon drive jestarlie")
    levels = dict(zip(FIELDS, compare(a, b), strict=True))
    assert levels["postcode"] == 1 and levels["city"] == 1
    assert levels["address_numbers"] == 0 and levels["street"] in (0, 1)
    assert levels["name_best"] == 0 and levels["name_other"] == 1
    assert levels["phone"] == MISSING and levels["company"] == MISSING
    # hanzi cities read as pinyin; a hanzi and a Latin company are not compared
    zh = record(full_name="王秀英", city="杭州市", company="杭州锦绣贸易有限公司")
    en = record(full_name="Wang Xiuying", city="Hangzhou", company="Jinxiu Trading")
    levels = dict(zip(FIELDS, compare(zh, en), strict=True))
    assert levels["city"] == 0 and levels["company"] == MISSING and levels["name_best"] == 0


def test_keys_meet_through_a_typo_in_any_one_field() -> None:
    base = {"full_name": "jacob gencheff", "postcode": "4074", "city": "para hills",
            "address": "12 elder street stfrancis vlge"}
    keys = set(blocking.typo_keys(record(**base)))
    for slip in ({"full_name": "jacbo gencheff"}, {"postcode": "4047"},
                 {"full_name": "gencheff jacob"}, {"address": "12 eldr street"},
                 {"city": "para htlls"}):
        assert keys & set(blocking.typo_keys(record(**{**base, **slip}))), slip
    assert blocking.typo_keys(record(postcode="4074")) == []  # no name, no weighed keys


def test_every_key_is_read_only_to_its_bound() -> None:
    resolver = Resolver()
    for n in range(300):  # one name, one postcode: one block of 300
        resolver.add({"id": f"r{n}", "full_name": "Wang Wei", "postcode": "310000",
                      "phone": f"+86 139 0000 {n:04d}"})
    assert all(len(block) <= blocking.BLOCK_READ for block in resolver.weighed.index.values())
    keys = blocking.typo_keys(resolver.features["r0"])
    assert len(resolver._typo_candidates(keys, None)) <= blocking.MAX_CANDIDATES
    assert resolver.weighed.candidates / resolver.weighed.records <= blocking.MAX_CANDIDATES


# -- the estimates --------------------------------------------------------------------

def draw_patterns(rng: random.Random, n: int, share: float, m_agree: float,
                  u_agree: float) -> dict[tuple[int, ...], int]:
    """Patterns from a known model: each field agrees (level 0) with m_agree in a match,
    u_agree otherwise, and else takes its last level."""
    counts: dict[tuple[int, ...], int] = {}
    for _ in range(n):
        p = m_agree if rng.random() < share else u_agree
        pattern = tuple(0 if rng.random() < p else LEVELS[f] - 1 for f in range(len(FIELDS)))
        counts[pattern] = counts.get(pattern, 0) + 1
    return counts


@pytest.mark.parametrize("share", [0.05, 0.3, 0.8])
def test_em_recovers_the_model_whatever_the_share_of_matches(share: float) -> None:
    patterns = draw_patterns(random.Random(3), 20_000, share, 0.9, 0.15)
    model = fs.estimate(patterns)
    assert model.match_share == pytest.approx(share, abs=0.03)
    for f in range(len(FIELDS)):
        assert model.m[f][0] == pytest.approx(0.9, abs=0.04)
        assert model.u[f][0] == pytest.approx(0.15, abs=0.04)
    assert 0 <= model.threshold < sum(max(w) for w in model.weights())


def test_identifier_linked_pairs_anchor_the_matches_side() -> None:
    # Candidates: 2% matches, and a strong "same firm" structure among the rest that
    # agrees on every field but the names; linked pairs say what matches look like.
    rng = random.Random(5)
    names_at = [FIELDS.index("name_best"), FIELDS.index("name_other")]
    patterns: dict[tuple[int, ...], int] = {}
    for _ in range(20_000):
        kind = rng.random()
        if kind < 0.02:
            pattern = tuple(0 for _ in FIELDS)
        elif kind < 0.4:
            pattern = tuple(LEVELS[f] - 1 if f in names_at else 0 for f in range(len(FIELDS)))
        else:
            pattern = tuple(LEVELS[f] - 1 for f in range(len(FIELDS)))
        patterns[pattern] = patterns.get(pattern, 0) + 1
    linked = {tuple(0 for _ in FIELDS): fs.MIN_LINKED * 2}
    model = fs.estimate(patterns, linked)
    weights = model.weights()
    colleague = sum(weights[f][LEVELS[f] - 1 if f in names_at else 0]
                    for f in range(len(FIELDS)))
    assert colleague < model.threshold  # colleagues are not taken for one person
    assert model.match_share == pytest.approx(0.02, abs=0.01)


def test_the_threshold_keeps_the_set_precise_and_each_pair_likely() -> None:
    model = fs.estimate(draw_patterns(random.Random(9), 20_000, 0.3, 0.85, 0.2))
    assert model.posterior(model.threshold) >= 0.9
    assert model.threshold >= 0
    assert fs.estimate({}, {}).threshold == float("inf")  # nothing weighed yet


# -- the resolver ---------------------------------------------------------------------

@pytest.mark.parametrize("seed", [1, 2, 3])
def test_records_with_typos_and_no_identifier_resolve_precisely(seed: int) -> None:
    records, truth = person_records(500, seed)
    resolver = Resolver()
    for rec in records:
        resolver.add(rec)
    p, r = pairwise({x["id"]: resolver.find(x["id"]) for x in records}, truth)
    assert p >= 0.995 and r >= 0.95
    assert resolver.weighed.estimates and resolver.weighed.model is not None
    recorded = resolver.weighed.estimates[-1]
    assert set(recorded["fields"]) == set(FIELDS) and "threshold" in recorded
    weighed = [m for m in resolver.merges if m.evidence[0] == "weighed"]
    assert weighed, "records weighed before the first estimate were weighed again"
    for m in weighed:
        weight = float(m.evidence[1].removeprefix("weight:"))
        threshold = float(m.evidence[2].removeprefix("threshold:"))
        assert weight >= threshold and 0.0 <= m.score <= 1.0


def fair_of_people(resolver: Resolver, seed: int = 1) -> None:
    records, _ = person_records(400, seed)
    for rec in records:
        resolver.add(rec)
    assert resolver.weighed.model is not None and resolver.weighed.model.threshold < 1e9


def test_namesakes_at_one_firm_stay_apart_and_a_record_fitting_both_joins_neither() -> None:
    resolver = Resolver()
    fair_of_people(resolver)
    firm = {"full_name": "Wang Wei", "company": "Hangzhou Jinxiu Trading Co., Ltd.",
            "city": "Hangzhou", "postcode": "310012", "address": "88 Wensan Road"}
    first = resolver.add({"id": "w1", **firm, "phone": "+86 139 1111 2222"})
    second = resolver.add({"id": "w2", **firm, "phone": "+86 186 3333 4444"})
    assert first != second  # another phone tells them apart
    third = resolver.add({"id": "w3", **firm})
    assert third not in (resolver.find("w1"), resolver.find("w2"))


def test_an_identifier_one_slip_away_does_not_tell_apart_but_another_does() -> None:
    resolver = Resolver()
    fair_of_people(resolver)
    person = {"full_name": "Chen Jing", "company": "Humen Casual Wear Co.",
              "city": "Dongguan", "postcode": "523900", "address": "12 Yinlong Road"}
    base = resolver.add({"id": "c1", **person, "email": "chen.jing@humen.example",
                         "wechat": "wxid_abc123def456"})
    # the same mailbox, the WeChat id typed with two letters swapped: one person
    assert resolver.add({"id": "c2", **person, "email": "chen.jing@humen.example",
                         "wechat": "wxid_bac123def456"}) == base
    # the same name and firm with a wholly other WeChat id: someone else
    assert resolver.add({"id": "c3", **person, "wechat": "wxid_zzz999yyy888"}) != base


def test_replaying_the_same_records_in_order_gives_the_same_buyers_and_merges() -> None:
    records, _ = person_records(400, 4)
    runs = []
    for _ in range(2):
        resolver = Resolver()
        for rec in records:
            resolver.add(rec)
        runs.append(({x["id"]: resolver.find(x["id"]) for x in records}, resolver.merges,
                     resolver.weighed.estimates))
    assert runs[0] == runs[1]


def test_the_stream_engine_gives_the_buyers_leadloom_resolve_gives() -> None:
    """Same records, same order: every event's buyer, and the newest alias row of every
    record (what buyer_aliases holds), equal the batch command's output, including the
    merges made when an estimate weighs earlier records again."""
    records, _ = person_records(400, 2)
    out = io.StringIO()
    resolve_lines((orjson.dumps(r).decode() for r in records), out, lambda _: None)
    batch = {row["id"]: row["buyer_id"] for row in map(orjson.loads, out.getvalue().splitlines())}

    engine, outputs = FairIdentity(FAIR), Outputs()
    for rec in records:
        contact = {k: rec.get(k) for k in ("full_name", "city", "province", "postcode",
                                           "address", "country")}
        engine.apply(IdentityRecord.model_validate({
            "event_id": rec["id"], "event_type": "buyer_registration", "fair_id": FAIR,
            "occurred_at": "2026-03-26T02:15:30.000+00:00", "cluster_id": "keqiao",
            "exhibitor_id": "", "booth_id": "", "badge_id": "", "consent": True,
            "contact": contact}), outputs)
    newest: dict[str, tuple[int, str]] = {}
    for row in map(orjson.loads, outputs.aliases):
        if row["alias"] not in newest or row["version"] >= newest[row["alias"]][0]:
            newest[row["alias"]] = (row["version"], row["buyer_id"])
    assert {alias: buyer for alias, (_, buyer) in newest.items()} == batch
    assert {r["id"]: engine.buyer_of(r["id"]) for r in records} == batch
    assert any(m.evidence[0] == "weighed" for m in engine.resolver.merges)

"""The buyer records' typing and reading errors per channel: generators, rates, labels, and a
simulated day whose events do not depend on them."""

from __future__ import annotations

import math
import random
import re
from collections import Counter

import orjson
import pytest

from producers.simulator import Simulation, SimulationParams, simulate_fair
from producers.simulator import channels as ch
from producers.simulator import typos as ty
from producers.simulator.buyers import BuyerFactory
from producers.simulator.contacts import inquiry_contact, registration_contact

CONTACT_KEYS = ("full_name", "company", "email", "phone", "wechat_id", "country", "province",
                "city", "address", "postcode")
RECORD_FIELD = {"wechat_id": "wechat"}
NOISE_TAGS = {ch.tag_of(f, k) for table in ch.CHANNEL_NOISE.values()
              for f, kinds in table.items() for k, _ in kinds}
EVENTS, SEED = 40_000, 7


@pytest.fixture(scope="module")
def noisy() -> Simulation:
    return simulate_fair(EVENTS, SEED)


@pytest.fixture(scope="module")
def clean() -> Simulation:
    return simulate_fair(EVENTS, SEED, params=SimulationParams(realistic_variants=False))


# -- generators ----------------------------------------------------------------------------

def _edit_distance(a: str, b: str) -> int:
    """Damerau-Levenshtein (optimal string alignment) distance."""
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1,
                          d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


def test_keyboard_typo_is_one_slip_on_a_neighbouring_key() -> None:
    rng = random.Random(1)
    seen = Counter()
    for _ in range(2000):
        word = rng.choice(("Xiaoming", "Davis", "Friedrichstrasse", "qihangtrading"))
        typo = ty.keyboard_typo(rng, word)
        assert typo != word and typo[0] == word[0]
        assert _edit_distance(word, typo) == 1
        seen[len(typo) - len(word)] += 1
        if len(typo) == len(word) and sorted(typo) != sorted(word):  # a substitution
            i = next(i for i, (a, b) in enumerate(zip(word, typo, strict=True)) if a != b)
            assert typo[i].lower() in ty.QWERTY_NEIGHBOURS[word[i].lower()]
    assert set(seen) == {-1, 0, 1}  # dropped, substituted or swapped, inserted
    assert ty.keyboard_typo(rng, "Li") == "Li"
    assert ty.keyboard_typo(rng, "王小明") == "王小明"


def test_ocr_and_digit_errors() -> None:
    rng = random.Random(2)
    assert {ty.ocr_confusion(rng, "510018") for _ in range(300)} == {
        "S10018", "5l0018", "5I0018", "51O018", "510O18", "5100l8", "5100I8", "51001B"}
    assert ty.ocr_confusion(rng, "Kim") == "Kirn"  # m read as rn
    assert ty.ocr_confusion(rng, "王芳") == "玉芳"
    assert ty.ocr_confusion(rng, "xyz") == "xyz"
    for _ in range(200):
        t = ty.transpose_digits(rng, "310036")
        assert t != "310036" and sorted(t) == sorted("310036") and _edit_distance(t, "310036") == 1
        m = ty.mistype_digit(rng, "No. 245")
        (i,) = [i for i, (x, y) in enumerate(zip(m, "No. 245", strict=True)) if x != y]
        assert m[i] in ty.QWERTY_NEIGHBOURS["No. 245"[i]]
        r = ty.misread_digit(rng, "+86 138 1234 5678", last=9)
        assert r.startswith("+86 13") and sum(a != b for a, b in zip(r, "+86 138 1234 5678",
                                                                      strict=True)) == 1
    assert ty.transpose_digits(rng, "1111") == "1111"


def test_name_parts_dropped_and_swapped() -> None:
    rng = random.Random(3)
    assert {ty.drop_name_part(rng, "王小明", "Xiaoming", ("xiao", "ming"), "小明")
            for _ in range(50)} == {"王小", "王明"}
    assert {ty.drop_name_part(rng, "Wang Xiaoming", "Xiaoming", ("xiao", "ming"))
            for _ in range(100)} == {"Wang Xiao", "Wang Ming", "Wang X."}
    assert ty.drop_name_part(rng, "Sarah Davis", "Sarah", ()) == "S. Davis"
    assert {ty.drop_name_part(rng, "Wang Xiao Ming", "Xiaoming", ("xiao", "ming"))
            for _ in range(50)} == {"Wang Xiao", "Wang Ming"}
    assert ty.drop_name_part(rng, "王伟", "Wei", ("wei",), "伟") == "王伟"  # nothing to drop
    assert ty.swap_name_parts("Sarah Davis") == "Davis Sarah"
    assert ty.swap_name_parts("王伟") == "王伟"


def test_company_abbreviations_and_legal_suffixes() -> None:
    rng = random.Random(4)
    forms = {ty.abbreviate_company(rng, "Hangzhou Qihang Trading Co., Ltd.", ("Hangzhou",))
             for _ in range(200)}
    assert forms == {"Qihang Trading Co., Ltd.", "Hangzhou Qihang Trdg Co., Ltd.",
                     "HQT Co., Ltd."}
    assert ty.abbreviate_company(rng, "杭州启航贸易股份有限公司", ("杭州",)) == \
        "启航贸易股份有限公司"
    assert ty.abbreviate_company(rng, "Atelier", ()) == "Atelier"
    for _ in range(50):
        changed = ty.change_legal_suffix(rng, "Victoria Harbour Trading Limited")
        assert changed.startswith("Victoria Harbour Trading ") and changed != \
            "Victoria Harbour Trading Limited" and not changed.endswith(" ")
    assert ty.change_legal_suffix(rng, "杭州启航贸易有限公司") == "杭州启航贸易有限责任公司"
    assert ty.change_legal_suffix(rng, "Atelier Riva") == "Atelier Riva"


# -- rates per channel ---------------------------------------------------------------------

def test_observed_rates_match_the_table() -> None:
    """On 12,000 contacts per channel, each error's rate among the records it can happen
    to is the table's, within four standard deviations (plus 0.2 points)."""
    n = 12_000
    params = SimulationParams()
    factory = BuyerFactory(random.Random(5), params, "CIFW-2026-AW")
    buyers = [factory.create() for _ in range(n)]
    rng = random.Random(6)
    for channel in ch.CHANNELS:
        noise = random.Random(f"rates:{channel}")
        hits: Counter[tuple[str, str]] = Counter()
        can: Counter[tuple[str, str]] = Counter()
        for b in buyers:
            if channel == ch.INQUIRY:
                contact, _ = inquiry_contact(rng, b, "web", params)
            else:
                contact = registration_contact(rng, b, 0.96)
            typed = dict(contact)
            tags = set(ch.add_noise(noise, typed, b, channel, factory.claim))
            assert tags <= NOISE_TAGS
            for field, kinds in ch.CHANNEL_NOISE[channel].items():
                value = contact.get(field)
                if not isinstance(value, str) or not value:
                    continue
                for kind, _ in kinds:
                    probe = ch.apply_error(random.Random(0), field, kind, value, b) \
                        if kind != "missing" else None
                    if probe != value:
                        can[field, kind] += 1
                        hits[field, kind] += ch.tag_of(field, kind) in tags
        for field, kinds in ch.CHANNEL_NOISE[channel].items():
            for kind, p in kinds:
                m = can[field, kind]
                assert m > 500, (channel, field, kind, m)
                observed = hits[field, kind] / m
                tolerance = 4 * math.sqrt(p * (1 - p) / m) + 0.002
                assert abs(observed - p) <= tolerance, (channel, field, kind, observed, p)


# -- a simulated day -----------------------------------------------------------------------

def _records(sim: Simulation) -> list[dict]:
    return sim.ground_truth["buyer_records"]


def test_records_carry_channel_and_labels(noisy: Simulation) -> None:
    records = _records(noisy)
    channels = Counter(r["channel"] for r in records)
    assert set(channels) == set(ch.CHANNELS)
    desk = channels[ch.DESK] + channels[ch.CARD]
    assert abs(channels[ch.CARD] / desk - ch.CARD_SHARE) < 0.04
    assert all(r["channel"] == ch.INQUIRY for r in records if r["source"] == "online_inquiry")
    tags = Counter(t for r in records for t in r["variants"] if t in NOISE_TAGS)
    for wanted in ("name_keyboard_typo", "name_homophone", "name_part_dropped", "name_ocr",
                   "company_abbrev", "company_legal_suffix", "postcode_transposed",
                   "postcode_ocr", "address_missing", "address_digits", "company_ocr"):
        assert tags[wanted] > 0, wanted
    noisy_records = [r for r in records if any(t in NOISE_TAGS for t in r["variants"])]
    per_record = sum(sum(t in NOISE_TAGS for t in r["variants"]) for r in noisy_records)
    assert 1.0 <= per_record / len(noisy_records) <= 2.0  # FEBRL-like: one or two errors
    assert len(noisy_records) < 0.5 * len(records)
    for r in records:  # what each channel can do, and nothing else
        allowed = {ch.tag_of(f, k) for f, kinds in ch.CHANNEL_NOISE[r["channel"]].items()
                   for k, _ in kinds}
        assert {t for t in r["variants"] if t in NOISE_TAGS} <= allowed


def test_labels_say_exactly_which_fields_drifted(noisy: Simulation, clean: Simulation) -> None:
    on, off = _records(noisy), _records(clean)
    assert [(r["id"], r["buyer"], r["source"]) for r in on] == \
        [(r["id"], r["buyer"], r["source"]) for r in off]
    for a, b in zip(on, off, strict=True):
        assert not [t for t in b["variants"] if t in NOISE_TAGS]
        assert b["channel"] in (ch.ONLINE, ch.DESK, ch.INQUIRY)
        assert a["channel"] == b["channel"] or (a["channel"], b["channel"]) == (ch.CARD, ch.DESK)
        noise = [t for t in a["variants"] if t in NOISE_TAGS]
        assert [t for t in a["variants"] if t not in NOISE_TAGS] == b["variants"]
        for key in CONTACT_KEYS:
            field = RECORD_FIELD.get(key, key)
            tag = ch.FIELD_TAG.get(key, key)
            labelled = [t for t in noise if t.startswith(tag + "_")]
            assert (a[field] != b[field]) == bool(labelled), (key, a, b)
            if labelled == [f"{tag}_missing"]:
                assert a[field] is None and b[field]


def test_the_day_is_the_same_with_and_without_errors(noisy: Simulation,
                                                     clean: Simulation) -> None:
    assert len(noisy.messages) == len(clean.messages)
    changed = 0
    for a, b in zip(noisy.messages, clean.messages, strict=True):
        assert (a.kind, a.event_type, a.key) == (b.kind, b.event_type, b.key)
        if a.value == b.value:
            continue
        changed += 1
        assert a.kind == "valid" and a.event_type in ("buyer_registration", "online_inquiry")
        da, db = orjson.loads(a.value), orjson.loads(b.value)
        pa, pb = da.pop("payload"), db.pop("payload")
        assert da == db  # ids, times, source channel
        assert pa["badge_id" if "badge_id" in pb else "channel"] == \
            pb["badge_id" if "badge_id" in pb else "channel"]
        assert {k for k in pa.keys() | pb.keys() if pa.get(k) != pb.get(k)} <= set(CONTACT_KEYS)
    assert changed > 100
    truth_on, truth_off = dict(noisy.ground_truth), dict(clean.ground_truth)
    for truth in (truth_on, truth_off):
        truth.pop("buyer_records")
        truth["params"] = {k: v for k, v in truth["params"].items() if k != "realistic_variants"}
    assert truth_on == truth_off


def test_no_typo_makes_an_identifier_another_buyers(noisy: Simulation) -> None:
    """A mistyped mailbox, phone or WeChat id is a value no other buyer has."""
    owners: dict[tuple[str, str], set[str]] = {}

    def mailbox(email: str) -> str:
        local, _, domain = email.lower().partition("@")
        local = local.split("+")[0]
        return (local.replace(".", "") if domain in ("gmail.com", "googlemail.com")
                else local) + "@" + domain.replace("googlemail.com", "gmail.com")

    for r in _records(noisy):
        keys = []
        if r["email"]:
            keys.append(("email", mailbox(r["email"])))
        if r["wechat"]:
            keys.append(("wechat", r["wechat"].lower()))
        digits = re.sub(r"\D", "", r["phone"] or "")
        if len(digits) >= 10:
            keys.append(("phone", digits[-10:]))
        for key in keys:
            owners.setdefault(key, set()).add(r["buyer"])
    typoed = {r["buyer"] for r in _records(noisy)
              if {"email_keyboard_typo", "phone_transposed", "phone_digit", "email_ocr",
                  "phone_ocr", "wechat_keyboard_typo"} & set(r["variants"])}
    assert typoed
    shared = {k: v for k, v in owners.items() if len(v) > 1}
    assert not shared


def test_claim_refuses_a_taken_identifier() -> None:
    factory = BuyerFactory(random.Random(8), SimulationParams(), "CIFW-2026-AW")
    b = factory.create()
    assert not factory.claim(b.email.upper())
    assert not factory.claim(b.phone[1])
    assert factory.claim("nobody.has.this@example.com")
    assert not factory.claim("nobody.has.this@example.com")


def test_a_buyer_drawing_a_claimed_typo_draws_again_off_the_main_generator() -> None:
    params = SimulationParams()
    twins = [BuyerFactory(random.Random(9), params, "CIFW-2026-AW") for _ in range(2)]
    mains = [f.rng for f in twins]
    assert twins[0].claim("Lin.Fang@example.cn")

    def draw(f: BuyerFactory, main: random.Random) -> str:
        f.rng.random()
        return "lin.fang@example.cn" if f.rng is main else "fang.lin@example.cn"

    values = [f._unique(lambda f=f, m=m: draw(f, m))  # noqa: SLF001 - the rule itself
              for f, m in zip(twins, mains, strict=True)]
    assert values == ["fang.lin@example.cn", "lin.fang@example.cn"]
    assert twins[0].rng is mains[0]
    # the simulation's generator drew once in both: the rest of the day is the same
    assert mains[0].getstate() == mains[1].getstate()

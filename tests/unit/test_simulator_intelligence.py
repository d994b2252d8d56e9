"""The simulator's lead-intelligence signals: hidden best suppliers, the surge, the funnel and
professional-buyer truth, the previous season. Every expectation is recomputed here from the
messages themselves, not taken from the simulator's tallies."""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest

import leadloom.commands.simulate as simulate_cmd
from core.settings import Settings
from producers.simulator import (
    Simulation,
    SimulationParams,
    Surge,
    parse_surge,
    previous_season_counts,
    simulate_fair,
    write_season_csv,
)
from producers.simulator.lexicon import PER_CNY
from schemas.events import FUNNEL_STAGES, PROFESSIONAL_BUYER_TYPES
from schemas.reference import CLUSTERS, CLUSTERS_BY_ID, booths_by_exhibitor, booths_by_id

N = 4000
SEED = 23
SHANGHAI = ZoneInfo("Asia/Shanghai")
RATES_CSV = Path(__file__).resolve().parents[2] / "infra/clickhouse/rates/cny_rates.csv"


@pytest.fixture(scope="module")
def sim() -> Simulation:
    """Many inquiries (half the buyers write in), so every inquiry mode is well represented."""
    return simulate_fair(N, SEED, params=SimulationParams(inquiry_rate=0.5))


@pytest.fixture(scope="module")
def surged() -> Simulation:
    return simulate_fair(6000, SEED, surge=Surge("heze", "14:30"))


def docs_of(sim: Simulation) -> list[dict]:
    return [orjson.loads(m.value) for m in sim.messages if m.kind == "valid"]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# -- hidden best suppliers ------------------------------------------------------------------

def latest_profiles(docs: list[dict]) -> dict[str, dict]:
    latest: dict[str, tuple[str, str, dict]] = {}
    for d in docs:
        if d["event_type"] == "supplier_profile":
            p = d["payload"]
            version = (d["occurred_at"], d["event_id"], p)
            if p["exhibitor_id"] not in latest or latest[p["exhibitor_id"]][:2] < version[:2]:
                latest[p["exhibitor_id"]] = version
    return {ex: v[2] for ex, v in latest.items()}


def fits(profile: dict, inquiry: dict) -> bool:
    qty, lead = inquiry.get("quantity"), inquiry.get("lead_time_days")
    window = 30 if lead is None else lead  # capacity counts until the buyer's deadline
    return (bool(set(profile["categories"]) & set(inquiry["categories"]))
            and (qty is None or (profile["moq"] <= qty
                                 and profile["monthly_capacity"] * window >= qty * 30))
            and (lead is None or profile["lead_time_days"] <= lead))


def spare(profile: dict, inquiry: dict) -> int:
    """Whole multiples of the quantity the factory makes in the window, at most 4."""
    qty, lead = inquiry.get("quantity"), inquiry.get("lead_time_days")
    if not qty:
        return 4
    window = 30 if lead is None else lead
    return min(4, profile["monthly_capacity"] * window // (qty * 30))


def test_best_suppliers_fit_and_rank_as_specified(sim: Simulation) -> None:
    docs = docs_of(sim)
    profiles = latest_profiles(docs)
    best = sim.ground_truth["best_suppliers"]
    inquiries = {d["event_id"]: d["payload"] for d in docs if d["event_type"] == "online_inquiry"}
    assert set(best) <= set(inquiries)
    assert len(best) > 0.5 * len(inquiries)  # most needs have a supplier at the fair
    for event_id, inquiry in inquiries.items():
        target = inquiry.get("cluster_id") or booths_by_exhibitor()[
            inquiry["exhibitor_id"]].cluster_id
        fitting = sorted((p for p in profiles.values() if fits(p, inquiry)),
                         key=lambda p: (p["exhibitor_id"] != inquiry.get("exhibitor_id"),
                                        p["cluster_id"] != target,
                                        -len(set(p["categories"]) & set(inquiry["categories"])),
                                        -spare(p, inquiry), p["lead_time_days"],
                                        p["exhibitor_id"]))
        expected = [p["exhibitor_id"] for p in fitting[:3]]
        assert best.get(event_id, []) == expected, event_id
        for ex in best.get(event_id, []):
            assert fits(profiles[ex], inquiry)


def test_cluster_mode_follow_ups_are_the_best_fit(sim: Simulation) -> None:
    docs = docs_of(sim)
    gt = sim.ground_truth
    best, owner = gt["best_suppliers"], gt["buyer_of_record"]
    # who followed up each buyer's inquiry: the matchmaking gateway's procurement steps
    followed: dict[str, set[str]] = defaultdict(set)
    for d in docs:
        if d["event_type"] == "procurement_step" and d["source"].get("device_id") == "matchmaking":
            followed[owner[d["event_id"]]].add(d["payload"]["exhibitor_id"])
    checked = Counter()
    for d in docs:
        if d["event_type"] != "online_inquiry":
            continue
        p, buyer = d["payload"], owner[d["event_id"]]
        if buyer not in followed:
            continue
        if "exhibitor_id" in p:
            assert followed[buyer] == {p["exhibitor_id"]}
            checked["named"] += 1
        elif d["event_id"] in best:
            assert followed[buyer] == {best[d["event_id"]][0]}
            checked["cluster"] += 1
    assert checked["named"] >= 10 and checked["cluster"] >= 10, checked


# -- the surge ------------------------------------------------------------------------------

def test_surge_dominates_its_window_and_keeps_the_event_count(surged: Simulation) -> None:
    gt = surged.ground_truth
    assert gt["expected_valid_events"] == sum(m.kind == "valid" for m in surged.messages) == 6000
    start = datetime(2026, 3, 26, 14, 30, tzinfo=SHANGHAI)
    assert gt["surge"] == {"cluster_id": "heze", "start": "2026-03-26T06:30:00.000Z",
                           "end": "2026-03-26T06:45:00.000Z"}
    assert at(gt["surge"]["start"]) == start
    inside, outside = Counter(), Counter()
    per_window: dict[int, Counter] = defaultdict(Counter)  # 5-minute windows of the burst
    for d in docs_of(surged):
        if d["event_type"] == "booth_scan":
            cluster = booths_by_id()[d["payload"]["booth_id"]].cluster_id
            t = at(d["occurred_at"])
            if start <= t < at(gt["surge"]["end"]):
                inside[cluster == "heze"] += 1
                per_window[int((t - start).total_seconds() // 300)][cluster] += 1
            else:
                outside[cluster == "heze"] += 1
    share_in = inside[True] / sum(inside.values())
    share_out = outside[True] / sum(outside.values())
    assert share_in > 0.35 and share_in > 8 * share_out, (share_in, share_out)
    assert sorted(per_window) == [0, 1, 2]
    for counts in per_window.values():
        (top, n), (_, runner_up) = counts.most_common(2)
        assert top == "heze" and n > 3 * runner_up, counts
    # the burst is about 4% of the run, mostly scans
    assert inside[True] > 0.5 * 0.04 * 6000


def test_surge_minimum_size_and_no_surge_truth() -> None:
    small = simulate_fair(1000, 3, surge=Surge("keqiao", "10:00"))
    assert sum(m.kind == "valid" for m in small.messages) == 1000
    start, end = (at(small.ground_truth["surge"][k]) for k in ("start", "end"))
    in_burst = sum(1 for d in docs_of(small) if d["event_type"] == "booth_scan"
                   and booths_by_id()[d["payload"]["booth_id"]].cluster_id == "keqiao"
                   and start <= at(d["occurred_at"]) < end)
    assert in_burst >= 80  # at least 150 surge events, most of them scans
    assert simulate_fair(1000, 3).ground_truth["surge"] is None


@pytest.mark.parametrize("text", [
    "keqiao", "keqiao@", "keqiao@1430", "nowhere@14:30", "KEQIAO@14:30", "keqiao@24:00",
    "keqiao@14:60", "keqiao@07:15", "keqiao@17:50", "@14:30",
])
def test_parse_surge_refuses_with_one_line(text: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_surge(text)
    assert "\n" not in str(err.value) and str(err.value)


def test_parse_surge_reads_local_time() -> None:
    assert parse_surge("heze@9:30") == Surge("heze", "09:30")
    assert parse_surge(" jinjiang @ 17:45 ") == Surge("jinjiang", "17:45")  # ends at closing
    with pytest.raises(ValueError):
        simulate_fair(100, 1, surge=Surge("nowhere", "10:00"))


# -- funnel and professional-buyer truth ----------------------------------------------------

def test_funnel_truth_recomputed_from_the_messages(sim: Simulation) -> None:
    owner = sim.ground_truth["buyer_of_record"]
    events: Counter = Counter()
    buyers: dict[tuple[str, str], set] = defaultdict(set)
    pairs: dict[tuple[str, str], set] = defaultdict(set)
    values: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for d in docs_of(sim):
        p, kind = d["payload"], d["event_type"]
        if kind == "booth_scan":
            booth = booths_by_id()[p["booth_id"]]
            cell, exhibitor, value = (booth.cluster_id, "scan"), booth.exhibitor_id, None
        elif kind == "online_inquiry":
            cluster = p.get("cluster_id") or booths_by_exhibitor()[p["exhibitor_id"]].cluster_id
            cell, exhibitor, value = (cluster, "inquiry"), p.get("exhibitor_id"), p.get("budget")
        elif kind == "procurement_step":
            cluster = booths_by_exhibitor()[p["exhibitor_id"]].cluster_id
            cell, exhibitor, value = (cluster, p["step"]), p["exhibitor_id"], p.get("value")
        else:
            continue
        buyer = owner[d["event_id"]]
        events[cell] += 1
        buyers[cell].add(buyer)
        if exhibitor is not None:
            pairs[cell].add((buyer, exhibitor))
        if value is not None:
            values[cell][p.get("currency", "CNY")] += Decimal(value)
    expected = {
        c.id: {s: {"events": events[c.id, s], "buyers": len(buyers[c.id, s]),
                   "pairs": len(pairs[c.id, s]),
                   "value_by_currency": {cur: str(v) for cur, v in
                                         sorted(values[c.id, s].items())}}
               for s in FUNNEL_STAGES}
        for c in CLUSTERS
    }
    assert sim.ground_truth["funnel_by_cluster"] == expected
    assert sum(events[c, "purchase_order"] for c in CLUSTERS_BY_ID) > 0


def professional_from_messages(sim: Simulation) -> dict[str, int]:
    owner = sim.ground_truth["buyer_of_record"]
    docs = docs_of(sim)
    kind = {owner[d["event_id"]]: d["payload"]["buyer_type"] for d in docs
            if d["event_type"] == "buyer_registration"}
    seen: dict[str, set] = defaultdict(set)
    for d in docs:
        if d["event_type"] == "booth_scan":
            buyer = owner[d["event_id"]]
            if kind[buyer] in PROFESSIONAL_BUYER_TYPES:
                booth = booths_by_id()[d["payload"]["booth_id"]]
                seen[f"{booth.pavilion_id}|{booth.cluster_id}"].add(buyer)
    return {k: len(v) for k, v in seen.items()}


def test_professional_buyers_recomputed(sim: Simulation) -> None:
    assert sim.ground_truth["professional_buyers"] == professional_from_messages(sim)


def test_truth_is_deterministic_json(sim: Simulation) -> None:
    again = simulate_fair(N, SEED, params=SimulationParams(inquiry_rate=0.5))
    assert orjson.dumps(again.ground_truth) == orjson.dumps(sim.ground_truth)


# -- previous season ------------------------------------------------------------------------

def test_previous_season_is_smaller_and_deterministic(tmp_path: Path) -> None:
    rows = previous_season_counts(N, SEED)
    assert rows == previous_season_counts(N, SEED)
    assert rows != previous_season_counts(N, SEED + 1)
    current = simulate_fair(N, SEED).ground_truth["professional_buyers"]
    before = sum(r["professional_buyers"] for r in rows)
    assert 0.55 * sum(current.values()) < before < 0.9 * sum(current.values())
    for r in rows:
        assert CLUSTERS_BY_ID[r["cluster_id"]].pavilion_id == r["pavilion_id"]
    path = write_season_csv(rows, tmp_path / "seasons" / "prev.csv", "CIFW-2025-AW")
    text = path.read_text(encoding="utf-8")
    assert text.splitlines()[0] == "season,pavilion_id,cluster_id,professional_buyers"
    back = list(csv.DictReader(text.splitlines()))
    assert [(b["season"], b["pavilion_id"], b["cluster_id"], int(b["professional_buyers"]))
            for b in back] == [("CIFW-2025-AW", r["pavilion_id"], r["cluster_id"],
                                r["professional_buyers"]) for r in rows]


# -- money ----------------------------------------------------------------------------------

def test_per_cny_is_the_inverse_of_the_shipped_rates() -> None:
    shipped = {r["currency"]: float(r["cny_per_unit"])
               for r in csv.DictReader(RATES_CSV.read_text().splitlines())}
    assert set(PER_CNY) <= set(shipped)
    for currency, per_cny in PER_CNY.items():
        assert per_cny * shipped[currency] == pytest.approx(1.0, rel=1e-12), currency


# -- the command ----------------------------------------------------------------------------

def test_simulate_command_refuses_a_bad_surge_before_publishing(monkeypatch, tmp_path) -> None:
    def boom(*_a, **_k):
        raise AssertionError("nothing may be simulated or published")

    for name in ("simulate_fair", "publish", "ensure_topics"):
        monkeypatch.setattr(simulate_cmd, name, boom)
    with pytest.raises(ValueError, match="unknown"):
        simulate_cmd.simulate_and_publish(Settings(namespace="simtest"), 100, 1,
                                          surge="nowhere@10:00", truth_path=tmp_path / "t.json")


def test_simulate_command_writes_the_previous_season(monkeypatch, tmp_path) -> None:
    class Report:
        sent, elapsed_s, kafka_messages = 0, 0.0, 0

    sent: list = []
    monkeypatch.setattr(simulate_cmd, "ensure_topics", lambda settings: [])
    monkeypatch.setattr(simulate_cmd, "publish",
                        lambda messages, settings, **kw: sent.append(messages) or Report())
    report = simulate_cmd.simulate_and_publish(
        Settings(namespace="simtest"), 600, 4, truth_path=tmp_path / "t.json",
        surge="heze@11:00", previous_season_csv=tmp_path / "prev.csv")
    assert report["previous_season_csv"] == str(tmp_path / "prev.csv")
    lines = (tmp_path / "prev.csv").read_text().splitlines()
    assert lines[0] == "season,pavilion_id,cluster_id,professional_buyers" and len(lines) > 1
    truth = orjson.loads((tmp_path / "t.json").read_bytes())
    assert truth["surge"]["cluster_id"] == "heze"
    assert {"events_produced", "duplicates_resent", "malformed_sent", "late_events",
            "expected_valid_events", "ground_truth", "publish_s", "kafka_messages"} <= set(report)
    assert len(sent) == 1


def test_surge_window_is_utc_of_the_local_start() -> None:
    truth = simulate_fair(300, 2, surge=parse_surge("keqiao@09:30")).ground_truth
    assert at(truth["surge"]["start"]) == datetime(2026, 3, 26, 1, 30, tzinfo=UTC)

"""The demo's lead intelligence: funnel, momentum leaders, matchmaking, season, checked
against the simulator's ground truth.

Checks (each failure is one line of ``mismatches``):
* funnel per cluster and stage: events, resolved buyers and buyer-exhibitor pairs equal the
  truth's; the CNY value equals the truth's amounts at the store's rates within the fen
  rounding of each event's conversion (half a fen per event);
* professional buyers per pavilion and cluster equal the truth's;
* with ``--surge``: the surge cluster ranks first in the 5-minute window of the surge's
  start or the next one, and a surge alert names it.
Match precision@3 against the simulator's hidden best suppliers is reported, not enforced
(ARCHITECTURE.md, "Lead intelligence").
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from core import queries as q

Run = Callable[..., Any]
WINDOW = timedelta(minutes=5)


def intelligence_report(run: Run, truth: dict) -> dict:
    """The demo's keys ``funnel``, ``momentum_leaders``, ``matchmaking``, ``season``,
    ``surge`` (null without one) and the expected values they are checked against."""
    matched = run(q.MATCHED_SUPPLIERS)
    kpis = run(q.MATCHMAKING)
    report = {
        "funnel": run(q.FUNNEL),
        "momentum_leaders": run(q.MOMENTUM_LEADERS),
        "matchmaking": {**kpis, "inquiries_matched": len(matched),
                        **_precision(matched, truth.get("best_suppliers", {}))},
        "season": _season(run(q.SEASON)),
        "surge": _surge(run, truth.get("surge")),
        "surge_alerts": run(q.SURGE_ALERTS),
        "cny_rates": run(q.CNY_RATES),
    }
    return report


def _precision(matched: dict[str, list[str]], best: dict[str, list[str]]) -> dict:
    """Precision@3: the share of recommended suppliers that are among the hidden best 3,
    averaged over the inquiries that have a fitting supplier."""
    shares = []
    for inquiry, hidden in best.items():
        ours = matched.get(inquiry, [])[:3]
        shares.append(len(set(ours) & set(hidden)) / len(ours) if ours else 0.0)
    return {"precision_at_3": round(sum(shares) / len(shares), 4) if shares else None,
            "inquiries_with_hidden_best": len(shares)}


def _season(rows: list[dict]) -> dict:
    now = sum(r["professional_buyers"] for r in rows)
    before = sum(r["previous_professional_buyers"] or 0 for r in rows)
    previous = next((r["previous_season"] for r in rows if r["previous_season"]), None)
    return {
        "previous_season": previous, "professional_buyers": now,
        "previous_professional_buyers": before,
        "change_pct": round(100 * (now - before) / before, 1) if before else None,
        "by_cluster": {f"{r['pavilion_id']}|{r['cluster_id']}": {
            "now": r["professional_buyers"], "previous": r["previous_professional_buyers"],
            "change_pct": r["change_pct"]} for r in rows},
    }


def _surge(run: Run, surge: dict | None) -> dict | None:
    if not surge:
        return None
    start = datetime.fromisoformat(surge["start"].replace("Z", "+00:00"))
    windows = []
    for at in (start, start + WINDOW):
        ranking = run(q.MOMENTUM_RANKING_AT, at=at)
        rank = next((r["rank"] for r in ranking if r["cluster_id"] == surge["cluster_id"]),
                    None)
        leader = ranking[0]["cluster_id"] if ranking else None
        windows.append({"window_start": ranking[0]["window_start"].isoformat()
                        if ranking else None, "rank": rank, "leader": leader})
    return {"cluster_id": surge["cluster_id"], "start": surge["start"], "windows": windows,
            "ranked_first": any(w["rank"] == 1 for w in windows)}


def mismatches(report: dict, truth: dict) -> list[str]:
    problems = []
    rates: dict[str, Decimal] = report["cny_rates"]
    for cluster, stages in truth.get("funnel_by_cluster", {}).items():
        got = {s["stage"]: s for s in report["funnel"].get(cluster, [])}
        for stage, want in stages.items():
            have = got.get(stage, {"events": 0, "buyers": 0, "pairs": 0,
                                   "value_cny": Decimal(0)})
            for key in ("events", "buyers", "pairs"):
                if have[key] != want[key]:
                    problems.append(f"funnel {cluster}.{stage}.{key} {have[key]} != {want[key]}")
            expected = sum((Decimal(v) * rates[c] for c, v in want["value_by_currency"].items()),
                           Decimal(0))
            if abs(have["value_cny"] - expected) > Decimal("0.005") * want["events"] + Decimal(
                    "0.01"):
                problems.append(f"funnel {cluster}.{stage}.value_cny {have['value_cny']} !="
                                f" {expected:.2f}")
    season = report["season"]["by_cluster"]
    for place, n in truth.get("professional_buyers", {}).items():
        have = season.get(place, {}).get("now", 0)
        if have != n:
            problems.append(f"professional buyers {place} {have} != {n}")
    surge = report["surge"]
    if surge is not None:
        if not surge["ranked_first"]:
            problems.append(f"surge cluster {surge['cluster_id']} not ranked first within one"
                            f" 5-minute window of {surge['start']}: {surge['windows']}")
        if surge["cluster_id"] not in {a["cluster_id"] for a in report["surge_alerts"]}:
            problems.append(f"no surge alert for {surge['cluster_id']}")
    return problems


def print_summary(report: dict, name_of: Callable[[str], str]) -> None:
    print("\nProcurement funnel per cluster (buyer-exhibitor pairs; inquiries: buyers; the"
          " steps' share of scanned pairs):")
    stages = ("scan", "inquiry", "sample_request", "quote_request", "cooperation_intent",
              "purchase_order")
    print(f"  {'cluster':<12}" + "".join(f"{s[:12]:>14}" for s in stages) + f"{'orders CNY':>16}")
    for cluster, rows in sorted(report["funnel"].items()):
        by = {r["stage"]: r for r in rows}
        cells = []
        for s in stages:
            r = by.get(s)
            count = 0 if r is None else (r["buyers"] if s == "inquiry" else r["pairs"])
            scanned = by["scan"]["pairs"] if "scan" in by else 0
            share = (f" {100 * count / scanned:.1f}%" if scanned and s not in ("scan", "inquiry")
                     else "")
            cells.append(f"{count}{share}")
        value = by.get("purchase_order", {}).get("value_cny", 0)
        print(f"  {cluster:<12}" + "".join(f"{c:>14}" for c in cells) + f"{value:>16,.0f}")
    print("\nMomentum leaders (latest complete 5-minute window):")
    for r in report["momentum_leaders"]:
        print(f"  {r['rank']}. {r['cluster_id']:<12}{name_of(r['cluster_id']):<8}"
              f" score {r['momentum_score']:.1f} ({r['events']} events, {r['expected']:.1f}"
              f" expected) at {r['window_start']:%H:%M} UTC")
    for a in report["surge_alerts"]:
        print(f"  surge alert: {a['cluster_id']} from {a['surge_start']:%H:%M} UTC,"
              f" {a['events']} events vs {a['expected']:.1f} expected")
    m = report["matchmaking"]
    print(f"\nMatchmaking: {m['inquiries_matched']} inquiries matched, precision@3"
          f" {m['precision_at_3']} against the hidden best suppliers")
    for kind in ("match", "no_match"):
        k = m.get(kind)
        if k:
            print(f"  {kind:<9} {k['pairs']:>7} pairs  visit {_pct(k['visit_rate'])}"
                  f"  sample {_pct(k['sample_rate'])}  intent {_pct(k['intent_rate'])}"
                  f"  order {_pct(k['order_rate'])}  orders CNY {k['order_value_cny']:,.0f}")
    s = report["season"]
    print(f"\nProfessional buyers: {s['professional_buyers']} vs"
          f" {s['previous_professional_buyers']} in {s['previous_season']}"
          f" ({s['change_pct']}%)")


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{100 * rate:.1f}%"

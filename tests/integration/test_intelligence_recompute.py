"""Every lead intelligence view, recomputed independently and compared row by row.

The views (migration 011) read the raw tables through ``buyer_events_resolved``. Here the
facts are read with plain SQL from the raw tables FINAL and the buyer mapping itself
(``buyer_events`` FINAL + the newest ``buyer_aliases`` row of each alias, by version), never
through a view of migration 011 nor ``buyer_events_resolved``; values in CNY through
``core.rates.to_cny_sql`` (the contract the views inline). Everything else (grouping,
funnels, windows, baselines, ranking, match credit, medians, the season) is worked out in
Python from those facts, and lead scores with ``streams.intelligence.scores.score``.

The fair: a simulated day built by the project's own row builders (identity engine with
its merges, matchmaking stream), one more merge made by hand between two buyers who both
engaged one exhibitor (so a merge changes a lead, a funnel and a season count), a few
hand-made matches whose buyer went on to visit, sample and sign, and two imported seasons
plus a row labelled with the fair itself (never a "previous" season).
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from core import queries as q
from core.rates import to_cny_sql
from core.season import SeasonRow, load_season
from core.settings import Settings
from core.snapshots import SNAPSHOT_VIEWS
from core.store import Store
from schemas.events import FUNNEL_STAGES, PROFESSIONAL_BUYER_TYPES
from schemas.reference import booths_by_exhibitor
from schemas.registry import (
    BUYER_ALIASES,
    BUYER_EVENTS_TABLE,
    FUNNEL_BY_CATEGORY,
    FUNNEL_BY_CLUSTER,
    FUNNEL_BY_EXHIBITOR,
    INQUIRIES,
    INTELLIGENCE_VIEWS,
    LEAD_SCORES_CLUSTER,
    LEAD_SCORES_EXHIBITOR,
    MATCH_OUTCOMES,
    MATCHES_TABLE,
    MATCHMAKING_KPIS,
    MOMENTUM_CATEGORY_5M,
    MOMENTUM_CATEGORY_HOUR,
    MOMENTUM_CLUSTER_5M,
    MOMENTUM_CLUSTER_HOUR,
    MOMENTUM_RANKING,
    PROCUREMENT_STEPS,
    REGISTRATIONS,
    SCANS,
    SEASON_BASELINE,
    SEASON_COMPARISON,
    SUPPLIER_PROFILES,
    TableSpec,
)
from streams.intelligence.scores import FAIR_TZ, LeadSignals, score
from tests.factories.rows import DayRows, fair_day_rows
from tests.factories.stores import open_store

pytestmark = pytest.mark.integration

EVENTS, SEED = 24_000, 5
TOL = 1e-9
ZERO = Decimal("0.00")


# -- the store: the day's rows, a hand-made merge, hand-made matches, seasons -------------
@dataclass
class Fair:
    store: Store
    day: DayRows
    merged: tuple[str, str, str]  # survivor, absorbed, the exhibitor both engaged
    facts: Facts = field(init=False)


@pytest.fixture(scope="module")
def fair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fair]:
    day = fair_day_rows(EVENTS, seed=SEED, namespace="recompute")
    store = open_store(Settings(data_dir=tmp_path_factory.mktemp("recompute"),
                                namespace="recompute"))
    db = store.database
    try:
        for table, rows in day.rows.items():
            store.insert_json_rows(table, rows)
        _surge(store, day)
        merged = _merge_two_buyers(store, db)
        _hand_made_matches(store, db)
        _seasons(store, db, day.sim.ground_truth["fair_id"])
        store.refresh_snapshots()  # the views are read from their snapshots
        result = Fair(store, day, merged)
        result.facts = read_facts(store, db)
        yield result
    finally:
        store.close()


def _mapping_sql(db: str) -> str:
    """event_id -> its buyer now: the newest alias row's buyer, else the event's own."""
    return (
        f"SELECT e.event_id AS event_id, if(a.buyer = '', e.buyer_id, a.buyer) AS buyer"
        f" FROM (SELECT event_id, fair_id, alias, buyer_id FROM {db}.{BUYER_EVENTS_TABLE.name}"
        f" FINAL) AS e LEFT JOIN (SELECT fair_id, alias, argMax(buyer_id, version) AS buyer"
        f" FROM {db}.{BUYER_ALIASES.name} GROUP BY fair_id, alias) AS a"
        f" ON a.fair_id = e.fair_id AND a.alias = e.alias"
    )


def _merge_two_buyers(store: Store, db: str) -> tuple[str, str, str]:
    """Merge two current buyers who both scanned one exhibitor: every alias of the absorbed
    buyer gets a newer row naming the survivor."""
    rows = store.query(
        f"SELECT s.exhibitor_id, groupUniqArray(m.buyer) AS buyers"
        f" FROM {db}.{SCANS.name} AS s FINAL INNER JOIN ({_mapping_sql(db)}) AS m"
        f" ON m.event_id = s.event_id GROUP BY s.exhibitor_id"
        f" HAVING length(buyers) >= 2 ORDER BY s.exhibitor_id LIMIT 1").rows
    exhibitor, buyers = rows[0][0], sorted(rows[0][1])
    survivor, absorbed = buyers[0], buyers[1]
    aliases = store.query(
        f"SELECT fair_id, alias FROM {db}.{BUYER_ALIASES.name} GROUP BY fair_id, alias"
        f" HAVING argMax(buyer_id, version) = '{absorbed}'").rows
    top = store.query(f"SELECT max(version) FROM {db}.{BUYER_ALIASES.name}").rows[0][0]
    store.insert_json_rows(BUYER_ALIASES.name, [orjson.dumps(
        {"fair_id": f, "alias": a, "buyer_id": survivor, "version": top + 1,
         "updated_at": "2026-03-26T12:00:00.000+00:00"}) for f, a in aliases])
    return survivor, absorbed, exhibitor


SURGE_CLUSTER, SURGE_AT, SURGE_SCANS = "heze", datetime(2026, 3, 26, 6, 0, tzinfo=UTC), 45


def _surge(store: Store, day: DayRows) -> None:
    """A burst at one small cluster: ``SURGE_SCANS`` scans by new buyers in each of three
    5-minute windows from ``SURGE_AT`` (copies of one of its scans, new ids and times)."""
    scan = next(r for r in day.decoded(SCANS.name) if r["cluster_id"] == SURGE_CLUSTER)
    event = next(r for r in day.decoded(BUYER_EVENTS_TABLE.name)
                 if r["event_id"] == scan["event_id"])
    scans, events = [], []
    for n in range(3 * SURGE_SCANS):
        at = (SURGE_AT + timedelta(seconds=n * 300 // SURGE_SCANS)).isoformat()
        event_id, buyer = f"surge-{n:04d}", f"surge-buyer-{n % 60}"
        scans.append({**scan, "event_id": event_id, "occurred_at": at, "received_at": at,
                      "badge_id": buyer})
        events.append({**event, "event_id": event_id, "occurred_at": at, "alias": buyer,
                       "buyer_id": f"buyer:{buyer}"})
    store.insert_json_rows(SCANS.name, [orjson.dumps(r) for r in scans])
    store.insert_json_rows(BUYER_EVENTS_TABLE.name, [orjson.dumps(r) for r in events])


def _hand_made_matches(store: Store, db: str) -> None:
    """Matches to suppliers the inquiry's buyer engaged after writing in (their steps), at
    free ranks 7-9, and one for an inquiry nobody resolved (left out of the outcomes)."""
    rows = store.query(
        f"SELECT i.event_id, i.fair_id, toString(i.occurred_at), p.exhibitor_id, p.cluster_id"
        f" FROM {db}.{INQUIRIES.name} AS i FINAL"
        f" INNER JOIN ({_mapping_sql(db)}) AS mi ON mi.event_id = i.event_id"
        f" INNER JOIN ({_mapping_sql(db)}) AS mb ON mb.buyer = mi.buyer"
        f" INNER JOIN {db}.{PROCUREMENT_STEPS.name} AS p FINAL ON p.event_id = mb.event_id"
        f" WHERE p.occurred_at >= i.occurred_at"
        f" ORDER BY i.event_id, p.exhibitor_id LIMIT 1 BY i.event_id LIMIT 3").rows
    assert len(rows) == 3, "the day has too few inquiries followed by procurement"
    made = [{"inquiry_event_id": event_id, "rank": 7 + n, "fair_id": fair_id,
             "matched_at": at, "exhibitor_id": exhibitor, "cluster_id": cluster, "score": 0.5,
             "explanation": "{}", "profile_event_id": "", "made_at": at}
            for n, (event_id, fair_id, at, exhibitor, cluster) in enumerate(rows)]
    made.append({**made[0], "inquiry_event_id": "no-such-inquiry", "rank": 1})
    store.insert_json_rows(MATCHES_TABLE.name, [orjson.dumps(m) for m in made])


def _seasons(store: Store, db: str, fair_id: str) -> None:
    """Two earlier seasons (the later-loaded one is "previous") and a row named like the
    fair itself, loaded last, which must never count as a previous season."""
    older = [SeasonRow("CIFW-2024-AW", "gba-fashion-belt", "humen", 999)]
    previous = [SeasonRow("CIFW-2025-AW", "gba-fashion-belt", "humen", 40),
                SeasonRow("CIFW-2025-AW", "yangtze-textiles", "keqiao", 0),
                SeasonRow("CIFW-2025-AW", "gba-fashion-belt", "foshan", 7)]
    for rows in (older, previous, [SeasonRow(fair_id, "gba-fashion-belt", "humen", 5)]):
        load_season(store, db, rows, source="recompute")


# -- the facts, read with plain SQL from the raw tables FINAL and the mapping -------------
@dataclass
class Facts:
    scans: list[dict[str, Any]]
    inquiries: list[dict[str, Any]]
    steps: list[dict[str, Any]]
    registrations: list[dict[str, Any]]
    profiles: list[dict[str, Any]]
    matches: list[dict[str, Any]]
    seasons: list[dict[str, Any]]
    fair_now: dict[str, datetime]  # latest scan/inquiry/step time of each fair


def _dicts(store: Store, sql: str) -> list[dict[str, Any]]:
    result = store.query(sql)
    return [{c: _utc(v) for c, v in zip(result.columns, row, strict=True)}
            for row in result.rows]


def _utc(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def read_facts(store: Store, db: str) -> Facts:
    mapping = _mapping_sql(db)

    def with_buyer(table: TableSpec, columns: str) -> list[dict[str, Any]]:
        return _dicts(store, f"SELECT {columns}, m.buyer AS buyer"
                             f" FROM {db}.{table.name} AS t FINAL"
                             f" INNER JOIN ({mapping}) AS m ON m.event_id = t.event_id")

    common = "t.event_id AS event_id, t.fair_id AS fair_id, t.occurred_at AS occurred_at"
    budget = to_cny_sql("t.budget", "t.currency", "t.occurred_at", db)
    value = to_cny_sql("t.value", "t.currency", "t.occurred_at", db)
    facts = Facts(
        scans=with_buyer(SCANS, f"{common}, t.cluster_id AS cluster_id, t.exhibitor_id AS"
                                " exhibitor_id, t.pavilion_id AS pavilion_id, t.rating AS rating"),
        inquiries=with_buyer(INQUIRIES, f"{common}, t.cluster_id AS cluster_id,"
                                        " t.exhibitor_id AS exhibitor_id, t.categories AS"
                                        " categories, t.quantity AS quantity, t.lead_time_days"
                                        f" AS lead_time_days, {budget} AS value"),
        steps=with_buyer(PROCUREMENT_STEPS, f"{common}, t.step AS step, t.cluster_id AS"
                                            " cluster_id, t.exhibitor_id AS exhibitor_id,"
                                            f" t.category AS category, {value} AS value"),
        registrations=with_buyer(REGISTRATIONS, f"{common}, t.buyer_type AS buyer_type"),
        profiles=_dicts(store, f"SELECT fair_id, exhibitor_id, occurred_at, categories"
                               f" FROM {db}.{SUPPLIER_PROFILES.name} FINAL"),
        matches=_dicts(store, f"SELECT inquiry_event_id, rank, fair_id, matched_at,"
                              f" exhibitor_id, cluster_id FROM {db}.{MATCHES_TABLE.name} FINAL"),
        seasons=_dicts(store, f"SELECT season, pavilion_id, cluster_id, professional_buyers,"
                              f" loaded_at FROM {db}.{SEASON_BASELINE.name} FINAL"),
        fair_now={},
    )
    # The fair's "now" counts every stored scan, inquiry and step (resolved or not).
    for table in (SCANS, INQUIRIES, PROCUREMENT_STEPS):
        for fair_id, latest in store.query(f"SELECT fair_id, max(occurred_at) FROM"
                                           f" {db}.{table.name} FINAL GROUP BY fair_id").rows:
            latest = _utc(latest)
            facts.fair_now[fair_id] = max(facts.fair_now.get(fair_id, latest), latest)
    return facts


def view_rows(fair: Fair, view: TableSpec) -> list[dict[str, Any]]:
    rows = _dicts(fair.store, f"SELECT * FROM {fair.store.database}.{view.name}")
    assert rows and list(rows[0]) == list(view.columns), f"{view.name}: columns or no rows"
    return rows


def assert_same(view: str, got: dict[tuple, dict[str, Any]],
                want: dict[tuple, dict[str, Any]]) -> None:
    """Same keys, and every column equal (floats to TOL, arrays as sorted lists)."""
    assert sorted(got) == sorted(want), (
        f"{view}: keys only in the view {sorted(set(got) - set(want))[:5]},"
        f" only recomputed {sorted(set(want) - set(got))[:5]}")
    bad = []
    for key, expected in want.items():
        for column, value in expected.items():
            actual = got[key][column]
            if not _equal(actual, value):
                bad.append((key, column, actual, value))
    assert not bad, f"{view}: {len(bad)} differences, e.g. {bad[:5]}"


def _equal(actual: Any, expected: Any) -> bool:
    if isinstance(expected, float) or isinstance(actual, float):
        if actual is None or expected is None:
            return actual is expected
        return math.isclose(float(actual), float(expected), rel_tol=TOL, abs_tol=TOL)
    if isinstance(expected, list):
        return sorted(actual) == sorted(expected)
    if isinstance(expected, Decimal) and actual is not None:
        return Decimal(actual) == expected
    return bool(actual == expected)


def _keyed(rows: list[dict[str, Any]], *key: str) -> dict[tuple, dict[str, Any]]:
    out = {tuple(r[k] for k in key): r for r in rows}
    assert len(out) == len(rows), f"duplicate keys {key}"
    return out


# -- the fixture itself is what the comparisons rely on -----------------------------------
def test_the_fair_has_merges_that_matter_and_every_view_has_rows(fair: Fair) -> None:
    survivor, absorbed, exhibitor = fair.merged
    buyers = {s["buyer"] for s in fair.facts.scans if s["exhibitor_id"] == exhibitor}
    assert survivor in buyers and absorbed not in buyers
    merges = fair.day.decoded("buyer_merges")
    assert merges, "the identity engine merged nobody in this day: pick another seed"
    assert {m["fair_id"] for m in fair.facts.matches} == {fair.day.sim.ground_truth["fair_id"]}
    for view in INTELLIGENCE_VIEWS:
        assert view_rows(fair, view), view.name


# -- 1. lead scores -----------------------------------------------------------------------
def _signals(events: list[tuple[str, dict[str, Any]]]) -> LeadSignals:
    signals: LeadSignals | None = None
    for kind, e in events:
        at = e["occurred_at"]
        if kind == "scan":
            one = LeadSignals(last_activity=at, scans=1,
                              scan_days=frozenset({at.astimezone(FAIR_TZ).date()}),
                              ratings=frozenset({e["rating"]}) if e["rating"] else frozenset())
        elif kind == "inquiry":
            one = LeadSignals(last_activity=at, has_inquiry=True,
                              inquiry_quantity=e["quantity"],
                              inquiry_budget_cny=None if e["value"] is None else float(e["value"]),
                              inquiry_lead_time_days=e["lead_time_days"])
        else:
            one = LeadSignals(last_activity=at, furthest_step=e["step"])
        signals = one if signals is None else signals.combine(one)
    assert signals is not None
    return signals


def _lead_rows(fair: Fair, by: str) -> dict[tuple, dict[str, Any]]:
    f = fair.facts
    grouped: dict[tuple, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for kind, events in (("scan", f.scans), ("inquiry", f.inquiries), ("step", f.steps)):
        for e in events:
            if e[by]:  # an inquiry counts for its exhibitor only if it names one
                grouped[e["fair_id"], e["buyer"], e[by]].append((kind, e))
    out = {}
    for key, pair_events in grouped.items():
        s = _signals(pair_events)
        lead = score(s, now=fair.facts.fair_now[key[0]])
        row: dict[str, Any] = {
            "scans": s.scans, "scan_days": sorted(s.scan_days), "ratings": sorted(s.ratings),
            "has_inquiry": s.has_inquiry, "inquiry_quantity": s.inquiry_quantity,
            "inquiry_budget_cny": s.inquiry_budget_cny,
            "inquiry_lead_time_days": s.inquiry_lead_time_days,
            "furthest_step": s.furthest_step, "last_activity": s.last_activity,
            "score": lead.value, "tier": lead.tier}
        if by == "exhibitor_id":
            row["cluster_id"] = booths_by_exhibitor()[key[2]].cluster_id
        out[key] = row
    return out


def _normalise_lead(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    row["has_inquiry"] = bool(row["has_inquiry"])
    row["furthest_step"] = row["furthest_step"] or None
    row["scan_days"] = [d if isinstance(d, date) else date.fromisoformat(str(d))
                        for d in row["scan_days"]]
    return row


def test_lead_scores_per_exhibitor_and_cluster(fair: Fair) -> None:
    for view, by in ((LEAD_SCORES_EXHIBITOR, "exhibitor_id"), (LEAD_SCORES_CLUSTER,
                                                                "cluster_id")):
        got = {k: _normalise_lead(r) for k, r in
               _keyed(view_rows(fair, view), "fair_id", "buyer_id", by).items()}
        assert_same(view.name, got, _lead_rows(fair, by))
    survivor, absorbed, exhibitor = fair.merged
    fair_id = fair.day.sim.ground_truth["fair_id"]
    pair = _lead_rows(fair, "exhibitor_id")[fair_id, survivor, exhibitor]
    assert pair["scans"] >= 2  # both buyers' scans of the exhibitor now count for one


# -- 2. funnels ---------------------------------------------------------------------------
def _stage_events(fair: Fair) -> Iterator[tuple[str, dict[str, Any]]]:
    for s in fair.facts.scans:
        yield "scan", s
    for i in fair.facts.inquiries:
        yield "inquiry", i
    for p in fair.facts.steps:
        yield p["step"], p


def _funnel(cells: dict[tuple, dict[str, list[dict[str, Any]]]],
            pairs_of: Any) -> dict[tuple, dict[str, Any]]:
    """cells: group -> stage -> events; six rows per group with the conversions."""
    out = {}
    for group, stages in cells.items():
        previous: dict[str, Any] | None = None
        for order, stage in enumerate(FUNNEL_STAGES, start=1):
            events = stages.get(stage, [])
            values = [e["value"] for e in events if stage != "scan" and e["value"] is not None]
            row = {"stage_order": order, "buyers": len({e["buyer"] for e in events}),
                   "pairs": len({(e["buyer"], e["exhibitor_id"]) for e in events
                                 if pairs_of(stage, e)}),
                   "events": len({e["event_id"] for e in events}),
                   "value_cny": sum(values, ZERO)}
            if previous is None:
                row["conversion"] = None
            else:
                measure = "buyers" if stage == "inquiry" else "pairs"
                row["conversion"] = (row[measure] / previous[measure]
                                     if previous[measure] else None)
            out[(*group, stage)] = row
            previous = row
    return out


def _names_exhibitor(_stage: str, e: dict[str, Any]) -> bool:
    return bool(e["exhibitor_id"])


def test_funnels_by_cluster_exhibitor_and_category(fair: Fair) -> None:
    by_cluster: dict[tuple, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    by_exhibitor: dict[tuple, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    by_category: dict[tuple, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    latest_profile: dict[tuple[str, str], dict[str, Any]] = {}
    for p in fair.facts.profiles:
        key = (p["fair_id"], p["exhibitor_id"])
        if key not in latest_profile or p["occurred_at"] > latest_profile[key]["occurred_at"]:
            latest_profile[key] = p
    for stage, e in _stage_events(fair):
        if e["cluster_id"]:
            by_cluster[e["fair_id"], e["cluster_id"]][stage].append(e)
        if e["exhibitor_id"]:
            cluster = booths_by_exhibitor()[e["exhibitor_id"]].cluster_id
            by_exhibitor[e["fair_id"], cluster, e["exhibitor_id"]][stage].append(e)
        if stage == "scan":
            profile = latest_profile.get((e["fair_id"], e["exhibitor_id"]))
            categories = profile["categories"] if profile else []
        elif stage == "inquiry":
            categories = e["categories"]
        else:
            categories = [e["category"]] if e["category"] else []
        for category in set(categories):
            by_category[e["fair_id"], category][stage].append(e)
    for view, cells, group_key in (
            (FUNNEL_BY_CLUSTER, by_cluster, ("fair_id", "cluster_id")),
            (FUNNEL_BY_EXHIBITOR, by_exhibitor, ("fair_id", "cluster_id", "exhibitor_id")),
            (FUNNEL_BY_CATEGORY, by_category, ("fair_id", "category"))):
        got = _keyed(view_rows(fair, view), *group_key, "stage")
        assert_same(view.name, got, _funnel(cells, _names_exhibitor))
        assert all(len([k for k in got if k[:-1] == g]) == 6 for g in cells)


# -- 3. momentum and 4. the ranking -------------------------------------------------------
def _window(at: datetime, minutes: int) -> datetime:
    start = at.replace(second=0, microsecond=0)
    return start.replace(minute=start.minute // minutes * minutes) if minutes < 60 \
        else start.replace(minute=0)


def _momentum(fair: Fair, group_by: str, minutes: int, surges: bool
              ) -> dict[tuple, dict[str, Any]]:
    """Counts per group and window over the fair's gap-free grid, then velocity,
    acceleration, the trailing-share baseline and the score (views.md item 3)."""
    cells: dict[tuple, dict[str, Any]] = defaultdict(
        lambda: {"ids": set(), "scans": set(), "inquiries": set(), "procurement_steps": set(),
                 "value_cny": ZERO})
    kinds = (("scans", fair.facts.scans), ("inquiries", fair.facts.inquiries),
             ("procurement_steps", fair.facts.steps))
    for kind, events in kinds:
        if group_by == "category" and kind == "scans":
            continue  # scans carry no category
        for e in events:
            if group_by == "cluster_id":
                groups = [e["cluster_id"]] if e["cluster_id"] else []
            elif kind == "inquiries":
                groups = sorted(set(e["categories"]))
            else:
                groups = [e["category"]] if e["category"] else []
            for g in groups:
                cell = cells[e["fair_id"], g, _window(e["occurred_at"], minutes)]
                cell["ids"].add(e["event_id"])
                cell[kind].add(e["event_id"])
                if kind != "scans" and e["value"] is not None:
                    cell["value_cny"] += e["value"]
    out: dict[tuple, dict[str, Any]] = {}
    step = timedelta(minutes=minutes)
    for fair_id in {k[0] for k in cells}:
        keys = [k for k in cells if k[0] == fair_id]
        groups = sorted({k[1] for k in keys})
        first, last = min(k[2] for k in keys), max(k[2] for k in keys)
        grid = [first + n * step for n in range(int((last - first) / step) + 1)]
        counts = {(g, w): len(cells[fair_id, g, w]["ids"]) if (fair_id, g, w) in cells else 0
                  for g in groups for w in grid}
        fair_events = [sum(counts[g, w] for g in groups) for w in grid]
        for g in groups:
            velocity_before, surge_before = 0, False
            for n, w in enumerate(grid):
                now_events = counts[g, w]
                velocity = now_events - (counts[g, grid[n - 1]] if n else 0)
                trailing = range(max(0, n - 12), n)
                share = ((sum(counts[g, grid[t]] for t in trailing) + 1)
                         / (sum(fair_events[t] for t in trailing) + len(groups)))
                expected = share * fair_events[n]
                momentum = (now_events - expected) / math.sqrt(expected + 1)
                found = cells.get((fair_id, g, w))
                here: dict[str, Any] = found if found is not None else {}
                row: dict[str, Any] = {
                    "events": now_events,
                    "scans": len(here["scans"]) if here else 0,
                    "inquiries": len(here["inquiries"]) if here else 0,
                    "procurement_steps": len(here["procurement_steps"]) if here else 0,
                    "value_cny": here["value_cny"] if here else ZERO,
                    "velocity": velocity, "acceleration": velocity - velocity_before,
                    "expected": expected, "momentum_score": momentum}
                if surges:
                    surge = (momentum >= 6 and now_events >= 2 * expected and now_events >= 10)
                    row["surge"], row["surge_start"] = surge, surge and not surge_before
                    surge_before = surge
                velocity_before = velocity
                out[fair_id, g, w] = row
    return out


def _normalise_momentum(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    for flag in ("surge", "surge_start"):
        if flag in row:
            row[flag] = bool(row[flag])
    return row


def test_the_burst_is_a_surge_that_starts_once(fair: Fair) -> None:
    fair_id = fair.day.sim.ground_truth["fair_id"]
    rows = _momentum(fair, "cluster_id", 5, surges=True)
    starts = [k for k, r in rows.items() if r["surge_start"]]
    assert starts == [(fair_id, SURGE_CLUSTER, SURGE_AT)]
    assert rows[fair_id, SURGE_CLUSTER, SURGE_AT + timedelta(minutes=5)]["surge"]


@pytest.mark.parametrize(("view", "group_by", "minutes"), [
    (MOMENTUM_CLUSTER_5M, "cluster_id", 5), (MOMENTUM_CLUSTER_HOUR, "cluster_id", 60),
    (MOMENTUM_CATEGORY_5M, "category", 5), (MOMENTUM_CATEGORY_HOUR, "category", 60),
])
def test_momentum_per_window(fair: Fair, view: TableSpec, group_by: str, minutes: int) -> None:
    got = {k: _normalise_momentum(r) for k, r in _keyed(
        view_rows(fair, view), "fair_id", view.columns[1], "window_start").items()}
    assert_same(view.name, got, _momentum(fair, group_by, minutes,
                                          surges=view is MOMENTUM_CLUSTER_5M))


def test_momentum_ranking_is_the_latest_complete_window(fair: Fair) -> None:
    momentum = _momentum(fair, "cluster_id", 5, surges=True)
    want = {}
    for fair_id, now in fair.facts.fair_now.items():
        window = _window(now, 5) - timedelta(minutes=5)
        ranked = sorted(((r["momentum_score"], c) for (f, c, w), r in momentum.items()
                         if f == fair_id and w == window), key=lambda sc: (-sc[0], sc[1]))
        for rank, (_score, cluster) in enumerate(ranked, start=1):
            r = momentum[fair_id, cluster, window]
            want[fair_id, rank] = {"window_start": window, "cluster_id": cluster,
                                   "momentum_score": r["momentum_score"],
                                   "events": r["events"], "expected": r["expected"]}
    assert_same(MOMENTUM_RANKING.name,
                _keyed(view_rows(fair, MOMENTUM_RANKING), "fair_id", "rank"), want)


# -- 5. match outcomes and 6. KPIs --------------------------------------------------------
def _between(fair: Fair) -> dict[tuple, list[tuple[str, datetime, Decimal | None]]]:
    """(fair, buyer, exhibitor) -> its scans and steps: (kind, time, value)."""
    out: dict[tuple, list[tuple[str, datetime, Decimal | None]]] = defaultdict(list)
    for s in fair.facts.scans:
        out[s["fair_id"], s["buyer"], s["exhibitor_id"]].append(
            ("scan", s["occurred_at"], None))
    for p in fair.facts.steps:
        if p["exhibitor_id"]:
            out[p["fair_id"], p["buyer"], p["exhibitor_id"]].append(
                (p["step"], p["occurred_at"], p["value"]))
    return out


def _outcome(events: list[tuple[str, datetime, Decimal | None]], since: datetime
             ) -> dict[str, Any]:
    after = [e for e in events if e[1] >= since]
    intents = [at for kind, at, _ in after if kind == "cooperation_intent"]
    return {
        "visited": int(any(k == "scan" for k, _, _ in after)),
        "sampled": int(any(k == "sample_request" for k, _, _ in after)),
        "intent": int(bool(intents)), "ordered": int(any(k == "purchase_order"
                                                         for k, _, _ in after)),
        "hours_to_intent": (min(intents) - since).total_seconds() / 3600 if intents else None,
        "order_value_cny": sum((v for k, _, v in after if k == "purchase_order"
                                and v is not None), ZERO),
    }


def test_match_outcomes_credit_what_followed_each_match(fair: Fair) -> None:
    buyer_of = {i["event_id"]: i["buyer"] for i in fair.facts.inquiries}
    between = _between(fair)
    want = {}
    for m in fair.facts.matches:
        buyer = buyer_of.get(m["inquiry_event_id"])
        if buyer is None:
            continue
        want[m["inquiry_event_id"], m["rank"]] = {
            "fair_id": m["fair_id"], "exhibitor_id": m["exhibitor_id"],
            "cluster_id": m["cluster_id"], "buyer_id": buyer, "matched_at": m["matched_at"],
            **_outcome(between[m["fair_id"], buyer, m["exhibitor_id"]], m["matched_at"])}
    assert ("no-such-inquiry", 1) not in want
    assert sum(r["intent"] for r in want.values()) >= 1  # the hand-made matches signed
    assert_same(MATCH_OUTCOMES.name,
                _keyed(view_rows(fair, MATCH_OUTCOMES), "inquiry_event_id", "rank"), want)


def test_matchmaking_kpis_side_by_side(fair: Fair) -> None:
    buyer_of = {i["event_id"]: i["buyer"] for i in fair.facts.inquiries}
    between = _between(fair)
    first_match: dict[tuple, datetime] = {}
    for m in fair.facts.matches:
        if m["inquiry_event_id"] in buyer_of:
            key = (m["fair_id"], buyer_of[m["inquiry_event_id"]], m["exhibitor_id"])
            first_match[key] = min(first_match.get(key, m["matched_at"]), m["matched_at"])
    want = {}
    for fair_id in {k[0] for k in between} | {k[0] for k in first_match}:
        match = [_outcome(between.get(k, []), at) for k, at in first_match.items()
                 if k[0] == fair_id]
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        no_match = [_outcome(events, epoch) for k, events in between.items()
                    if k[0] == fair_id and k not in first_match]
        for introduced_by, outcomes in (("match", match), ("no_match", no_match)):
            pairs = len(outcomes)
            counts = {c: sum(o[c] for o in outcomes)
                      for c in ("visited", "sampled", "intent", "ordered")}
            hours = [o["hours_to_intent"] for o in outcomes if o["hours_to_intent"] is not None]
            want[fair_id, introduced_by] = {
                "pairs": pairs, **counts,
                "visit_rate": counts["visited"] / pairs if pairs else None,
                "sample_rate": counts["sampled"] / pairs if pairs else None,
                "intent_rate": counts["intent"] / pairs if pairs else None,
                "order_rate": counts["ordered"] / pairs if pairs else None,
                "median_hours_to_intent": (statistics.median(hours) if hours
                                           and introduced_by == "match" else None),
                "order_value_cny": sum((o["order_value_cny"] for o in outcomes), ZERO)}
    assert_same(MATCHMAKING_KPIS.name,
                _keyed(view_rows(fair, MATCHMAKING_KPIS), "fair_id", "introduced_by"), want)


# -- 7. season comparison -----------------------------------------------------------------
def test_season_comparison_against_the_latest_other_season(fair: Fair) -> None:
    f = fair.facts
    professional = {(r["fair_id"], r["buyer"]) for r in f.registrations
                    if r["buyer_type"] in PROFESSIONAL_BUYER_TYPES}
    buyers: dict[tuple, set[str]] = defaultdict(set)
    for s in f.scans:
        if (s["fair_id"], s["buyer"]) in professional:
            buyers[s["fair_id"], s["pavilion_id"], s["cluster_id"]].add(s["buyer"])
    want = {}
    for key, ids in buyers.items():
        others = [r for r in f.seasons if r["season"] != key[0]]
        season = max(others, key=lambda r: r["loaded_at"])["season"] if others else None
        previous = next((r["professional_buyers"] for r in others if r["season"] == season
                         and (r["pavilion_id"], r["cluster_id"]) == key[1:]), None)
        want[key] = {"professional_buyers": len(ids), "previous_season": season,
                     "previous_professional_buyers": previous,
                     "change_pct": (100 * (len(ids) - previous) / previous
                                    if previous else None)}
    assert want[fair.day.sim.ground_truth["fair_id"], "gba-fashion-belt", "humen"][
        "previous_professional_buyers"] == 40  # the 2025 season, not 2024 nor the fair's own
    assert_same(SEASON_COMPARISON.name, _keyed(view_rows(fair, SEASON_COMPARISON),
                                               "fair_id", "pavilion_id", "cluster_id"), want)


# -- the view bench at small scale, through the CLI --------------------------------------
def test_the_view_bench_times_every_view_and_named_query(tmp_path: Path) -> None:
    # A process of its own: the embedded engine opens one path per process, and this
    # module's store is open until the module ends.
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADLOOM_")}
    env.update(LEADLOOM_DATA_DIR=str(tmp_path), LEADLOOM_NAMESPACE="benchviews")
    done = subprocess.run([str(Path(sys.executable).with_name("leadloom")), "bench", "--views",
                           "--view-events", "20000", "--json"], env=env, capture_output=True,
                          text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["events"] == 20_000 and result["build_s"] > 0
    names = [v.name for v in INTELLIGENCE_VIEWS]
    for key in ("views_ms", "views_p50_ms", "view_rows"):
        assert list(result[key]) == names, key
    assert all(result["view_rows"][n] > 0 for n in names), result["view_rows"]
    assert all(0 < result["views_ms"][n] <= result["views_p50_ms"][n] for n in names)
    # every snapshot is refreshed: the intelligence views and the delegations' buyers
    refreshed = list(SNAPSHOT_VIEWS)
    assert list(result["refresh_ms"]) == refreshed
    assert all(result["refresh_ms"][n] > 0 for n in refreshed)
    assert result["refresh_s"] > 0
    assert list(result["queries_ms"]) == [n.name for n in q.CATALOGUE]
    assert all(f"{n:<40}" in done.stdout for n in names)  # each view's time printed
    assert result["slowest"]["view"] in names
    assert result["under_200ms"] == all(ms < 200 for ms in result["views_p50_ms"].values())
    rows = result["rows_by_table"]
    assert rows["matches"] == 3 * rows["inquiries"] and rows["season_baseline"] == 18
    assert rows["buyer_events"] == 20_000 - rows["supplier_profiles"]

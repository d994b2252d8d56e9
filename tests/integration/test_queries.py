"""Every named query on the real embedded engine, over a day the project's own builders
made: the values it answers, the tables it reads, the same through the owner's endpoint."""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import orjson
import pytest

from core import queries as q
from core.owner import QueryServer, read_query
from core.rates import parse_rates
from core.settings import Settings
from core.store import Store
from infra.clickhouse import MIGRATIONS_DIR
from schemas.events import FUNNEL_STAGES, PROFESSIONAL_BUYER_TYPES
from schemas.registry import (
    INTELLIGENCE_VIEWS,
    LEAD_SCORES_CLUSTER,
    LEAD_SCORES_EXHIBITOR,
    SEASON_BASELINE,
    TABLE_BY_EVENT_TYPE,
)
from streams.intelligence.scores import FAIR_TZ, STEPS, LeadSignals, score
from tests.factories.rows import DayRows, fair_day_rows
from tests.factories.stores import open_store

pytestmark = pytest.mark.integration

SEASON_LOADS = (  # (season, loaded_at): the newest season other than the fair's is compared
    ("CIFW-2025-SS", datetime(2025, 11, 1, tzinfo=UTC)),
    ("CIFW-2025-AW", datetime(2026, 1, 1, tzinfo=UTC)),
    ("CIFW-2026-AW", datetime(2026, 2, 1, tzinfo=UTC)),  # the fair itself: never its own past
)
RANKED_AT_OFFSET = timedelta(minutes=2)  # momentum_ranking_at: a moment inside the window


@pytest.fixture(scope="module")
def day() -> DayRows:
    day = fair_day_rows()
    # A previous season's counts (an operator's CSV import), for the first places scanned:
    # one of them with 0 buyers (no change_pct), and one place left out (no previous count).
    places = sorted({(r["pavilion_id"], r["cluster_id"]) for r in day.decoded("scans")
                     if r["cluster_id"]})
    baseline = [
        {"season": season, "pavilion_id": pavilion, "cluster_id": cluster,
         "professional_buyers": (7 * n) % 40, "source": "test",
         "loaded_at": loaded.isoformat(timespec="milliseconds")}
        for season, loaded in SEASON_LOADS for n, (pavilion, cluster) in enumerate(places[1:])
    ]
    day.rows[SEASON_BASELINE.name] = [orjson.dumps(r) for r in baseline]
    return day


@pytest.fixture(scope="module")
def store(day: DayRows, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """A store holding the day, every row inserted twice (a redelivery): counts must not
    see the second copy, whether or not the engine has merged it away yet."""
    store = open_store(Settings(data_dir=tmp_path_factory.mktemp("queries"),
                                namespace="queries"))
    for _ in range(2):
        for table, rows in day.rows.items():
            store.insert_json_rows(table, rows)
    store.refresh_snapshots()  # the intelligence views are read from their snapshots
    yield store
    store.close()


# -- what each query must answer, worked out from the day's truth and rows ---------------
def _current_buyer(day: DayRows) -> dict[str, str]:
    """alias -> buyer of its newest alias row (what a merge moved it to)."""
    newest: dict[str, tuple[int, str]] = {}
    for row in day.decoded("buyer_aliases"):
        if row["alias"] not in newest or row["version"] >= newest[row["alias"]][0]:
            newest[row["alias"]] = (row["version"], row["buyer_id"])
    return {alias: buyer for alias, (_, buyer) in newest.items()}


def _busiest_cluster(day: DayRows) -> str:
    by_minute = day.sim.ground_truth["expected_by_cluster_minute"]
    return max(sorted(by_minute), key=lambda c: len(by_minute[c]))


def _minute(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(second=0, microsecond=0)


def _leads_by_minute(day: DayRows) -> dict[datetime, dict[str, int]]:
    cluster = _busiest_cluster(day)
    truth = day.sim.ground_truth["expected_by_cluster_minute"][cluster]
    badges: dict[datetime, set[str]] = defaultdict(set)
    for row in day.decoded("scans"):
        if row["cluster_id"] == cluster:
            badges[_minute(row["occurred_at"])].add(row["badge_id"])
    out = {}
    for minute, counts in truth.items():
        at = datetime.fromisoformat(f"{minute}:00+00:00")
        out[at] = {**dict(zip(q.STREAM_LEAD_COUNTERS, counts, strict=True)),
                   "distinct_badges": len(badges[at])}
    return out


def _unique_buyers_by_cluster(day: DayRows) -> dict[str, int]:
    current = _current_buyer(day)
    buyers: dict[str, set[str]] = defaultdict(set)
    for row in day.decoded("buyer_events"):
        if row["cluster_id"]:
            buyers[row["cluster_id"]].add(current.get(row["alias"], row["buyer_id"]))
    return {cluster: len(ids) for cluster, ids in buyers.items()}


# -- lead intelligence, recomputed from the rows in Python ---------------------------------
def _latest(rows: list[dict]) -> list[dict]:
    """One row per event_id (the day holds resends), as FINAL reads them."""
    return list({r["event_id"]: r for r in rows}.values())


def _buyer_of_event(day: DayRows) -> dict[str, str]:
    current = _current_buyer(day)
    return {r["event_id"]: current.get(r["alias"], r["buyer_id"])
            for r in day.decoded("buyer_events")}


_RATES = {r.currency: r.cny_per_unit for r in parse_rates(
    (MIGRATIONS_DIR.parent / "rates" / "cny_rates.csv").read_text("utf-8"))}


def _cny(amount: str | None, currency: str) -> Decimal | None:
    if amount is None or currency not in _RATES:
        return None
    return (Decimal(amount) * _RATES[currency]).quantize(Decimal("0.01"), ROUND_HALF_UP)


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _events(day: DayRows) -> list[tuple[str, dict]]:
    """(kind, row) of every counted scan, inquiry and step: resolved buyers only."""
    buyer = _buyer_of_event(day)
    return [(kind, r) for kind, table in (("scan", "scans"), ("inquiry", "inquiries"),
                                          ("step", "procurement_steps"))
            for r in _latest(day.decoded(table)) if r["event_id"] in buyer]


def _funnel(day: DayRows) -> dict[str, list[dict[str, Any]]]:
    buyer = _buyer_of_event(day)
    sets: dict[tuple[str, str], dict[str, Any]] = defaultdict(
        lambda: {"buyers": set(), "pairs": set(), "events": set(), "value": Decimal(0)})
    for kind, r in _events(day):
        if not r["cluster_id"]:
            continue
        stage = {"scan": "scan", "inquiry": "inquiry"}.get(kind, r.get("step", ""))
        amount = {"scan": None, "inquiry": r.get("budget")}.get(kind, r.get("value"))
        s = sets[r["cluster_id"], stage]
        s["buyers"].add(buyer[r["event_id"]])
        s["events"].add(r["event_id"])
        if r["exhibitor_id"]:
            s["pairs"].add((buyer[r["event_id"]], r["exhibitor_id"]))
        s["value"] += _cny(amount, r.get("currency", "CNY")) or 0
    out: dict[str, list[dict[str, Any]]] = {}
    for cluster in sorted({c for c, _ in sets}):
        rows, previous = [], (0, 0)
        for order, stage in enumerate(FUNNEL_STAGES, 1):
            s = sets[cluster, stage]
            buyers, pairs = len(s["buyers"]), len(s["pairs"])
            num, den = (buyers, previous[0]) if order == 2 else (pairs, previous[1])
            rows.append({"stage": stage, "stage_order": order, "buyers": buyers,
                         "pairs": pairs, "events": len(s["events"]),
                         "value_cny": s["value"].quantize(Decimal("0.01")),
                         "conversion": None if order == 1 or den == 0 else num / den})
            previous = (buyers, pairs)
        out[cluster] = rows
    return out


def _window(moment: datetime) -> datetime:
    return moment.replace(minute=moment.minute - moment.minute % 5, second=0, microsecond=0)


def _ranking(day: DayRows, window: datetime | None) -> list[dict[str, Any]]:
    """Clusters ranked in a 5-minute window (None: the latest complete one), as documented
    in migration 011: share of the trailing hour, Laplace-smoothed, Poisson z-score."""
    counts: dict[str, dict[datetime, set[str]]] = defaultdict(lambda: defaultdict(set))
    for _, r in _events(day):
        if r["cluster_id"]:
            counts[r["cluster_id"]][_window(_at(r["occurred_at"]))].add(r["event_id"])
    last = max(w for c in counts.values() for w in c)
    window = window or last - timedelta(minutes=5)
    step = timedelta(minutes=5)

    def fair(w: datetime) -> int:
        return sum(len(c.get(w, ())) for c in counts.values())

    trailing = [window - step * k for k in range(1, 13)]
    fair_trailing = sum(fair(w) for w in trailing)
    scored = []
    for cluster, by_window in counts.items():
        events = len(by_window.get(window, ()))
        mine = sum(len(by_window.get(w, ())) for w in trailing)
        expected = (mine + 1) / (fair_trailing + len(counts)) * fair(window)
        scored.append((-(events - expected) / math.sqrt(expected + 1), cluster, events,
                       expected))
    (fair,) = {r["fair_id"] for _, r in _events(day)}  # the day is one fair
    return [{"fair_id": fair, "window_start": window, "rank": n, "cluster_id": cluster,
             "momentum_score": -neg, "events": events, "expected": expected}
            for n, (neg, cluster, events, expected) in enumerate(sorted(scored), 1)]


def _ranked_window(day: DayRows) -> datetime:
    """The busiest 5-minute window of the day (not the latest): momentum_ranking_at's."""
    by_window: dict[datetime, int] = defaultdict(int)
    for _, r in _events(day):
        by_window[_window(_at(r["occurred_at"]))] += 1
    return max(sorted(by_window), key=lambda w: by_window[w])


def _kpis(day: DayRows) -> dict[str, dict[str, Any]]:
    buyer = _buyer_of_event(day)
    first: dict[tuple[str, str], datetime] = {}
    for m in {(m["inquiry_event_id"], m["rank"]): m for m in day.decoded("matches")}.values():
        if m["inquiry_event_id"] in buyer:
            key = (buyer[m["inquiry_event_id"]], m["exhibitor_id"])
            first[key] = min(first.get(key, _at(m["matched_at"])), _at(m["matched_at"]))
    seen: dict[str, dict[tuple[str, str], dict[str, Any]]] = {
        "match": {k: {} for k in first}, "no_match": {}}
    for kind, r in _events(day):
        if kind == "inquiry" or not r["exhibitor_id"]:
            continue
        key, at = (buyer[r["event_id"]], r["exhibitor_id"]), _at(r["occurred_at"])
        if key in first and at < first[key]:
            continue
        pair = seen["match" if key in first else "no_match"].setdefault(key, {})
        stage = "scan" if kind == "scan" else r["step"]
        pair[stage] = min(pair.get(stage, at), at)
        if stage == "purchase_order":
            pair["value"] = pair.get("value", Decimal(0)) + (_cny(r["value"], r["currency"])
                                                              or 0)
    out = {}
    for introduced_by, pairs in seen.items():
        n = len(pairs)
        counts = {name: sum(1 for p in pairs.values() if stage in p) for name, stage in (
            ("visited", "scan"), ("sampled", "sample_request"),
            ("intent", "cooperation_intent"), ("ordered", "purchase_order"))}
        hours = [(p["cooperation_intent"] - first[k]) / timedelta(milliseconds=1) / 3600000.
                 for k, p in pairs.items() if "cooperation_intent" in p and k in first]
        out[introduced_by] = {
            "pairs": n, **counts,
            **{rate: counts[c] / n if n else None for rate, c in (
                ("visit_rate", "visited"), ("sample_rate", "sampled"),
                ("intent_rate", "intent"), ("order_rate", "ordered"))},
            "median_hours_to_intent": (statistics.median(hours)
                                       if introduced_by == "match" and hours else None),
            "order_value_cny": sum((p.get("value", Decimal(0)) for p in pairs.values()),
                                   Decimal("0.00")),
        }
    return out


def _season(day: DayRows) -> list[dict[str, Any]]:
    buyer = _buyer_of_event(day)
    professional = {buyer[r["event_id"]] for r in _latest(day.decoded("registrations"))
                    if r["event_id"] in buyer and r["buyer_type"] in PROFESSIONAL_BUYER_TYPES}
    places: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for r in _latest(day.decoded("scans")):
        if r["cluster_id"] and r["event_id"] in buyer:
            b = buyer[r["event_id"]]
            places[r["fair_id"], r["pavilion_id"], r["cluster_id"]].update(
                {b} & professional)
    baseline = {(r["season"], r["pavilion_id"], r["cluster_id"]): r["professional_buyers"]
                for r in day.decoded(SEASON_BASELINE.name)}
    out = []
    for (fair, pavilion, cluster), buyers in sorted(places.items()):
        season = max((s for s in SEASON_LOADS if s[0] != fair), key=lambda s: s[1])[0]
        previous = baseline.get((season, pavilion, cluster))
        out.append({"fair_id": fair, "pavilion_id": pavilion, "cluster_id": cluster,
                    "professional_buyers": len(buyers), "previous_season": season,
                    "previous_professional_buyers": previous,
                    "change_pct": (100. * (len(buyers) - previous) / previous
                                   if previous else None)})
    return out


def _signals(day: DayRows, by: str) -> tuple[dict[tuple[str, str, str], LeadSignals],
                                             datetime]:
    """LeadSignals per (fair, buyer, exhibitor or cluster) folded from the rows, and the
    fair's now (its latest scan, inquiry or step)."""
    buyer = _buyer_of_event(day)
    folded: dict[tuple[str, str, str], LeadSignals] = {}
    now = max(_at(r["occurred_at"]) for t in ("scans", "inquiries", "procurement_steps")
              for r in _latest(day.decoded(t)))
    for kind, r in _events(day):
        if not r[by]:
            continue
        at = _at(r["occurred_at"])
        if kind == "scan":
            s = LeadSignals(last_activity=at, scans=1,
                            scan_days=frozenset({at.astimezone(FAIR_TZ).date()}),
                            ratings=frozenset({r["rating"]} if r["rating"] else ()))
        elif kind == "inquiry":
            budget = _cny(r["budget"], r["currency"])
            s = LeadSignals(last_activity=at, has_inquiry=True,
                            inquiry_quantity=r["quantity"],
                            inquiry_budget_cny=None if budget is None else float(budget),
                            inquiry_lead_time_days=r["lead_time_days"])
        else:
            assert r["step"] in STEPS
            s = LeadSignals(last_activity=at, furthest_step=r["step"])
        key = (r["fair_id"], buyer[r["event_id"]], r[by])
        folded[key] = folded[key].combine(s) if key in folded else s
    return folded, now


HOT_LEADS_LIMIT = 5


def _hot_leads(day: DayRows) -> list[dict[str, Any]]:
    folded, now = _signals(day, "exhibitor_id")
    cluster = {r["exhibitor_id"]: r["cluster_id"] for _, r in _events(day)}
    hot = [(-v.value, key) for key, s in folded.items()
           if (v := score(s, now)).tier == "hot"]
    return [{"fair_id": fair, "buyer_id": b, "exhibitor_id": ex, "cluster_id": cluster[ex],
             "score": -neg, "tier": "hot", "last_activity": folded[fair, b, ex].last_activity}
            for neg, (fair, b, ex) in sorted(hot)[:HOT_LEADS_LIMIT]]


def _surge_alerts(day: DayRows) -> list[dict[str, Any]]:
    rows = {(r["fair_id"], r["cluster_id"], r["surge_start"]): r
            for r in day.decoded("surge_alerts")}
    out = [{"fair_id": r["fair_id"], "cluster_id": r["cluster_id"],
            "surge_start": _at(r["surge_start"]), "window_end": _at(r["window_end"]),
            "events": r["events"], "expected": r["expected"],
            "momentum_score": r["momentum_score"], "value_cny": Decimal(str(r["value_cny"])),
            "late": r["late"], "evidence": r["evidence"], "detected_at": _at(r["detected_at"])}
           for r in rows.values()]
    return sorted(out, key=lambda a: (-a["surge_start"].timestamp(), a["fair_id"],
                                      a["cluster_id"]))


def _badges_seen(day: DayRows) -> int:
    return len({r["badge_id"] for t in ("registrations", "scans") for r in day.decoded(t)})


def _matched_suppliers(day: DayRows) -> dict[str, list[str]]:
    out: dict[str, list[tuple[int, str]]] = {}
    for r in day.decoded("matches"):
        out.setdefault(r["inquiry_event_id"], []).append((r["rank"], r["exhibitor_id"]))
    return {i: [ex for _, ex in sorted(ranks)] for i, ranks in sorted(out.items())}


def _cny_rates(_day: DayRows) -> dict[str, Decimal]:
    """The shipped reference rates (the day loads none of its own)."""
    text = (MIGRATIONS_DIR.parent / "rates" / "cny_rates.csv").read_text()
    return {r["currency"]: Decimal(r["cny_per_unit"]) for r in csv.DictReader(io.StringIO(text))}


EXPECTED: dict[str, Callable[[DayRows], object]] = {
    q.EVENTS_STORED.name: lambda day: {
        TABLE_BY_EVENT_TYPE[t].name: n
        for t, n in day.sim.ground_truth["expected_by_type"].items()},
    q.DEAD_LETTERS_BY_REASON.name: lambda day: day.sim.ground_truth["malformed_by_reason"],
    q.LEADS_BY_CLUSTER.name: lambda day: day.sim.ground_truth["expected_by_cluster"],
    q.STREAM_LEADS_BY_CLUSTER.name: lambda day: {
        c: {k: counts[k] for k in q.STREAM_LEAD_COUNTERS}
        for c, counts in day.sim.ground_truth["expected_by_cluster"].items()},
    q.LEADS_BY_MINUTE.name: _leads_by_minute,
    q.BADGES_SEEN.name: _badges_seen,
    q.BUYERS_RESOLVED.name: lambda day: len(set(_current_buyer(day).values())),
    q.BUYER_OF_ALIAS.name: _current_buyer,
    q.UNIQUE_BUYERS_BY_CLUSTER.name: _unique_buyers_by_cluster,
    q.FUNNEL.name: _funnel,
    q.MOMENTUM_LEADERS.name: lambda day: _ranking(day, None)[:3],
    q.MOMENTUM_RANKING_AT.name: lambda day: _ranking(day, _ranked_window(day)),
    q.MATCHMAKING.name: _kpis,
    q.SEASON.name: _season,
    q.HOT_LEADS.name: _hot_leads,
    q.SURGE_ALERTS.name: _surge_alerts,
    q.MATCHED_SUPPLIERS.name: _matched_suppliers,
    q.CNY_RATES.name: _cny_rates,
}


def params_for(named: q.NamedQuery, day: DayRows) -> dict[str, object]:
    values = {q.CLUSTER.name: _busiest_cluster(day),
              q.AT.name: _ranked_window(day) + RANKED_AT_OFFSET,
              q.LIMIT.name: HOT_LEADS_LIMIT}
    return {p.name: values[p.name] for p in named.params}


def _close(got: object, want: object) -> bool:
    """Equal, floats to 1e-9 (the engine sums and divides in another order than Python)."""
    if isinstance(want, float) and isinstance(got, float):
        return math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(want, dict) and isinstance(got, dict):
        return got.keys() == want.keys() and all(_close(got[k], want[k]) for k in want)
    if isinstance(want, list) and isinstance(got, list):
        return len(got) == len(want) and all(_close(g, w) for g, w in zip(got, want,
                                                                          strict=True))
    return got == want


def test_every_named_query_has_an_expectation_here() -> None:
    assert set(EXPECTED) == set(q.BY_NAME)


def test_the_day_merges_buyers_so_the_buyer_queries_see_merges(day: DayRows) -> None:
    assert day.rows.get("buyer_merges"), "the simulated day has no merge: pick another seed"
    at_resolution = {r["buyer_id"] for r in day.decoded("buyer_events")}
    assert len(set(_current_buyer(day).values())) < len(at_resolution)


@pytest.mark.parametrize("named", q.CATALOGUE, ids=lambda n: n.name)
def test_every_named_query_answers_what_the_day_holds(named: q.NamedQuery, day: DayRows,
                                                      store: Store) -> None:
    values = params_for(named, day)
    result = store.query(named.bind(store.database, values))
    assert tuple(result.columns) == named.columns and result.rows
    got, want = q.run(named, store.query, store.database, **values), EXPECTED[named.name](day)
    assert _close(got, want), (got, want)


def test_the_day_exercises_the_intelligence_queries(day: DayRows) -> None:
    # Values that would make the checks above vacuous: no hot lead, no match that led to an
    # intent, no order value, no previous season, no surge alert stored.
    kpis = _kpis(day)
    assert _hot_leads(day) and kpis["match"]["intent"] and kpis["no_match"]["ordered"]
    assert kpis["match"]["order_value_cny"] or kpis["no_match"]["order_value_cny"]
    assert any(r["change_pct"] is not None for r in _season(day))
    assert any(r["previous_professional_buyers"] is None for r in _season(day))
    assert _surge_alerts(day)
    assert _ranked_window(day) != _ranking(day, None)[0]["window_start"]


def test_every_intelligence_view_has_the_registry_columns(store: Store) -> None:
    for view in INTELLIGENCE_VIEWS:
        result = store.client.query(f"SELECT * FROM {store.database}.{view.name} LIMIT 1")
        assert tuple(result.column_names) == view.columns, view.name
        assert result.result_rows, view.name


@pytest.mark.parametrize(("view", "by"), [(LEAD_SCORES_EXHIBITOR, "exhibitor_id"),
                                          (LEAD_SCORES_CLUSTER, "cluster_id")],
                         ids=["exhibitor", "cluster"])
def test_lead_scores_equal_the_python_score_at_the_fairs_now(
        day: DayRows, store: Store, view: object, by: str) -> None:
    folded, now = _signals(day, by)
    rows = store.client.query(
        f"SELECT fair_id, buyer_id, {by}, score, tier, scans, furthest_step"
        f" FROM {store.database}.{view.name}").result_rows  # type: ignore[attr-defined]
    assert len(rows) == len(folded)
    for fair, buyer, key, value, tier, scans, step in rows:
        signals = folded[fair, buyer, key]
        expected = score(signals, now)
        assert value == pytest.approx(expected.value, abs=1e-9), (fair, buyer, key)
        assert (tier, scans, step) == (expected.tier, signals.scans, signals.furthest_step)


@pytest.mark.parametrize("named", q.CATALOGUE, ids=lambda n: n.name)
def test_the_engine_reads_exactly_the_tables_a_query_declares(named: q.NamedQuery,
                                                              day: DayRows,
                                                              store: Store) -> None:
    sql = named.bind(store.database, params_for(named, day))
    tree = [r[0].split() for r in store.client.query(f"EXPLAIN AST {sql}").result_rows]
    read = {words[1] for words in tree if words[0] == "TableIdentifier"}
    assert read == {f"{store.database}.{t.name}" for t in named.reads}


def test_named_queries_shape_the_same_through_the_owners_endpoint(day: DayRows,
                                                                  store: Store) -> None:
    # Other processes read through the owner (JSON over loopback): same values.
    server = QueryServer(store, store.settings)
    server.start()
    try:
        def remote(sql: str) -> q.QueryResult:
            return read_query(store.settings, sql)

        for named in q.CATALOGUE:
            values = params_for(named, day)
            assert (q.run(named, remote, store.database, **values)
                    == q.run(named, store.query, store.database, **values)), named.name
    finally:
        server.stop()

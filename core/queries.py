"""Named queries: the numbers the CLI, reports and dashboards show, in one place.

A :class:`NamedQuery` is a value: a name, what it answers, the registry tables it reads,
its SQL (built from registry names, with the database as a parameter), the columns it
returns, its parameters and how its rows become a Python value. :data:`CATALOGUE` holds
every one; :func:`run` runs one through any ``query(sql) -> QueryResult`` callable
(``Store.query`` in the owner, ``core.store.read_query`` elsewhere) and shapes the rows.

Counts are of *distinct* keys (``uniqExact``), so they are exact whether or not ClickHouse
has merged away the duplicate rows of a resend or a replay yet; tables whose newest row
wins (``leads_minute_parts``, ``buyer_aliases``) are read through their views, which pick
that row (``FINAL``, ``argMax`` by version).

Parameters are ClickHouse query parameters (``{cluster:String}``) in the SQL text, so a
client that binds server-side can run the text as it is; :meth:`NamedQuery.bind` turns
them into typed literals for a ``query(sql)`` callable, which takes text only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from clickhouse_connect.driver.binding import format_query_value

from core.reads import QueryResult
from schemas.reference import CLUSTERS
from schemas.registry import (
    BUYER_ALIAS_CURRENT,
    CNY_RATE_CURRENT,
    DEAD_LETTER_TABLE,
    EVENT_TABLES,
    FUNNEL_BY_CLUSTER,
    INQUIRIES,
    LEAD_SCORES_EXHIBITOR,
    LEADS_PER_CLUSTER_MINUTE,
    MATCHES_TABLE,
    MATCHMAKING_KPIS,
    MOMENTUM_CLUSTER_5M,
    MOMENTUM_RANKING,
    PROCUREMENT_STEPS,
    REGISTRATIONS,
    SCANS,
    SEASON_COMPARISON,
    SURGE_ALERTS_TABLE,
    TableSpec,
)
from schemas.registry import UNIQUE_BUYERS_BY_CLUSTER as BUYERS_BY_CLUSTER_VIEW

Query = Callable[[str], QueryResult]
Rows = list[list[Any]]
LEAD_COUNTERS = ("scans", "inquiries", "procurement_steps", "distinct_badges")
STREAM_LEAD_COUNTERS = LEAD_COUNTERS[:3]  # badges do not add up over minutes


class QueryShapeError(RuntimeError):
    """A named query returned other columns than it declares (a drifted view or query)."""


@dataclass(frozen=True)
class Param:
    """A query parameter: ``{name:type}`` in the SQL text (a ClickHouse type)."""

    name: str
    type: str
    description: str

    @property
    def placeholder(self) -> str:
        return f"{{{self.name}:{self.type}}}"


@dataclass(frozen=True)
class NamedQuery:
    """One named query; see the module docstring."""

    name: str
    description: str
    reads: tuple[TableSpec, ...]  # registry tables (or views) named in its SQL
    columns: tuple[str, ...]  # the result's columns, in order
    template: Callable[[str], str]  # database -> SQL text (parameters as placeholders)
    shape: Callable[[Rows], Any]  # the result's rows -> the value callers use
    params: tuple[Param, ...] = ()

    def sql(self, database: str) -> str:
        """The SQL text on ``database``, parameters left as ``{name:type}``."""
        return self.template(database)

    def bind(self, database: str, values: Mapping[str, object] | None = None) -> str:
        """The SQL text with every parameter replaced by a typed literal of its value.

        Raises ``ValueError`` for a missing or undeclared parameter.
        """
        values = dict(values or {})
        declared = {p.name for p in self.params}
        if set(values) != declared:
            missing, extra = sorted(declared - set(values)), sorted(set(values) - declared)
            raise ValueError(f"query {self.name}: parameters missing {missing}, unknown {extra}")
        text = self.sql(database)
        for p in self.params:
            text = text.replace(p.placeholder,
                                f"CAST({format_query_value(values[p.name])} AS {p.type})")
        return text


def run(named: NamedQuery, query: Query, database: str, **values: object) -> Any:
    """Run ``named`` on ``database`` through ``query`` and return its shaped value.

    Raises what ``query`` raises (``StoreError`` from the store), ``ValueError`` for wrong
    parameters and :class:`QueryShapeError` when the columns are not the declared ones.
    """
    result = query(named.bind(database, values))
    # An empty result from the embedded engine names no columns: nothing to check then.
    if result.columns and tuple(result.columns) != named.columns:
        raise QueryShapeError(f"query {named.name} returned columns {result.columns},"
                              f" declared {list(named.columns)}")
    return named.shape(result.rows)


# -- shapes -------------------------------------------------------------------------------
def _counts_by_key(rows: Rows) -> dict[str, int]:
    return {str(key): int(n) for key, n in rows}


def _single_count(rows: Rows) -> int:
    return int(rows[0][0])


def _pairs(rows: Rows) -> dict[str, str]:
    return {str(a): str(b) for a, b in rows}


def _by_cluster(counters: tuple[str, ...]) -> Callable[[Rows], dict[str, dict[str, int]]]:
    """Every reference cluster (zeros where nothing was stored), plus any other stored."""

    def shape(rows: Rows) -> dict[str, dict[str, int]]:
        out = {c.id: dict.fromkeys(counters, 0) for c in CLUSTERS}
        for cluster, *counts in rows:
            out[str(cluster)] = {k: int(n) for k, n in zip(counters, counts, strict=True)}
        return out

    return shape


def _by_minute(rows: Rows) -> dict[datetime, dict[str, int]]:
    return {_utc(minute): {k: int(n) for k, n in zip(LEAD_COUNTERS, counts, strict=True)}
            for minute, *counts in rows}


def _utc(value: object) -> datetime:
    """A stored DateTime as an aware UTC datetime (the owner's endpoint sends text)."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# -- the catalogue ------------------------------------------------------------------------
def _events_stored(db: str) -> str:
    return " UNION ALL ".join(
        f"SELECT '{t.name}' AS table_name, uniqExact(event_id) AS events FROM {db}.{t.name}"
        for t in EVENT_TABLES
    )


EVENTS_STORED = NamedQuery(
    "events_stored", "distinct valid events per raw event table",
    EVENT_TABLES, ("table_name", "events"), _events_stored, _counts_by_key,
)

DEAD_LETTERS_BY_REASON = NamedQuery(
    "dead_letters_by_reason",
    "dead letters per reason: distinct failed messages (lines of a batched message, rows"
    " of a derived message) by their origin, so a replay that fails again counts once;"
    " FINAL: its newest reason",
    (DEAD_LETTER_TABLE,), ("reason", "dead_letters"),
    lambda db: (f"SELECT reason,"
                f" uniqExact(origin_topic, origin_partition, origin_offset, origin_line,"
                f" raw_sha256)"
                f" AS dead_letters FROM {db}.{DEAD_LETTER_TABLE.name} FINAL"
                " GROUP BY reason ORDER BY reason"),
    _counts_by_key,
)


def _leads_by_cluster(db: str) -> str:
    # One row per cluster and table, summed per cluster: the tables share no events.
    # FINAL: a replay that corrected an event's cluster leaves the old row until a merge;
    # only the newest row of each event_id may count, or the event counts in both.
    parts = (
        f"SELECT cluster_id, uniqExact(event_id) AS scans, 0 AS inquiries,"
        f" 0 AS procurement_steps, uniqExact(badge_id) AS badges"
        f" FROM {db}.{SCANS.name} FINAL GROUP BY cluster_id",
        f"SELECT cluster_id, 0, uniqExact(event_id), 0, 0 FROM {db}.{INQUIRIES.name} FINAL"
        " GROUP BY cluster_id",
        f"SELECT cluster_id, 0, 0, uniqExact(event_id), 0"
        f" FROM {db}.{PROCUREMENT_STEPS.name} FINAL GROUP BY cluster_id",
    )
    return (
        "SELECT cluster_id, sum(scans) AS scans, sum(inquiries) AS inquiries,"
        " sum(procurement_steps) AS procurement_steps, sum(badges) AS distinct_badges"
        f" FROM ({' UNION ALL '.join(parts)}) GROUP BY cluster_id ORDER BY cluster_id"
    )


LEADS_BY_CLUSTER = NamedQuery(
    "leads_by_cluster",
    "leads per cluster from the raw event tables: distinct scans, inquiries, procurement"
    " steps and scanned badges (every reference cluster, zeros included)",
    (SCANS, INQUIRIES, PROCUREMENT_STEPS), ("cluster_id",) + LEAD_COUNTERS,
    _leads_by_cluster, _by_cluster(LEAD_COUNTERS),
)

STREAM_LEADS_BY_CLUSTER = NamedQuery(
    "stream_leads_by_cluster",
    "leads per cluster from the stream's aggregate, summed over event-time minutes",
    (LEADS_PER_CLUSTER_MINUTE,), ("cluster_id",) + STREAM_LEAD_COUNTERS,
    lambda db: ("SELECT cluster_id, sum(scans) AS scans, sum(inquiries) AS inquiries,"
                " sum(procurement_steps) AS procurement_steps"
                f" FROM {db}.{LEADS_PER_CLUSTER_MINUTE.name}"
                " GROUP BY cluster_id ORDER BY cluster_id"),
    _by_cluster(STREAM_LEAD_COUNTERS),
)

CLUSTER = Param("cluster", "String", "a cluster id (schemas.reference CLUSTERS)")

LEADS_BY_MINUTE = NamedQuery(
    "leads_by_minute",
    "one cluster's leads per event-time minute (UTC) from the stream's aggregate",
    (LEADS_PER_CLUSTER_MINUTE,), ("minute",) + LEAD_COUNTERS,
    lambda db: (f"SELECT minute, {', '.join(LEAD_COUNTERS)}"
                f" FROM {db}.{LEADS_PER_CLUSTER_MINUTE.name}"
                f" WHERE cluster_id = {CLUSTER.placeholder} ORDER BY minute"),
    _by_minute, (CLUSTER,),
)

BADGES_SEEN = NamedQuery(
    "badges_seen", "distinct badge ids registered or scanned",
    (REGISTRATIONS, SCANS), ("badges",),
    lambda db: (f"SELECT uniqExact(badge_id) AS badges FROM (SELECT badge_id"
                f" FROM {db}.{REGISTRATIONS.name} UNION ALL SELECT badge_id"
                f" FROM {db}.{SCANS.name})"),
    _single_count,
)

BUYERS_RESOLVED = NamedQuery(
    "buyers_resolved", "distinct resolved buyers (every merge stored so far), all fairs",
    (BUYER_ALIAS_CURRENT,), ("buyers",),
    lambda db: ("SELECT uniqExact(fair_id, buyer_id) AS buyers"
                f" FROM {db}.{BUYER_ALIAS_CURRENT.name}"),
    _single_count,
)

BUYER_OF_ALIAS = NamedQuery(
    "buyer_of_alias", "identity record -> its buyer now (merges applied)",
    (BUYER_ALIAS_CURRENT,), ("alias", "buyer_id"),
    lambda db: f"SELECT alias, buyer_id FROM {db}.{BUYER_ALIAS_CURRENT.name} ORDER BY alias",
    _pairs,
)

UNIQUE_BUYERS_BY_CLUSTER = NamedQuery(
    "unique_buyers_by_cluster", "resolved unique buyers per cluster, summed over fairs",
    (BUYERS_BY_CLUSTER_VIEW,), ("cluster_id", "buyers"),
    lambda db: ("SELECT cluster_id, sum(buyers) AS buyers"
                f" FROM {db}.{BUYERS_BY_CLUSTER_VIEW.name}"
                " GROUP BY cluster_id ORDER BY cluster_id"),
    _counts_by_key,
)

# -- lead intelligence (migration 011; ARCHITECTURE.md "Lead intelligence (views)") --------
# The views keep one row per fair; a query that sums over fairs adds counts of per-fair
# buyer ids (a buyer id belongs to one fair) and recomputes ratios from the sums.
def _opt_float(value: object) -> float | None:
    return None if value is None else float(str(value))


def _money(value: object) -> Decimal:
    """A stored Decimal (the owner's endpoint sends it as text)."""
    return Decimal(str(value))


def _records(columns: tuple[str, ...], convert: Mapping[str, Callable[[Any], Any]]
             ) -> Callable[[Rows], list[dict[str, Any]]]:
    """Rows as dicts by column name, each value through its converter (default: as is)."""

    def shape(rows: Rows) -> list[dict[str, Any]]:
        return [{c: convert.get(c, _same)(v) for c, v in zip(columns, row, strict=True)}
                for row in rows]

    return shape


def _same(value: Any) -> Any:
    return value


_FUNNEL_COLUMNS = ("cluster_id", "stage", "stage_order", "buyers", "pairs", "events",
                   "value_cny", "conversion")
_FUNNEL_TYPES: dict[str, Callable[[Any], Any]] = {
    "stage": str, "stage_order": int, "buyers": int, "pairs": int, "events": int,
    "value_cny": _money, "conversion": _opt_float,
}


def _funnel_by_cluster(rows: Rows) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for row in _records(_FUNNEL_COLUMNS, _FUNNEL_TYPES)(rows):
        out.setdefault(str(row.pop("cluster_id")), []).append(row)
    return out


def _funnel_sql(db: str) -> str:
    # conversion as the view defines it (schemas.events FUNNEL_STAGES order): pairs over the
    # previous stage's pairs, inquiry over scan by buyers; NULL first or over zero.
    previous = ("OVER (PARTITION BY cluster_id ORDER BY stage_order"
                " ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)")
    return (
        "SELECT cluster_id, stage, stage_order, buyers, pairs, events, value_cny,"
        " if(stage_order = 1 OR den = 0, NULL, if(stage_order = 2, buyers, pairs) / den)"
        " AS conversion FROM (SELECT *,"
        f" if(stage_order = 2, lagInFrame(buyers, 1, 0) {previous},"
        f" lagInFrame(pairs, 1, 0) {previous}) AS den"
        " FROM (SELECT cluster_id, stage, stage_order, sum(buyers) AS buyers,"
        " sum(pairs) AS pairs, sum(events) AS events,"
        " CAST(sum(value_cny) AS Decimal(18, 2)) AS value_cny"
        f" FROM {db}.{FUNNEL_BY_CLUSTER.name} GROUP BY cluster_id, stage, stage_order))"
        " ORDER BY cluster_id, stage_order"
    )


FUNNEL = NamedQuery(
    "funnel_by_cluster",
    "the procurement funnel per cluster, six stages each (scan, inquiry, sample request,"
    " quote request, cooperation intent, purchase order): resolved buyers, buyer-exhibitor"
    " pairs, events, value in CNY, conversion from the previous stage; summed over fairs",
    (FUNNEL_BY_CLUSTER,), _FUNNEL_COLUMNS, _funnel_sql, _funnel_by_cluster,
)

_RANKING_COLUMNS = ("fair_id", "window_start", "rank", "cluster_id", "momentum_score",
                    "events", "expected")
_RANKING_TYPES: dict[str, Callable[[Any], Any]] = {
    "fair_id": str, "window_start": _utc, "rank": int, "cluster_id": str,
    "momentum_score": float, "events": int, "expected": float,
}

MOMENTUM_LEADERS = NamedQuery(
    "momentum_leaders",
    "the top 3 clusters by momentum in each fair's latest complete 5-minute window",
    (MOMENTUM_RANKING,), _RANKING_COLUMNS,
    lambda db: (f"SELECT {', '.join(_RANKING_COLUMNS)} FROM {db}.{MOMENTUM_RANKING.name}"
                " WHERE rank <= 3 ORDER BY fair_id, rank"),
    _records(_RANKING_COLUMNS, _RANKING_TYPES),
)

AT = Param("at", "DateTime64(3, 'UTC')", "a moment (UTC): its 5-minute window is ranked")

MOMENTUM_RANKING_AT = NamedQuery(
    "momentum_ranking_at",
    "clusters ranked by momentum in the 5-minute window that holds `at` (rank 1 = top, ties"
    " by cluster id), per fair",
    (MOMENTUM_CLUSTER_5M,), _RANKING_COLUMNS,
    lambda db: ("SELECT fair_id, window_start, toUInt32(row_number() OVER (PARTITION BY"
                " fair_id ORDER BY momentum_score DESC, cluster_id)) AS rank, cluster_id,"
                f" momentum_score, events, expected FROM {db}.{MOMENTUM_CLUSTER_5M.name}"
                f" WHERE window_start = toStartOfFiveMinutes({AT.placeholder})"
                " ORDER BY fair_id, rank"),
    _records(_RANKING_COLUMNS, _RANKING_TYPES), (AT,),
)

_KPI_COUNTS = ("pairs", "visited", "sampled", "intent", "ordered")
_KPI_COLUMNS = ("introduced_by",) + _KPI_COUNTS + (
    "visit_rate", "sample_rate", "intent_rate", "order_rate", "median_hours_to_intent",
    "order_value_cny")
_KPI_TYPES: dict[str, Callable[[Any], Any]] = {
    **dict.fromkeys(_KPI_COUNTS, int),
    **dict.fromkeys(("visit_rate", "sample_rate", "intent_rate", "order_rate",
                     "median_hours_to_intent"), _opt_float),
    "order_value_cny": _money,
}


def _kpis(rows: Rows) -> dict[str, dict[str, Any]]:
    return {str(row.pop("introduced_by")): row
            for row in _records(_KPI_COLUMNS, _KPI_TYPES)(rows)}


def _kpis_sql(db: str) -> str:
    rates = ", ".join(f"if(pairs = 0, NULL, {count} / pairs) AS {rate}" for count, rate in (
        ("visited", "visit_rate"), ("sampled", "sample_rate"), ("intent", "intent_rate"),
        ("ordered", "order_rate")))
    sums = ", ".join(f"sum({c}) AS {c}" for c in _KPI_COUNTS)
    # a median does not add up over fairs: it is the view's when one fair is stored
    return (f"SELECT introduced_by, {', '.join(_KPI_COUNTS)}, {rates},"
            " median_hours_to_intent, order_value_cny FROM (SELECT introduced_by, "
            f"{sums}, if(uniqExact(fair_id) = 1, any(median_hours_to_intent), NULL)"
            " AS median_hours_to_intent,"
            " CAST(sum(order_value_cny) AS Decimal(18, 2)) AS order_value_cny"
            f" FROM {db}.{MATCHMAKING_KPIS.name} GROUP BY introduced_by)"
            " ORDER BY introduced_by")


MATCHMAKING = NamedQuery(
    "matchmaking_kpis",
    "match credit: buyer-exhibitor pairs a match introduced ('match') vs pairs none did"
    " ('no_match'), how many visited, sampled, signed an intent, ordered, the rates, the"
    " median hours from match to intent (one fair stored, else NULL), order value in CNY",
    (MATCHMAKING_KPIS,), _KPI_COLUMNS, _kpis_sql, _kpis,
)

_SEASON_COLUMNS = SEASON_COMPARISON.columns
SEASON = NamedQuery(
    "season_comparison",
    "professional buyers per fair, pavilion and cluster vs the previous season",
    (SEASON_COMPARISON,), _SEASON_COLUMNS,
    lambda db: (f"SELECT {', '.join(_SEASON_COLUMNS)} FROM {db}.{SEASON_COMPARISON.name}"
                " ORDER BY fair_id, pavilion_id, cluster_id"),
    _records(_SEASON_COLUMNS, {
        "professional_buyers": int, "change_pct": _opt_float,
        "previous_professional_buyers": lambda v: None if v is None else int(v)}),
)

LIMIT = Param("limit", "UInt32", "how many leads at most")
_LEAD_COLUMNS = ("fair_id", "buyer_id", "exhibitor_id", "cluster_id", "score", "tier",
                 "last_activity")

HOT_LEADS = NamedQuery(
    "hot_leads",
    "the hot (buyer, exhibitor) leads, best score first (ties by fair, buyer, exhibitor)",
    (LEAD_SCORES_EXHIBITOR,), _LEAD_COLUMNS,
    lambda db: (f"SELECT {', '.join(_LEAD_COLUMNS)} FROM {db}.{LEAD_SCORES_EXHIBITOR.name}"
                " WHERE tier = 'hot' ORDER BY score DESC, fair_id, buyer_id, exhibitor_id"
                f" LIMIT {LIMIT.placeholder}"),
    _records(_LEAD_COLUMNS, {"score": float, "last_activity": _utc}), (LIMIT,),
)

_ALERT_COLUMNS = ("fair_id", "cluster_id", "surge_start", "window_end", "events", "expected",
                  "momentum_score", "value_cny", "late", "evidence", "detected_at")

SURGE_ALERTS = NamedQuery(
    "surge_alerts",
    "surge alerts, newest surge first (FINAL: one row per fair, cluster and surge start)",
    (SURGE_ALERTS_TABLE,), _ALERT_COLUMNS,
    lambda db: (f"SELECT {', '.join(_ALERT_COLUMNS)} FROM {db}.{SURGE_ALERTS_TABLE.name}"
                " FINAL ORDER BY surge_start DESC, fair_id, cluster_id"),
    _records(_ALERT_COLUMNS, {
        "surge_start": _utc, "window_end": _utc, "detected_at": _utc, "events": int,
        "expected": float, "momentum_score": float, "value_cny": _money, "late": int}),
)

def _matched(rows: Rows) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for inquiry, exhibitor in rows:
        out.setdefault(str(inquiry), []).append(str(exhibitor))
    return out


MATCHED_SUPPLIERS = NamedQuery(
    "matched_suppliers",
    "the suppliers recommended for each inquiry, best first (FINAL: one row per rank)",
    (MATCHES_TABLE,), ("inquiry_event_id", "exhibitor_id"),
    lambda db: (f"SELECT inquiry_event_id, exhibitor_id FROM {db}.{MATCHES_TABLE.name} FINAL"
                " ORDER BY inquiry_event_id, rank"),
    _matched,
)

CNY_RATES = NamedQuery(
    "cny_rates",
    "the rate of each currency in force now (CNY per unit)",
    (CNY_RATE_CURRENT,), ("currency", "cny_per_unit"),
    lambda db: (f"SELECT currency, cny_per_unit FROM {db}.{CNY_RATE_CURRENT.name}"
                " ORDER BY currency"),
    lambda rows: {str(c): _money(r) for c, r in rows},
)

CATALOGUE: tuple[NamedQuery, ...] = (
    EVENTS_STORED, DEAD_LETTERS_BY_REASON, LEADS_BY_CLUSTER, STREAM_LEADS_BY_CLUSTER,
    LEADS_BY_MINUTE, BADGES_SEEN, BUYERS_RESOLVED, BUYER_OF_ALIAS, UNIQUE_BUYERS_BY_CLUSTER,
    FUNNEL, MOMENTUM_LEADERS, MOMENTUM_RANKING_AT, MATCHMAKING, SEASON, HOT_LEADS,
    SURGE_ALERTS, MATCHED_SUPPLIERS, CNY_RATES,
)
BY_NAME: dict[str, NamedQuery] = {q.name: q for q in CATALOGUE}

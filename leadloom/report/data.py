"""What a delegation's post-fair report shows, read through a ``Query`` it is given.

Every statement reads only tables a delegation may read (the lead intelligence snapshots
and plain tables that carry ``cluster_id``, all in ``schemas.scope.DELEGATION_TABLES``:
``scans``, ``lead_scores_cluster``, ``funnel_by_cluster``, ``match_outcomes``,
``momentum_cluster_hour``/``_5m`` and, once it is in the registry, ``delegation_buyers``;
:data:`READS`), and every one carries the cluster's condition in its own SQL, whatever
filter the reading session adds. Nothing here reads ``inquiries`` (contact hashes),
``buyers``, ``registrations`` or any hash: hot leads carry masked names only, and only
from ``delegation_buyers``.

Counts are ``uniqExact`` of event ids or buyer ids (raw tables ``FINAL``), as the
delegation dashboard counts them. Times are shown in the fair's zone
(:data:`FAIR_TZ`); the store keeps UTC.

Failure modes: the ``Query`` raises (``StoreError`` from the store) and the error goes up
unchanged; values come back as engine types or, through the owner's endpoint, as text:
:func:`_int`, :func:`_float`, :func:`_moment` accept both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from clickhouse_connect.driver.binding import format_query_value

from core.reads import QueryResult
from dashboards.style import TIMEZONE
from schemas.registry import (
    FUNNEL_BY_CLUSTER,
    LEAD_SCORES_CLUSTER,
    MATCH_OUTCOMES,
    MOMENTUM_CLUSTER_5M,
    MOMENTUM_CLUSTER_HOUR,
    SCANS,
    TABLES_BY_NAME,
)

Query = Callable[[str], QueryResult]
FAIR_TZ = TIMEZONE  # the fair's zone (the dashboards show the same)
TOP_BOOTHS = 10
HOT_LEADS = 15
TOP_EXHIBITORS = 10
DELEGATION_BUYERS = "delegation_buyers"  # the per-cluster buyer projection (migration 014)
MASKED_COLUMNS = ("name_masked", "company", "country")  # never a hash or a raw field
READS = (SCANS.name, LEAD_SCORES_CLUSTER.name, FUNNEL_BY_CLUSTER.name, MATCH_OUTCOMES.name,
         MOMENTUM_CLUSTER_HOUR.name, MOMENTUM_CLUSTER_5M.name, DELEGATION_BUYERS)


@dataclass(frozen=True)
class Booth:
    booth_id: str
    exhibitor_id: str
    scans: int
    visitors: int


@dataclass(frozen=True)
class Lead:
    buyer_id: str
    score: float
    tier: str
    scans: int
    has_inquiry: bool
    furthest_step: str
    last_activity: datetime | None
    name_masked: str = ""
    company: str = ""
    country: str = ""


@dataclass(frozen=True)
class Stage:
    stage: str
    buyers: int
    pairs: int
    events: int
    value_cny: float
    conversion: float | None


@dataclass(frozen=True)
class ExhibitorMatches:
    exhibitor_id: str
    matches: int
    visited: int
    sampled: int
    intents: int
    orders: int
    order_value_cny: float


@dataclass(frozen=True)
class Window:
    start: datetime  # in FAIR_TZ
    events: int
    expected: float
    z_score: float


@dataclass
class ReportData:
    """Everything the report shows for one cluster and fair (``fair`` None: no data)."""

    cluster_id: str
    fair: str | None
    scans: int = 0
    visitors: int = 0
    inquiries: int = 0
    unique_buyers: int = 0
    repeat_visitors: int = 0
    tiers: dict[str, int] = field(default_factory=dict)  # hot/warm/cold -> leads
    traffic: dict[date, dict[int, int]] = field(default_factory=dict)  # day -> hour -> scans
    scans_per_day: dict[date, int] = field(default_factory=dict)
    buyers_per_day: dict[date, int] = field(default_factory=dict)
    booths: list[Booth] = field(default_factory=list)
    hot_leads: list[Lead] = field(default_factory=list)
    names_masked: bool = False  # hot leads carry masked names (delegation_buyers exists)
    funnel: list[Stage] = field(default_factory=list)
    matches: dict[str, float] = field(default_factory=dict)  # matches, visited, ... value
    matches_by_exhibitor: list[ExhibitorMatches] = field(default_factory=list)
    momentum: list[Window] = field(default_factory=list)
    surge_windows: int = 0
    first_surge: datetime | None = None
    peak_z: float | None = None

    @property
    def has_data(self) -> bool:
        return self.fair is not None and (self.scans + self.inquiries + self.unique_buyers) > 0

    def figures(self) -> dict[str, Any]:
        """The figures the report shows, as JSON values (``--json``)."""
        return {
            "unique_buyers": self.unique_buyers, "scans": self.scans, "visitors": self.visitors,
            "inquiries": self.inquiries, "repeat_visitors": self.repeat_visitors,
            "hot_leads": self.tiers.get("hot", 0), "warm_leads": self.tiers.get("warm", 0),
            "scans_per_day": {d.isoformat(): n for d, n in self.scans_per_day.items()},
            "buyers_per_day": {d.isoformat(): n for d, n in self.buyers_per_day.items()},
            "top_booths": {b.booth_id: b.scans for b in self.booths},
            "funnel": {s.stage: s.buyers for s in self.funnel},
            "matches": self.matches, "surge_windows": self.surge_windows,
            "peak_z": None if self.peak_z is None else round(self.peak_z, 2),
        }


def literal(value: str) -> str:
    """A string as a quoted ClickHouse literal (the engine's escaping, not ours)."""
    return str(format_query_value(value))


def latest_fair(query: Query, db: str, cluster_id: str) -> str | None:
    """The fair of the cluster's latest hourly window, None when it has none."""
    rows = query(f"SELECT fair_id FROM {db}.{MOMENTUM_CLUSTER_HOUR.name}"
                 f" WHERE cluster_id = {literal(cluster_id)}"
                 " GROUP BY fair_id ORDER BY max(window_start) DESC, fair_id LIMIT 1").rows
    return str(rows[0][0]) if rows else None


def load(query: Query, db: str, cluster_id: str, fair: str | None) -> ReportData:
    """Read the report's data for ``cluster_id`` at ``fair`` (None: an empty report)."""
    data = ReportData(cluster_id, fair)
    if fair is None:
        return data
    where = f"fair_id = {literal(fair)} AND cluster_id = {literal(cluster_id)}"
    _totals(query, db, where, data)
    if not data.has_data:
        return data
    _traffic(query, db, where, data)
    _booths(query, db, where, data)
    _leads(query, db, fair, cluster_id, data)
    _funnel(query, db, where, data)
    _matches(query, db, where, data)
    _momentum(query, db, where, data)
    return data


def _totals(query: Query, db: str, where: str, data: ReportData) -> None:
    row = query(f"SELECT uniqExact(event_id) AS scans, uniqExact(badge_id) AS visitors"
                f" FROM {db}.{SCANS.name} FINAL WHERE {where}").rows
    data.scans, data.visitors = (_int(row[0][0]), _int(row[0][1])) if row else (0, 0)
    # inquiries: the funnel's inquiry stage (distinct inquiry events of resolved buyers);
    # the inquiries table itself carries contact hashes, which no delegation may read
    row = query(f"SELECT events FROM {db}.{FUNNEL_BY_CLUSTER.name}"
                f" WHERE {where} AND stage = 'inquiry'").rows
    data.inquiries = _int(row[0][0]) if row else 0
    row = query("SELECT uniqExact(buyer_id) AS buyers, countIf(scans >= 2) AS repeat_visitors,"
                " countIf(tier = 'hot') AS hot, countIf(tier = 'warm') AS warm,"
                " countIf(tier = 'cold') AS cold"
                f" FROM {db}.{LEAD_SCORES_CLUSTER.name} WHERE {where}").rows
    if row:
        data.unique_buyers, data.repeat_visitors = _int(row[0][0]), _int(row[0][1])
        data.tiers = {"hot": _int(row[0][2]), "warm": _int(row[0][3]), "cold": _int(row[0][4])}


def _traffic(query: Query, db: str, where: str, data: ReportData) -> None:
    tz = literal(FAIR_TZ)
    for day, hour, scans in query(
            f"SELECT toDate(occurred_at, {tz}) AS day, toHour(occurred_at, {tz}) AS hour,"
            f" uniqExact(event_id) AS scans FROM {db}.{SCANS.name} FINAL WHERE {where}"
            " GROUP BY day, hour ORDER BY day, hour").rows:
        data.traffic.setdefault(_day(day), {})[_int(hour)] = _int(scans)
    for day, scans in query(
            f"SELECT toDate(occurred_at, {tz}) AS day, uniqExact(event_id) AS scans"
            f" FROM {db}.{SCANS.name} FINAL WHERE {where} GROUP BY day ORDER BY day").rows:
        data.scans_per_day[_day(day)] = _int(scans)
    # scan_days: the days of the buyer's scans here (one buyer counts once per day); the
    # arrayJoin function, not an ARRAY JOIN clause, which the scoped read path refuses
    for day, buyers in query(
            "SELECT arrayJoin(scan_days) AS day, uniqExact(buyer_id) AS buyers"
            f" FROM {db}.{LEAD_SCORES_CLUSTER.name} WHERE {where} GROUP BY day ORDER BY day"
            ).rows:
        data.buyers_per_day[_day(day)] = _int(buyers)


def _booths(query: Query, db: str, where: str, data: ReportData) -> None:
    data.booths = [
        Booth(str(b), str(e), _int(s), _int(v)) for b, e, s, v in query(
            "SELECT booth_id, any(exhibitor_id) AS exhibitor_id, uniqExact(event_id) AS scans,"
            f" uniqExact(badge_id) AS visitors FROM {db}.{SCANS.name} FINAL WHERE {where}"
            f" GROUP BY booth_id ORDER BY scans DESC, booth_id LIMIT {TOP_BOOTHS}").rows]


def _leads(query: Query, db: str, fair: str, cluster_id: str, data: ReportData) -> None:
    scope = f"fair_id = {literal(fair)} AND cluster_id = {literal(cluster_id)}"
    names = _masked_columns()
    data.names_masked = bool(names)
    select = ("SELECT l.buyer_id, round(l.score, 1) AS score, l.tier, l.scans, l.has_inquiry,"
              " ifNull(l.furthest_step, '') AS furthest_step, l.last_activity")
    source = f" FROM {db}.{LEAD_SCORES_CLUSTER.name} AS l"
    if names:
        picked = ", ".join(f"any({c}) AS {c}" for c in names)
        select += "".join(f", d.{c}" for c in names)
        source += (f" LEFT JOIN (SELECT buyer_id, {picked} FROM {db}.{DELEGATION_BUYERS}"
                   f" WHERE {scope} GROUP BY buyer_id) AS d ON d.buyer_id = l.buyer_id")
    rows = query(f"{select}{source} WHERE l.fair_id = {literal(fair)}"
                 f" AND l.cluster_id = {literal(cluster_id)} AND l.tier = 'hot'"
                 f" ORDER BY l.score DESC, l.buyer_id LIMIT {HOT_LEADS}").rows
    for row in rows:
        extra = {c: "" if v is None else str(v) for c, v in zip(names, row[7:], strict=True)}
        data.hot_leads.append(Lead(
            str(row[0]), _float(row[1]), str(row[2]), _int(row[3]), bool(_int(row[4])),
            str(row[5] or ""), _local_or_none(_moment(row[6])), **extra))


def _masked_columns() -> tuple[str, ...]:
    """The masked contact columns of ``delegation_buyers``; () until the registry has it."""
    spec = TABLES_BY_NAME.get(DELEGATION_BUYERS)
    return () if spec is None else tuple(c for c in MASKED_COLUMNS if c in spec.columns)


def _funnel(query: Query, db: str, where: str, data: ReportData) -> None:
    data.funnel = [
        Stage(str(s), _int(b), _int(p), _int(e), _float(v), None if c is None else _float(c))
        for s, b, p, e, v, c in query(
            "SELECT stage, buyers, pairs, events, value_cny, conversion"
            f" FROM {db}.{FUNNEL_BY_CLUSTER.name} WHERE {where} ORDER BY stage_order").rows]


def _matches(query: Query, db: str, where: str, data: ReportData) -> None:
    counts = ("count() AS matches, countIf(visited = 1) AS visited,"
              " countIf(sampled = 1) AS sampled, countIf(intent = 1) AS intents,"
              " countIf(ordered = 1) AS orders, sum(order_value_cny) AS order_value_cny")
    row = query(f"SELECT {counts} FROM {db}.{MATCH_OUTCOMES.name} WHERE {where}").rows
    keys = ("matches", "visited", "sampled", "intents", "orders", "order_value_cny")
    data.matches = {k: (_float(v) if k == "order_value_cny" else _int(v))
                    for k, v in zip(keys, row[0] if row else [0] * 6, strict=True)}
    data.matches_by_exhibitor = [
        ExhibitorMatches(str(r[0]), _int(r[1]), _int(r[2]), _int(r[3]), _int(r[4]), _int(r[5]),
                         _float(r[6])) for r in query(
            f"SELECT exhibitor_id, {counts} FROM {db}.{MATCH_OUTCOMES.name} WHERE {where}"
            f" GROUP BY exhibitor_id ORDER BY matches DESC, exhibitor_id"
            f" LIMIT {TOP_EXHIBITORS}").rows]


def _momentum(query: Query, db: str, where: str, data: ReportData) -> None:
    data.momentum = [
        Window(_local(_moment(t)), _int(e), _float(x), _float(z)) for t, e, x, z in query(
            "SELECT window_start, events, expected, momentum_score"
            f" FROM {db}.{MOMENTUM_CLUSTER_HOUR.name} WHERE {where} ORDER BY window_start").rows]
    row = query("SELECT countIf(surge = 1) AS surges, minIf(window_start, surge = 1) AS first,"
                " max(momentum_score) AS peak"
                f" FROM {db}.{MOMENTUM_CLUSTER_5M.name} WHERE {where}").rows
    if row and row[0][2] is not None:
        data.surge_windows = _int(row[0][0])
        data.first_surge = _local(_moment(row[0][1])) if data.surge_windows else None
        data.peak_z = _float(row[0][2])


# -- values from the engine (native) or from the owner's endpoint (JSON text) -----------
def _int(value: object) -> int:
    return 0 if value is None else int(value)  # type: ignore[call-overload]


def _float(value: object) -> float:
    if value is None:
        return 0.0
    return float(value) if isinstance(value, (int, float, Decimal)) else float(str(value))


def _day(value: object) -> date:
    if isinstance(value, datetime):
        return value.date()
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _moment(value: object) -> datetime | None:
    """A stored DateTime as an aware UTC datetime (naive values are UTC: the store's)."""
    if value is None or value == "":
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def local_zone() -> ZoneInfo:
    return ZoneInfo(FAIR_TZ)


def _local_or_none(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.astimezone(ZoneInfo(FAIR_TZ))


def _local(moment: datetime | None) -> datetime:
    if moment is None:
        raise ValueError("a momentum window without a start")
    return moment.astimezone(ZoneInfo(FAIR_TZ))

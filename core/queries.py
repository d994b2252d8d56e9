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
from typing import Any

from clickhouse_connect.driver.binding import format_query_value

from core.reads import QueryResult
from schemas.reference import CLUSTERS
from schemas.registry import (
    BUYER_ALIAS_CURRENT,
    DEAD_LETTER_TABLE,
    EVENT_TABLES,
    INQUIRIES,
    LEADS_PER_CLUSTER_MINUTE,
    PROCUREMENT_STEPS,
    REGISTRATIONS,
    SCANS,
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
    "dead letters per reason: distinct failed messages (or rows of a derived message) by"
    " their origin, so a replay that fails again counts once; FINAL: its newest reason",
    (DEAD_LETTER_TABLE,), ("reason", "dead_letters"),
    lambda db: (f"SELECT reason,"
                f" uniqExact(origin_topic, origin_partition, origin_offset, raw_sha256)"
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

CATALOGUE: tuple[NamedQuery, ...] = (
    EVENTS_STORED, DEAD_LETTERS_BY_REASON, LEADS_BY_CLUSTER, STREAM_LEADS_BY_CLUSTER,
    LEADS_BY_MINUTE, BADGES_SEEN, BUYERS_RESOLVED, BUYER_OF_ALIAS, UNIQUE_BUYERS_BY_CLUSTER,
)
BY_NAME: dict[str, NamedQuery] = {q.name: q for q in CATALOGUE}

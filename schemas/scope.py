"""Who may read what: the organizer, the ops team and each cluster's delegation.

A :class:`Scope` is a role plus, for a delegation, its cluster. It answers two questions
for a session that reads the store on someone's behalf:

- :meth:`Scope.may_read`: may this reader name that table at all (the pre-check a session
  runs on the engine's own parse of a query; never a regular expression over SQL text);
- :meth:`Scope.table_filters`: the session's ``additional_table_filters``: the engine adds
  each condition at the storage read of that table, inside views and subqueries too, so a
  delegation's session sees its cluster's rows only and every table it may not read as
  empty (``'0'``). Keys are exact, case-sensitive, unquoted ``db.table``.

Which tables a delegation reads (:data:`DELEGATION_TABLES`)
-----------------------------------------------------------
Only tables whose every row belongs to one cluster (a ``cluster_id`` column), and views
whose every source is such a table: the engine applies the filters inside views, so a view
that also reads an unfilterable table (``buyers``, ``buyer_aliases``: one row per buyer of
the whole fair) would silently compute wrong numbers for a delegation. Hence:

- in: the event tables with a cluster (``scans``, ``procurement_steps``,
  ``supplier_profiles``), ``buyer_events`` (record ids and buyer ids, no contact data),
  ``leads_minute_parts`` and its view ``leads_per_cluster_minute`` (its only source),
  ``matches`` (rows of the cluster's recommended suppliers), ``surge_alerts``,
  ``season_baseline``, the snapshot tables carrying ``cluster_id`` (lead scores, funnels
  per cluster and exhibitor, cluster momentum and ranking, match outcomes, season
  comparison: their rows were computed over the whole fair at refresh, so filtering rows
  never changes a number) and ``delegation_buyers`` (migration 014);
- out: ``inquiries``. It does carry ``cluster_id``, but also each buyer's contact hashes
  (``email_hash``, ``phone_hash``, ``wechat_hash``): a row filter cannot hide columns, and
  unsalted hashes of e-mails and phone numbers are personal data (they join across fairs
  and fall to a dictionary of likely numbers). A delegation gets its inquiries' figures
  from the lead scores, funnels and ``leads_per_cluster_minute`` and its buyers' masked
  profile from ``delegation_buyers``;
- ops only (:data:`OPS_ONLY_TABLES`): ``raw_archive`` (every raw message, contact data in
  clear), not even the organizer;
- out: ``registrations``, ``buyers``, ``buyer_aliases``, ``buyer_merges`` (no cluster:
  every buyer of the fair), ``dead_letters`` (raw bytes), ``pipeline_metrics``,
  ``currency_rates``, ``schema_migrations``, the ``*_live`` views, the ``__next`` twins,
  ``buyer_events_resolved`` and ``unique_buyers_*`` (they read ``buyer_aliases``), and the
  snapshots by category or of the whole fair (no cluster column).

Failure modes: :func:`delegation_scope` raises ``ValueError`` for a cluster id that
``schemas.reference`` does not know; ``Scope`` raises ``ValueError`` when ``cluster_id`` is
set for a role other than DELEGATION or missing for a delegation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from schemas.reference import CLUSTERS
from schemas.registry import (
    BUYER_EVENTS_TABLE,
    DELEGATION_BUYERS,
    FUNNEL_BY_CLUSTER,
    FUNNEL_BY_EXHIBITOR,
    LEAD_SCORES_CLUSTER,
    LEAD_SCORES_EXHIBITOR,
    LEADS_MINUTE_PARTS,
    LEADS_PER_CLUSTER_MINUTE,
    MATCH_OUTCOMES,
    MATCHES_TABLE,
    MOMENTUM_CLUSTER_5M,
    MOMENTUM_CLUSTER_HOUR,
    MOMENTUM_RANKING,
    PROCUREMENT_STEPS,
    RAW_ARCHIVE,
    SCANS,
    SEASON_BASELINE,
    SEASON_COMPARISON,
    SUPPLIER_PROFILES,
    SURGE_ALERTS_TABLE,
)


class Role(StrEnum):
    ORGANIZER = "organizer"
    OPS = "ops"
    DELEGATION = "delegation"


SYSTEM_DATABASE = "system"
# Both spellings exist on the engine; both are views over system tables.
INFORMATION_SCHEMA = frozenset({"information_schema", "INFORMATION_SCHEMA"})

# registry table name -> the column carrying the cluster (module docstring for the choice)
DELEGATION_TABLES: Mapping[str, str] = MappingProxyType({
    spec.name: "cluster_id" for spec in (
        SCANS, PROCUREMENT_STEPS, SUPPLIER_PROFILES, BUYER_EVENTS_TABLE, LEADS_MINUTE_PARTS,
        LEADS_PER_CLUSTER_MINUTE, MATCHES_TABLE, SURGE_ALERTS_TABLE, SEASON_BASELINE,
        LEAD_SCORES_EXHIBITOR, LEAD_SCORES_CLUSTER, FUNNEL_BY_CLUSTER, FUNNEL_BY_EXHIBITOR,
        MOMENTUM_CLUSTER_5M, MOMENTUM_CLUSTER_HOUR, MOMENTUM_RANKING, MATCH_OUTCOMES,
        SEASON_COMPARISON, DELEGATION_BUYERS,
    )
})

# System tables every reader may read: what clients' handshakes (clickhouse-connect reads
# system.settings, Grafana's driver SELECTs constants from system.one) and Grafana's schema
# browser (databases, tables, columns) need. Never parts, query_log, processes, ...: they
# tell the sizes and the queries of everyone.
SYSTEM_READABLE: frozenset[str] = frozenset({
    "one", "settings", "tables", "columns", "databases", "functions", "data_type_families",
})
# Readable system tables that list the store's objects: limited to the reader's database
# (and, for a delegation, to the tables it may read) for every role.
SYSTEM_FILTERED: frozenset[str] = frozenset({"tables", "columns", "databases"})

# Tables only ops (and the store owner) read: the raw archive holds every raw message as
# sent, personal data in clear (migration 015).
OPS_ONLY_TABLES: frozenset[str] = frozenset({RAW_ARCHIVE.name})
DENY = "0"  # a filter that is never true: the table reads as empty


def _quote(text: str) -> str:
    """``text`` as a ClickHouse string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass(frozen=True)
class Scope:
    """What one reader may see (module docstring)."""

    role: Role
    cluster_id: str | None = None  # set iff role is DELEGATION (a schemas.reference id)

    def __post_init__(self) -> None:
        if (self.role is Role.DELEGATION) != (self.cluster_id is not None):
            raise ValueError("a cluster id goes with the delegation role, and only with it")

    @property
    def name(self) -> str:
        """The conventional user name: organizer, ops, delegation_<cluster_id>."""
        return f"delegation_{self.cluster_id}" if self.cluster_id else str(self.role)

    def may_read(self, database: str, table: str) -> bool:
        """May this reader name ``table`` of ``database``?

        ``table`` may also be qualified (``db.name``): then its own database counts. System
        tables: only :data:`SYSTEM_READABLE`; information_schema: never. Other tables: all
        for the organizer and ops, :data:`DELEGATION_TABLES` for a delegation. Which
        database is the store's is decided by :meth:`table_filters`, which denies every
        table of any other database.
        """
        if "." in table:
            database, table = table.split(".", 1)
        if database == SYSTEM_DATABASE:
            return table in SYSTEM_READABLE
        if database in INFORMATION_SCHEMA:
            return False
        if table in OPS_ONLY_TABLES:
            return self.role is Role.OPS
        return self.role is not Role.DELEGATION or table in DELEGATION_TABLES

    def readable_tables(self, database: str, tables: Iterable[tuple[str, str]]) -> list[str]:
        """The tables of ``database`` among ``tables`` this reader may read, sorted."""
        return sorted({t for db, t in tables if db == database and self.may_read(db, t)})

    def table_filters(self, database: str,
                      tables: Iterable[tuple[str, str]]) -> dict[str, str]:
        """The session's ``additional_table_filters`` for the store's ``database``.

        ``tables``: every (database, table) that exists (system.tables). Returns, key
        ``db.table``: for a delegation, ``cluster_id = '<id>'`` on each of its
        DELEGATION_TABLES in ``database``; for every role, system.tables/columns/databases
        limited to ``database`` and to the tables this reader may read; ``'0'`` for every
        other existing table this reader may not read (system, information_schema and
        other databases included). The organizer and ops get no filter on ``database``.
        """
        tables = list(tables)
        readable = self.readable_tables(database, tables)
        names = ", ".join(_quote(t) for t in readable) or "''"
        listing = {
            "tables": f"database = {_quote(database)} AND name IN ({names})",
            "columns": f"database = {_quote(database)} AND table IN ({names})",
            "databases": f"name = {_quote(database)}",
        }
        filters: dict[str, str] = {}
        for db, table in tables:
            key = f"{db}.{table}"
            if db == SYSTEM_DATABASE and table in SYSTEM_FILTERED:
                filters[key] = listing[table]
            elif db == SYSTEM_DATABASE and self.may_read(db, table):
                continue  # readable as it is (system.one, system.settings, ...)
            elif db == database and self.may_read(db, table):
                if self.role is Role.DELEGATION:
                    column = DELEGATION_TABLES[table]
                    filters[key] = f"{column} = {_quote(self.cluster_id or '')}"
            else:
                filters[key] = DENY
        return filters


def filters_literal(filters: Mapping[str, str]) -> str:
    """``filters`` as the SQL map literal of ``additional_table_filters`` (for ``SET`` or a
    ``SETTINGS`` clause): ``{'db.t': 'cond', ...}``, every key and condition quoted."""
    return "{" + ", ".join(f"{_quote(k)}: {_quote(v)}" for k, v in sorted(filters.items())) + "}"


ORGANIZER_SCOPE = Scope(Role.ORGANIZER)
OPS_SCOPE = Scope(Role.OPS)
CLUSTER_IDS: frozenset[str] = frozenset(c.id for c in CLUSTERS)


def delegation_scope(cluster_id: str) -> Scope:
    """The scope of ``cluster_id``'s delegation; ``ValueError`` for an unknown cluster."""
    if cluster_id not in CLUSTER_IDS:
        known = ", ".join(sorted(CLUSTER_IDS))
        raise ValueError(f"unknown cluster {cluster_id!r}; known: {known}")
    return Scope(Role.DELEGATION, cluster_id)

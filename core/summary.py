"""Exact counts from the store, for the demo summary, benchmarks and tests.

Counts are of *distinct* keys (``uniqExact``), so they are exact whether or not
ClickHouse has merged away the duplicate rows of a resend or a replay yet.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.store import QueryResult
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
    UNIQUE_BUYERS_BY_CLUSTER,
)

Query = Callable[[str], QueryResult]
LEAD_COUNTERS = ("scans", "inquiries", "procurement_steps", "distinct_badges")


def _rows(query: Query, sql: str) -> list[list[Any]]:
    return query(sql).rows


def events_stored(query: Query, db: str) -> dict[str, int]:
    """Distinct valid events per raw event table."""
    parts = " UNION ALL ".join(
        f"SELECT '{t.name}' AS t, uniqExact(event_id) AS n FROM {db}.{t.name}" for t in EVENT_TABLES
    )
    return {t: int(n) for t, n in _rows(query, parts)}


def dead_letters_by_reason(query: Query, db: str) -> dict[str, int]:
    sql = (
        f"SELECT reason, uniqExact(source_topic, source_partition, source_offset) "
        f"FROM {db}.{DEAD_LETTER_TABLE.name} GROUP BY reason ORDER BY reason"
    )
    return {r: int(n) for r, n in _rows(query, sql)}


def leads_by_cluster(query: Query, db: str) -> dict[str, dict[str, int]]:
    """Leads per cluster from the raw event tables (distinct events and badges)."""
    out = {c.id: dict.fromkeys(LEAD_COUNTERS, 0) for c in CLUSTERS}
    sql = (
        f"SELECT cluster_id, uniqExact(event_id), uniqExact(badge_id) FROM {db}.{SCANS.name} "
        "GROUP BY cluster_id"
    )
    for cluster, scans, badges in _rows(query, sql):
        out.setdefault(cluster, dict.fromkeys(LEAD_COUNTERS, 0))
        out[cluster]["scans"], out[cluster]["distinct_badges"] = int(scans), int(badges)
    for table, counter in ((INQUIRIES, "inquiries"), (PROCUREMENT_STEPS, "procurement_steps")):
        sql = f"SELECT cluster_id, uniqExact(event_id) FROM {db}.{table.name} GROUP BY cluster_id"
        for cluster, n in _rows(query, sql):
            out.setdefault(cluster, dict.fromkeys(LEAD_COUNTERS, 0))[counter] = int(n)
    return out


def stream_leads_by_cluster(query: Query, db: str) -> dict[str, dict[str, int]]:
    """Leads per cluster from the Faust aggregate (summed over event-time minutes)."""
    out = {c.id: {k: 0 for k in LEAD_COUNTERS[:3]} for c in CLUSTERS}
    sql = (
        f"SELECT cluster_id, sum(scans), sum(inquiries), sum(procurement_steps) "
        f"FROM {db}.{LEADS_PER_CLUSTER_MINUTE.name} GROUP BY cluster_id"
    )
    for cluster, scans, inquiries, steps in _rows(query, sql):
        out[cluster] = {"scans": int(scans), "inquiries": int(inquiries),
                        "procurement_steps": int(steps)}
    return out


def badges_seen(query: Query, db: str) -> int:
    """Distinct badge ids registered or scanned."""
    sql = (
        f"SELECT uniqExact(badge_id) FROM (SELECT badge_id FROM {db}.{REGISTRATIONS.name} "
        f"UNION ALL SELECT badge_id FROM {db}.{SCANS.name})"
    )
    return int(_rows(query, sql)[0][0])


def buyers_resolved(query: Query, db: str) -> int:
    """Distinct resolved buyers (after every merge stored so far), over all fairs."""
    sql = f"SELECT uniqExact(fair_id, buyer_id) FROM {db}.{BUYER_ALIAS_CURRENT.name}"
    return int(_rows(query, sql)[0][0])


def buyer_of_alias(query: Query, db: str) -> dict[str, str]:
    """Identity record -> its buyer now (merges applied)."""
    sql = f"SELECT alias, buyer_id FROM {db}.{BUYER_ALIAS_CURRENT.name}"
    return {alias: buyer for alias, buyer in _rows(query, sql)}


def unique_buyers_by_cluster(query: Query, db: str) -> dict[str, int]:
    sql = (f"SELECT cluster_id, sum(buyers) FROM {db}.{UNIQUE_BUYERS_BY_CLUSTER.name} "
           "GROUP BY cluster_id")
    return {cluster: int(n) for cluster, n in _rows(query, sql)}

"""The differences between a rebuilt (shadow) database and live: per table and per metric.

**Per table** (every table a rebuild writes): the rows of each side as a multiset of
content hashes, compared; ``only_live`` / ``only_shadow`` count rows on one side without
an equal row on the other (up to three examples each). Rows are read the way readers see
them (``FINAL`` where the newest row wins), and content leaves out what says *when* or
*through which message* a row was made, not *what* it says:

- processing times (``ingested_at``, ``updated_at``, ``resolved_at``, ``made_at``,
  ``detected_at``, ``failed_at``) and a raw row's ``source_*`` coordinates (a republished
  event is stored once, under the coordinates of whichever copy came last);
- buyer ids and records: a buyer's id is the first of its records the resolver applied,
  and a scan that arrives before its buyer's registration makes a badge-only record
  (``badge:<id>``) the registration then joins: both depend on arrival order, which a
  rebuild cannot repeat. So a buyer is named by its *events*: every ``buyer_id`` is
  replaced by the smallest event id among the buyer's events (each event's record, through
  ``buyer_alias_current``, to its current buyer), which names the same buyer whatever the
  order. ``buyer_events`` compares each event's current buyer (not its record, nor the
  buyer at resolution time), ``buyers`` the surviving profiles (not their record count
  nor their records' first and last times);
- ``buyer_merges`` and ``buyer_aliases``: the merge history and the records themselves are
  order-dependent; counted, not compared: the buyers they yield are compared above;
- ``surge_alerts``: which surges were alerted (fair, cluster, first window); an alert's
  figures are those known when it was decided, which in a live stream is earlier.

**Per metric**: every parameterless named query (:mod:`core.queries`, the numbers the CLI,
reports and dashboards show) on both databases; ``buyer_of_alias`` as the partition of
records into buyers, ``surge_alerts`` by their keys.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core import queries as q
from core.reads import QueryResult
from core.snapshots import SNAPSHOT_VIEWS
from schemas.registry import (
    BUYER_ALIAS_CURRENT,
    BUYER_ALIASES,
    BUYER_EVENTS_TABLE,
    BUYER_MERGES_TABLE,
    BUYERS,
    DEAD_LETTER_TABLE,
    EVENT_TABLES,
    LEADS_MINUTE_PARTS,
    MATCHES_TABLE,
    SURGE_ALERTS_TABLE,
)
from streams.identity.stream import BADGE_RECORD_PREFIX

Query = Callable[[str], QueryResult]
# What a rebuild writes: the raw event tables, every stream stage's table, the snapshots.
REBUILT_TABLES: tuple[str, ...] = tuple(t.name for t in EVENT_TABLES) + (
    DEAD_LETTER_TABLE.name, LEADS_MINUTE_PARTS.name, BUYER_EVENTS_TABLE.name,
    BUYER_ALIASES.name, BUYER_MERGES_TABLE.name, BUYERS.name, MATCHES_TABLE.name,
    SURGE_ALERTS_TABLE.name,
) + SNAPSHOT_VIEWS
PROCESSING_COLUMNS = frozenset({
    "ingested_at", "updated_at", "resolved_at", "made_at", "detected_at", "failed_at",
    "source_topic", "source_partition", "source_offset", "source_line",
})
EXAMPLES = 3
COUNTED_ONLY = frozenset({BUYER_MERGES_TABLE.name, BUYER_ALIASES.name})


def _canon(db: str) -> str:
    """(fair_id, buyer_id) -> canon: the smallest event id of the buyer's events."""
    return (f"(SELECT a.fair_id AS fair_id, a.buyer_id AS buyer_id, min(e.event_id) AS canon"
            f" FROM {db}.{BUYER_EVENTS_TABLE.name} AS e FINAL"
            f" INNER JOIN {db}.{BUYER_ALIAS_CURRENT.name} AS a"
            f" ON a.fair_id = e.fair_id AND a.alias = e.alias GROUP BY a.fair_id, a.buyer_id)")


def row_sql(query: Query, db: str, table: str) -> str | None:
    """``SELECT <content expressions> FROM ...`` of ``table`` on ``db`` (module
    docstring); None for a table compared by count only."""
    if table in COUNTED_ONLY:
        return None
    if table == SURGE_ALERTS_TABLE.name:
        return f"SELECT DISTINCT fair_id, cluster_id, surge_start FROM {db}.{table} FINAL"
    info = query(f"SELECT name, type FROM system.columns WHERE database = '{db}'"
                 f" AND table = '{table}' ORDER BY position").rows
    engine = query(f"SELECT engine FROM system.tables WHERE database = '{db}'"
                   f" AND name = '{table}'").rows
    final = " FINAL" if engine and "Replacing" in str(engine[0][0]) else ""
    skip = set(PROCESSING_COLUMNS)
    where = ""
    if table == BUYERS.name:
        # the record count and the records' first and last times: which records exist
        # depends on arrival order (a badge-only record or not)
        skip |= {"version", "merged_into", "records", "first_seen", "last_seen"}
    if table == BUYER_EVENTS_TABLE.name:
        skip.add("alias")
    if table == BUYERS.name:
        where = " WHERE t.merged_into = ''"
    names = {str(n) for n, _ in info}
    exprs = []
    joins = ""
    for name, kind in info:
        name = str(name)
        if name in skip:
            continue
        if name == "buyer_id" and "fair_id" in names:
            if table == BUYER_EVENTS_TABLE.name:
                continue  # the buyer at resolution time: the current one is joined below
            exprs.append("c.canon AS buyer")
            joins = (f" LEFT JOIN {_canon(db)} AS c"
                     f" ON c.fair_id = t.fair_id AND c.buyer_id = t.buyer_id")
            continue
        expr = f"t.`{name}`"
        exprs.append(f"arraySort({expr})" if str(kind).startswith("Array") else expr)
    if table == BUYER_EVENTS_TABLE.name:
        exprs.append("c.canon AS buyer")
        joins = (f" LEFT JOIN {db}.{BUYER_ALIAS_CURRENT.name} AS a"
                 f" ON a.fair_id = t.fair_id AND a.alias = t.alias"
                 f" LEFT JOIN {_canon(db)} AS c ON c.fair_id = a.fair_id"
                 f" AND c.buyer_id = a.buyer_id")
    return f"SELECT {', '.join(exprs)} FROM {db}.{table} AS t{final}{joins}{where}"


def table_differences(query: Query, live: str, shadow: str, table: str) -> dict[str, Any]:
    """Rows per side and rows without an equal on the other side (module docstring)."""
    count = (f"SELECT (SELECT count() FROM {live}.{table}{{f}}),"
             f" (SELECT count() FROM {shadow}.{table}{{f}})")
    if table in COUNTED_ONLY:
        n_live, n_shadow = query(count.format(f=" FINAL")).rows[0]
        return {"table": table, "live_rows": int(n_live), "shadow_rows": int(n_shadow),
                "compared": "count only (depends on arrival order)"}
    sides = {"live": row_sql(query, live, table), "shadow": row_sql(query, shadow, table)}
    hashed = " UNION ALL ".join(
        f"SELECT cityHash64(*) AS h, {i} AS side FROM ({sql})"
        for i, sql in enumerate(sides.values()))
    row = query(
        f"SELECT sum(l), sum(s), sum(greatest(l - s, 0)), sum(greatest(s - l, 0)),"
        f" groupArrayIf(h, l > s), groupArrayIf(h, s > l)"
        f" FROM (SELECT h, countIf(side = 0) AS l, countIf(side = 1) AS s"
        f" FROM ({hashed}) GROUP BY h)").rows[0]
    out: dict[str, Any] = {"table": table, "live_rows": int(row[0]), "shadow_rows": int(row[1]),
                           "only_live": int(row[2]), "only_shadow": int(row[3])}
    for side, hashes in (("live", row[4]), ("shadow", row[5])):
        if hashes:
            picked = ", ".join(str(int(h)) for h in list(hashes)[:EXAMPLES])
            examples = query(f"SELECT * FROM ({sides[side]}) WHERE cityHash64(*) IN ({picked})"
                             f" LIMIT {EXAMPLES}").rows
            out[f"examples_only_{side}"] = [[str(v) for v in r] for r in examples]
    return out


def _partition(buyer_of_alias: dict[str, str]) -> set[frozenset[str]]:
    """Records grouped by buyer, badge-only records left out (whether one exists depends
    on arrival order; the buyer's other records are grouped the same either way)."""
    groups: dict[str, set[str]] = {}
    for alias, buyer in buyer_of_alias.items():
        if not alias.startswith(BADGE_RECORD_PREFIX):
            groups.setdefault(buyer, set()).add(alias)
    return {frozenset(g) for g in groups.values()}


def metric_differences(query: Query, live: str, shadow: str) -> list[dict[str, Any]]:
    """Every parameterless named query on both sides: equal or not (module docstring)."""
    out = []
    for named in q.CATALOGUE:
        if named.params:
            continue
        values = [q.run(named, query, db) for db in (live, shadow)]
        if named is q.BUYER_OF_ALIAS:
            values = [_partition(v) for v in values]
        elif named is q.SURGE_ALERTS:
            values = [sorted((a["fair_id"], a["cluster_id"], str(a["surge_start"]))
                             for a in v) for v in values]
        entry: dict[str, Any] = {"metric": named.name, "equal": values[0] == values[1]}
        if not entry["equal"]:
            entry["live"], entry["shadow"] = (str(v)[:300] for v in values)
        out.append(entry)
    return out


def differences(query: Query, live: str, shadow: str) -> dict[str, Any]:
    """The whole report: tables, metrics, and the number of differences (rows without an
    equal on the other side, plus metrics that differ)."""
    tables = [table_differences(query, live, shadow, t) for t in REBUILT_TABLES]
    metrics = metric_differences(query, live, shadow)
    total = (sum(t.get("only_live", 0) + t.get("only_shadow", 0) for t in tables)
             + sum(1 for m in metrics if not m["equal"]))
    return {"differences": total, "tables": tables, "metrics": metrics}

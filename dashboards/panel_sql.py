"""Run a built dashboard's panel queries as Grafana would: variables, then macros, then SQL.

Used by the tests (every panel against a simulated fair on the real engine) and by
``leadloom bench --dashboards`` (every panel timed). The SQL run is the ``rawSql`` of the
dashboard's JSON model, the file Grafana reads, not a second copy.

A query variable takes the first value its SQL returns (Grafana's default when the
dashboard has no saved value); a constant, its value.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from core.reads import QueryResult
from dashboards.build import BuiltDashboard
from dashboards.macros import TimeRange, expand
from dashboards.style import Kind, PanelSpec

Query = Callable[[str], QueryResult]


class PanelQueryError(RuntimeError):
    """A variable query returned nothing, or a panel's SQL failed (one line, the panel named)."""


@dataclass(frozen=True)
class PanelRun:
    """One panel query run: what ran, what came back, how long the engine took."""

    dashboard: str  # uid
    spec: PanelSpec
    sql: str  # macros expanded, variables substituted
    result: QueryResult
    ms: float


def variable_values(built: BuiltDashboard, query: Query,
                    time_range: TimeRange) -> dict[str, str]:
    """Every variable of ``built``'s model with the value Grafana would start with."""
    values: dict[str, str] = {}
    for variable in (built.file.model.get("templating") or {}).get("list", []):
        name, sql = str(variable["name"]), str(variable.get("query") or "")
        if variable.get("type") == "constant":
            values[name] = sql
            continue
        rows = query(expand(sql, time_range, values)).rows
        if not rows:
            raise PanelQueryError(f"{built.file.uid}: variable {name} has no value")
        values[name] = str(rows[0][0])
    return values


def panel_sql(built: BuiltDashboard) -> Iterator[tuple[PanelSpec, str]]:
    """Each panel's spec with the ``rawSql`` of its target in the written model."""
    raw = {int(p["id"]): str(p["targets"][0]["rawSql"])
           for p in built.file.model.get("panels", [])}
    for spec in built.spec.panels:
        yield spec, raw[spec.id]


def run_panels(built: BuiltDashboard, query: Query, time_range: TimeRange,
               variables: dict[str, str] | None = None) -> list[PanelRun]:
    """Run every panel of ``built`` once; raises :class:`PanelQueryError` naming the panel
    on the first failure."""
    values = variables if variables is not None else variable_values(built, query, time_range)
    runs = []
    for spec, raw in panel_sql(built):
        sql = expand(raw, time_range, values)
        started = time.perf_counter()
        try:
            result = query(sql)
        except Exception as exc:  # the engine's reason, with the panel that failed
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            raise PanelQueryError(f"{built.file.uid} panel {spec.id} ({spec.en}): {first}"
                                  ) from exc
        runs.append(PanelRun(built.file.uid, spec, sql, result,
                             round((time.perf_counter() - started) * 1000, 1)))
    return runs


def shape_problems(run: PanelRun) -> list[str]:
    """How a panel's answer differs from what its kind needs (empty when it fits): the
    declared columns in order; a time series' first column a time with numeric values
    after any label columns; at least one row."""
    out = []
    where = f"{run.dashboard} panel {run.spec.id} ({run.spec.en})"
    result = run.result
    if not result.rows:
        return [f"{where}: no rows"]
    if tuple(result.columns) != run.spec.columns:
        out.append(f"{where}: columns {result.columns}, declared {list(run.spec.columns)}")
        return out
    if run.spec.kind is Kind.TIMESERIES:
        if result.columns[0] != "time":
            out.append(f"{where}: a time series starts with its time column")
        for row in result.rows:
            if not _is_time(row[0]):
                out.append(f"{where}: time value {row[0]!r} is not a time")
                break
            values = [v for v in row[1:] if not isinstance(v, str)]
            if not values or not all(_is_number(v) for v in values):
                out.append(f"{where}: row {row!r} has no numeric values")
                break
    return out


def _is_time(value: Any) -> bool:
    from datetime import datetime

    if isinstance(value, datetime):
        return True
    try:
        datetime.fromisoformat(str(value))
    except ValueError:
        return False
    return True


def _is_number(value: Any) -> bool:
    from decimal import Decimal

    return value is None or (isinstance(value, int | float | Decimal)
                             and not isinstance(value, bool))

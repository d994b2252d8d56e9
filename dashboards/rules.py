"""The project's rules for a dashboard model (the SDK's ``from_json`` parses, never checks).

:func:`problems` lists every broken rule of one dashboard JSON model; the build refuses a
dashboard with any (:func:`check`). The rules:

- panel ids are unique integers;
- every ``gridPos`` lies within the 24 columns (``x >= 0``, ``w >= 1``, ``x + w <= 24``,
  ``h >= 1``) and no two panels overlap;
- the wall fits one 1920x1080 screen: at most :data:`WALL_ROWS` grid rows, and refreshes at
  least every :data:`WALL_REFRESH_MAX_S` seconds;
- refIds are unique within a panel; every target is a SQL target of the project's
  ClickHouse data source (fixed uid);
- only macros the plugin knows (:data:`dashboards.macros.KNOWN`); every ``${var}`` is a
  variable the dashboard defines, quoted explicitly (``:singlequote`` / ``:sqlstring``),
  and no bare ``$var`` (the plugin leaves a bare value unquoted);
- time series panels' targets use format 0 (time series), all others format 1 (table).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from dashboards.macros import KNOWN, QUOTE_FORMATS, macro_names, variable_uses
from dashboards.query import DATASOURCE_TYPE, DATASOURCE_UID, EDITOR_SQL, Format

GRID_COLUMNS = 24
WALL_ROWS = 30  # 1080 px in kiosk mode: about 27-30 rows of 30 px
WALL_REFRESH_MAX_S = 10
_BARE_VARIABLE = re.compile(r"\$(?!__)(?!\{)[A-Za-z_]\w*")
_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d)$")
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


class DashboardRuleError(ValueError):
    """A dashboard breaks the project's rules; the message lists each broken rule."""


def check(model: dict[str, Any], wall: bool = False) -> None:
    """Raise :class:`DashboardRuleError` naming every rule ``model`` breaks."""
    found = problems(model, wall)
    if found:
        raise DashboardRuleError(f"dashboard {model.get('uid')}: " + "; ".join(found))


def problems(model: dict[str, Any], wall: bool = False) -> list[str]:
    """Every broken rule of ``model`` (a dashboard JSON object), as one line each."""
    out: list[str] = []
    panels = list(_panels(model))
    ids = [p.get("id") for p in panels]
    for pid in sorted({i for i in ids if ids.count(i) > 1}, key=str):
        out.append(f"panel id {pid} is used {ids.count(pid)} times")
    out.extend(f"panel {p.get('title')!r} has no integer id" for p in panels
               if not isinstance(p.get("id"), int))
    out.extend(_grid_problems(panels))
    if wall:
        bottom = max((_grid(p)[1] + _grid(p)[3] for p in panels), default=0)
        if bottom > WALL_ROWS:
            out.append(f"the wall is {bottom} rows high, over one screen ({WALL_ROWS})")
        refresh = _seconds(str(model.get("refresh") or ""))
        if refresh is None or refresh > WALL_REFRESH_MAX_S:
            out.append(f"the wall refreshes every {model.get('refresh')!r}, not within"
                       f" {WALL_REFRESH_MAX_S} s")
    defined = {v.get("name") for v in (model.get("templating") or {}).get("list", [])}
    for panel in panels:
        out.extend(_target_problems(panel, defined))
    for variable in (model.get("templating") or {}).get("list", []):
        query = variable.get("query")
        if isinstance(query, str) and variable.get("type") == "query":
            out.extend(_sql_problems(f"variable {variable.get('name')}", query, defined))
    return out


def _panels(model: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in model.get("panels") or []:
        yield panel
        yield from panel.get("panels") or []  # a row's panels


def _grid(panel: dict[str, Any]) -> tuple[int, int, int, int]:
    g = panel.get("gridPos") or {}
    return (int(g.get("x", -1)), int(g.get("y", -1)), int(g.get("w", 0)), int(g.get("h", 0)))


def _grid_problems(panels: list[dict[str, Any]]) -> list[str]:
    out = []
    for p in panels:
        x, y, w, h = _grid(p)
        if x < 0 or y < 0 or w < 1 or h < 1 or x + w > GRID_COLUMNS:
            out.append(f"panel {p.get('id')} gridPos {(x, y, w, h)} is outside the"
                       f" {GRID_COLUMNS} columns")
    for i, a in enumerate(panels):
        for b in panels[i + 1:]:
            ax, ay, aw, ah = _grid(a)
            bx, by, bw, bh = _grid(b)
            if ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah:
                out.append(f"panels {a.get('id')} and {b.get('id')} overlap")
    return out


def _target_problems(panel: dict[str, Any], defined: set[Any]) -> list[str]:
    out = []
    where = f"panel {panel.get('id')}"
    targets = panel.get("targets") or []
    refs = [t.get("refId") for t in targets]
    for ref in sorted({r for r in refs if refs.count(r) > 1}, key=str):
        out.append(f"{where}: refId {ref} is used {refs.count(ref)} times")
    expected = Format.TIME_SERIES if panel.get("type") == "timeseries" else Format.TABLE
    for t in targets:
        ds = t.get("datasource") or {}
        if ds.get("type") != DATASOURCE_TYPE or ds.get("uid") != DATASOURCE_UID:
            out.append(f"{where}: target {t.get('refId')} is not on data source"
                       f" {DATASOURCE_UID} ({DATASOURCE_TYPE})")
        if t.get("editorType") != EDITOR_SQL:
            out.append(f"{where}: target {t.get('refId')} is not a SQL target")
        if t.get("format") != expected:
            out.append(f"{where} ({panel.get('type')}): target {t.get('refId')} has format"
                       f" {t.get('format')}, expected {int(expected)}")
        out.extend(_sql_problems(where, str(t.get("rawSql") or ""), defined))
    return out


def _sql_problems(where: str, sql: str, defined: set[Any]) -> list[str]:
    out: list[str] = []
    out.extend(f"{where}: unknown macro $__{name}" for name in macro_names(sql)
               if name not in KNOWN)
    for name, fmt in variable_uses(sql):
        if name not in defined:
            out.append(f"{where}: variable ${{{name}}} is not defined")
        if fmt not in QUOTE_FORMATS:
            out.append(f"{where}: variable ${{{name}}} is not quoted (use :singlequote)")
    out.extend(f"{where}: bare variable {m} (write ${{name:singlequote}})"
               for m in _BARE_VARIABLE.findall(sql))
    return out


def _seconds(duration: str) -> float | None:
    match = _DURATION.match(duration)
    return None if match is None else int(match.group(1)) * _SECONDS[match.group(2)]

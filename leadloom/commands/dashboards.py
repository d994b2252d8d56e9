"""``leadloom dashboards build [--out DIR]``: write the dashboards and Grafana provisioning.

The tree (``dashboards.build``): the ClickHouse data source and one file provider per folder
under ``provisioning/``, each dashboard under ``dashboards/<folder uid>/<uid>.json``. The
committed tree is ``infra/grafana``; ``tests/unit/test_dashboard_build.py`` rebuilds it and
fails on any drift, so rebuild and commit after changing a dashboard.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.settings import Settings

DEFAULT_OUT = Path("infra") / "grafana"  # relative to the working directory


def build(settings: Settings, out: Path, progress: Callable[[str], None]) -> dict[str, Any]:
    """Write the tree under ``out``; the summary ``--json`` prints: ``{"out", "files",
    "written", "removed", "dashboards", "panels", "language", "database"}``. Raises
    ``dashboards.rules.DashboardRuleError`` (one line per dashboard) when a dashboard
    breaks the project's rules, before anything is written."""
    from dashboards.build import write_tree

    summary = write_tree(settings, out)
    progress(f"{summary['dashboards']} dashboards, {summary['panels']} panels in {out}:"
             f" {len(summary['written'])} file(s) written, {len(summary['removed'])} removed")
    return {**summary, "language": settings.dashboard_language,
            "database": settings.clickhouse_database}

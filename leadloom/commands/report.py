"""``leadloom report``: a delegation's post-fair report (``leadloom.report``).

The report reads only through a query scoped to the delegation
(``core.owner.read_query`` with ``schemas.scope.delegation_scope``: the engine filters every
table by the cluster and refuses the others), each statement also naming the cluster in its
own SQL (``leadloom.report.data``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.owner import read_query
from core.reads import QueryResult
from core.settings import Settings
from leadloom.report import make_report
from leadloom.report.text import Lang
from schemas.reference import CLUSTERS_BY_ID
from schemas.scope import delegation_scope


def run_report(settings: Settings, cluster_id: str, out_dir: Path, *, lang: Lang = "zh",
               fair: str | None = None, progress: Callable[[str], None] | None = None
               ) -> dict[str, Any]:
    """Write the report files of ``cluster_id``; the summary ``--json`` prints.

    Raises ``ValueError`` (one line) for an unknown cluster, before anything is read, and
    ``StoreError`` when the store cannot answer.
    """
    if cluster_id not in CLUSTERS_BY_ID:
        raise ValueError(f"unknown cluster {cluster_id!r}: one of {', '.join(CLUSTERS_BY_ID)}")

    scope = delegation_scope(cluster_id)

    def query(sql: str) -> QueryResult:
        return read_query(settings, sql, scope=scope)

    report = make_report(query, settings.clickhouse_database, cluster_id, out_dir,
                         lang=lang, fair=fair, now=datetime.now(UTC), progress=progress)
    return report.summary()

"""Dashboard variables shared by the wall and the delegation dashboards.

``fair``: the fair the panels show, a query variable whose first option (Grafana's default
when none is saved) is the fair with the latest event-time window stored, so a wall shows
the running fair without anyone picking it. Panels quote it ``${fair:singlequote}``.
``cluster``: a delegation's cluster, a hidden constant: fixed per dashboard, never a
dropdown (and not a data boundary either: see ARCHITECTURE.md, "Dashboards: push").
"""

from __future__ import annotations

from dashboards.style import VariableSpec
from schemas.registry import MOMENTUM_CLUSTER_HOUR

FAIR = "${fair:singlequote}"
CLUSTER = "${cluster:singlequote}"


def fair_variable(db: str) -> VariableSpec:
    # the hourly momentum snapshot: a few rows per fair and hour, read in milliseconds
    sql = (f"SELECT fair_id FROM {db}.{MOMENTUM_CLUSTER_HOUR.name}"
           " GROUP BY fair_id ORDER BY max(window_start) DESC, fair_id")
    return VariableSpec("fair", "query", sql, "展会", "Fair")


def cluster_variable(cluster_id: str) -> VariableSpec:
    return VariableSpec("cluster", "constant", cluster_id)

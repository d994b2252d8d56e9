"""A delegation's dashboard: one per cluster (``schemas.reference.CLUSTERS``), same panels.

The cluster is the hidden constant variable ``cluster`` of each dashboard, never a dropdown.
That keeps a delegation's dashboard on its cluster; it is not a data boundary (any Grafana
user of the org can send SQL to the data source): ARCHITECTURE.md, "Dashboards: push".

Contact data: the hot leads table shows the buyer's masked name and company from
``delegation_buyers`` (the cluster's own buyers, masked profile only, emptied without
consent: what a delegation may read); no panel selects a hash or any other contact column.
"""

from __future__ import annotations

from dashboards.style import DashboardSpec, Grid, Kind, PanelSpec
from dashboards.variables import CLUSTER, FAIR, cluster_variable, fair_variable
from schemas.reference import Cluster
from schemas.registry import (
    DELEGATION_BUYERS,
    FUNNEL_BY_CLUSTER,
    LEAD_SCORES_CLUSTER,
    LEAD_SCORES_EXHIBITOR,
    MATCH_OUTCOMES,
    MOMENTUM_CLUSTER_5M,
    SCANS,
)

HOT_LEADS = 20  # rows of the hot leads table
_SCOPE = f"fair_id = {FAIR} AND cluster_id = {CLUSTER}"


def delegation_uid(cluster_id: str) -> str:
    return f"leadloom-delegation-{cluster_id}"


def delegation(db: str, cluster: Cluster) -> DashboardSpec:
    """The dashboard of ``cluster``'s delegation on database ``db``."""
    t = f"{db}."
    leads_c = t + LEAD_SCORES_CLUSTER.name
    panels = (
        PanelSpec(
            1, "独立买家", "Unique buyers", Kind.STAT,
            f"SELECT uniqExact(buyer_id) AS buyers FROM {leads_c} WHERE {_SCOPE}",
            Grid(0, 0, 6, 4), ("buyers",),
            description="resolved buyers (merges applied) with a scan, inquiry or step here"),
        PanelSpec(
            2, "回头客", "Repeat visitors", Kind.STAT,
            "SELECT countIf(scans >= 2) AS repeat_visitors,"
            " countIf(length(scan_days) >= 2) AS returned_another_day"
            f" FROM {leads_c} WHERE {_SCOPE}",
            Grid(6, 0, 6, 4), ("repeat_visitors", "returned_another_day"),
            description="resolved buyers who scanned at the cluster's booths twice or more;"
                        " of them, those who came back on another day"),
        PanelSpec(
            3, "热门线索数", "Hot leads", Kind.STAT,
            f"SELECT countIf(tier = 'hot') AS hot, countIf(tier = 'warm') AS warm"
            f" FROM {leads_c} WHERE {_SCOPE}",
            Grid(12, 0, 6, 4), ("hot", "warm")),
        PanelSpec(
            4, "撮合与意向", "Matches and intents", Kind.STAT,
            "SELECT count() AS matches, countIf(intent = 1) AS intents,"
            " countIf(intent = 1) / nullIf(count(), 0) AS intent_rate"
            f" FROM {t}{MATCH_OUTCOMES.name} WHERE {_SCOPE}",
            Grid(18, 0, 6, 4), ("matches", "intents", "intent_rate")),
        PanelSpec(
            5, "各展位每小时客流", "Traffic per booth and hour", Kind.TIMESERIES,
            "SELECT toStartOfHour(occurred_at) AS time, booth_id,"
            f" uniqExact(badge_id) AS visitors FROM {t}{SCANS.name} FINAL"
            f" WHERE {_SCOPE} AND $__timeFilter_ms(occurred_at)"
            " GROUP BY time, booth_id ORDER BY time, booth_id",
            Grid(0, 4, 14, 9), ("time", "booth_id", "visitors"),
            description="distinct badges scanned per booth and hour (event time)"),
        PanelSpec(
            6, "采购热度 对比全场", "Momentum against the fair", Kind.TIMESERIES,
            "SELECT window_start AS time, events AS cluster_events,"
            " round(expected, 2) AS expected_from_fair, round(momentum_score, 2) AS z_score"
            f" FROM {t}{MOMENTUM_CLUSTER_5M.name}"
            f" WHERE {_SCOPE} AND $__timeFilter_ms(window_start) ORDER BY time",
            Grid(14, 4, 10, 9), ("time", "cluster_events", "expected_from_fair", "z_score"),
            description="the cluster's events per 5 minutes against what its recent share"
                        " of the whole fair's events predicts"),
        PanelSpec(
            7, "热门线索", "Hot leads, best first", Kind.TABLE,
            "SELECT l.buyer_id AS buyer_id, b.name_masked AS name, b.company AS company,"
            " l.exhibitor_id AS exhibitor_id, round(l.score, 1) AS score, l.tier AS tier,"
            f" l.last_activity AS last_activity FROM {t}{LEAD_SCORES_EXHIBITOR.name} AS l"
            " LEFT JOIN (SELECT buyer_id, name_masked, company"
            f" FROM {t}{DELEGATION_BUYERS.name} WHERE {_SCOPE}) AS b ON b.buyer_id = l.buyer_id"
            f" WHERE l.fair_id = {FAIR} AND l.cluster_id = {CLUSTER}"
            f" ORDER BY l.score DESC, l.buyer_id, l.exhibitor_id LIMIT {HOT_LEADS}",
            Grid(0, 13, 14, 9),
            ("buyer_id", "name", "company", "exhibitor_id", "score", "tier", "last_activity")),
        PanelSpec(
            8, "集群漏斗", "The cluster's funnel", Kind.TABLE,
            "SELECT stage, buyers, pairs, events, value_cny,"
            f" round(conversion, 3) AS conversion FROM {t}{FUNNEL_BY_CLUSTER.name}"
            f" WHERE {_SCOPE} ORDER BY stage_order",
            Grid(14, 13, 10, 9),
            ("stage", "buyers", "pairs", "events", "value_cny", "conversion")),
        PanelSpec(
            9, "撮合结果 按展商", "Matches per exhibitor", Kind.TABLE,
            "SELECT exhibitor_id, count() AS matches, countIf(visited = 1) AS visited,"
            " countIf(sampled = 1) AS sampled, countIf(intent = 1) AS intents,"
            " countIf(ordered = 1) AS orders, sum(order_value_cny) AS order_value_cny"
            f" FROM {t}{MATCH_OUTCOMES.name} WHERE {_SCOPE}"
            " GROUP BY exhibitor_id ORDER BY matches DESC, exhibitor_id LIMIT 20",
            Grid(0, 22, 24, 8),
            ("exhibitor_id", "matches", "visited", "sampled", "intents", "orders",
             "order_value_cny")),
    )
    return DashboardSpec(
        delegation_uid(cluster.id), f"{cluster.name_zh}代表团", f"{cluster.name_en} delegation",
        panels, (fair_variable(db), cluster_variable(cluster.id)),
        tags=("leadloom", "delegation", cluster.id))

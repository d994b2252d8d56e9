"""The organizers' wall (大屏): one 1920x1080 hall screen in kiosk mode, refreshed every 10 s.

24 columns x 28 rows of 30 px, four bands: headline figures; scans and inquiries per minute
beside procurement momentum per cluster; leads per cluster ranked, the momentum ranking
and the funnel; surge alerts, professional buyers against the previous season and dead
letters by reason. Open it as
``/d/leadloom-wall?kiosk&autofitpanels&_dash.hideTimePicker&_dash.hideVariables&_dash.hideLinks``.

Where each number comes from: the lead intelligence snapshots (``INTELLIGENCE_VIEWS``,
refreshed by the store owner when the inputs change), the stream's per-minute leads
(``leads_per_cluster_minute``), ``surge_alerts`` and ``dead_letters`` (``FINAL``, one row
per surge / failed message).
"""

from __future__ import annotations

from dashboards.style import DashboardSpec, Grid, Kind, PanelSpec
from dashboards.variables import FAIR, fair_variable
from schemas.registry import (
    DEAD_LETTER_TABLE,
    FUNNEL_BY_CLUSTER,
    LEAD_SCORES_CLUSTER,
    LEADS_PER_CLUSTER_MINUTE,
    MATCHMAKING_KPIS,
    MOMENTUM_CLUSTER_5M,
    MOMENTUM_RANKING,
    SEASON_COMPARISON,
    SURGE_ALERTS_TABLE,
)

WALL_UID = "leadloom-wall"
REFRESH = "10s"
ON_SITE_MINUTES = 30  # "on site now": active (scan, inquiry or step) in the last 30 minutes
# a dead letter is one failed message (or derived row) by its origin, as the CLI counts it
_DEAD_LETTER = ("uniqExact(origin_topic, origin_partition, origin_offset, origin_line,"
                " raw_sha256)")


def wall(db: str) -> DashboardSpec:
    """The wall's panels on database ``db``."""
    t = f"{db}."
    leads_c, kpis = t + LEAD_SCORES_CLUSTER.name, t + MATCHMAKING_KPIS.name
    dead, minute = t + DEAD_LETTER_TABLE.name, t + LEADS_PER_CLUSTER_MINUTE.name
    panels = (
        PanelSpec(
            1, "现场买家", "Buyers on site now", Kind.STAT,
            f"SELECT uniqExact(buyer_id) AS buyers_on_site FROM {leads_c}"
            f" WHERE fair_id = {FAIR}"
            f" AND last_activity > $__toTime_ms - INTERVAL {ON_SITE_MINUTES} MINUTE"
            " AND last_activity <= $__toTime_ms",
            Grid(0, 0, 4, 4), ("buyers_on_site",),
            description=f"resolved buyers with a scan, inquiry or procurement step in the"
                        f" {ON_SITE_MINUTES} minutes before the end of the time range"),
        PanelSpec(
            2, "扫码与询盘", "Scans and inquiries", Kind.STAT,
            f"SELECT sum(scans) AS scans, sum(inquiries) AS inquiries FROM {minute}"
            " WHERE $__timeFilter(minute)",
            Grid(4, 0, 5, 4), ("scans", "inquiries")),
        PanelSpec(
            3, "专业买家 对比上届", "Professional buyers vs previous season", Kind.STAT,
            "SELECT sum(professional_buyers) AS this_season,"
            " sum(previous_professional_buyers) AS previous_season"
            f" FROM {t}{SEASON_COMPARISON.name} WHERE fair_id = {FAIR}",
            Grid(9, 0, 5, 4), ("this_season", "previous_season")),
        PanelSpec(
            4, "撮合与意向率", "Matches and intent rate", Kind.STAT,
            "SELECT sumIf(pairs, introduced_by = 'match') AS matched_pairs,"
            " sumIf(intent, introduced_by = 'match')"
            " / nullIf(sumIf(pairs, introduced_by = 'match'), 0) AS match_intent_rate,"
            " sumIf(intent, introduced_by = 'no_match')"
            " / nullIf(sumIf(pairs, introduced_by = 'no_match'), 0) AS other_intent_rate"
            f" FROM {kpis} WHERE fair_id = {FAIR}",
            Grid(14, 0, 6, 4), ("matched_pairs", "match_intent_rate", "other_intent_rate"),
            description="buyer-exhibitor pairs a match introduced; the share that reached a"
                        " cooperation intent, against pairs no match introduced"),
        PanelSpec(
            5, "死信", "Dead letters", Kind.STAT,
            f"SELECT {_DEAD_LETTER} AS dead_letters FROM {dead} FINAL"
            " WHERE $__timeFilter_ms(failed_at)",
            Grid(20, 0, 4, 4), ("dead_letters",)),
        PanelSpec(
            6, "每分钟扫码与询盘", "Scans and inquiries per minute", Kind.TIMESERIES,
            "SELECT minute AS time, sum(scans) AS scans, sum(inquiries) AS inquiries"
            f" FROM {minute} WHERE $__timeFilter(minute) GROUP BY time ORDER BY time",
            Grid(0, 4, 12, 8), ("time", "scans", "inquiries")),
        PanelSpec(
            7, "各集群采购热度", "Procurement momentum per cluster", Kind.TIMESERIES,
            "SELECT window_start AS time, cluster_id, momentum_score"
            f" FROM {t}{MOMENTUM_CLUSTER_5M.name}"
            f" WHERE fair_id = {FAIR} AND $__timeFilter_ms(window_start)"
            " ORDER BY time, cluster_id",
            Grid(12, 4, 12, 8), ("time", "cluster_id", "momentum_score"),
            description="Poisson z-score of each cluster's events against its recent share of"
                        " the fair's (5-minute windows); a surge is 6 or more"),
        PanelSpec(
            8, "各集群线索排名", "Leads per cluster, ranked", Kind.BARGAUGE,
            f"SELECT cluster_id, count() AS leads FROM {leads_c} WHERE fair_id = {FAIR}"
            " GROUP BY cluster_id ORDER BY leads DESC, cluster_id",
            Grid(0, 12, 8, 8), ("cluster_id", "leads"),
            description="resolved buyers with a lead (scan, inquiry or step) per cluster"),
        PanelSpec(
            9, "采购热度排名", "Momentum ranking now", Kind.TABLE,
            "SELECT rank, cluster_id, round(momentum_score, 2) AS momentum_score, events,"
            f" round(expected, 1) AS expected FROM {t}{MOMENTUM_RANKING.name}"
            f" WHERE fair_id = {FAIR} ORDER BY rank LIMIT 10",
            Grid(8, 12, 8, 8), ("rank", "cluster_id", "momentum_score", "events", "expected"),
            description="the latest complete 5-minute window"),
        PanelSpec(
            10, "采购漏斗", "Procurement funnel", Kind.BARGAUGE,
            f"SELECT stage, sum(pairs) AS pairs FROM {t}{FUNNEL_BY_CLUSTER.name}"
            f" WHERE fair_id = {FAIR} GROUP BY stage, stage_order ORDER BY stage_order",
            Grid(16, 12, 8, 8), ("stage", "pairs"),
            description="buyer-exhibitor pairs reaching each stage"),
        PanelSpec(
            11, "激增警报", "Surge alerts", Kind.TABLE,
            "SELECT surge_start, cluster_id, events, round(expected, 1) AS expected,"
            " round(momentum_score, 1) AS momentum_score, value_cny"
            f" FROM {t}{SURGE_ALERTS_TABLE.name} FINAL"
            f" WHERE fair_id = {FAIR} AND $__timeFilter(surge_start)"
            " ORDER BY surge_start DESC, cluster_id LIMIT 10",
            Grid(0, 20, 8, 8),
            ("surge_start", "cluster_id", "events", "expected", "momentum_score", "value_cny")),
        PanelSpec(
            12, "专业买家 各集群对比上届", "Professional buyers per cluster vs previous season",
            Kind.TABLE,
            "SELECT cluster_id, sum(professional_buyers) AS buyers_now,"
            " sum(previous_professional_buyers) AS buyers_previous,"
            " round(100 * (buyers_now - buyers_previous) / nullIf(buyers_previous, 0), 1)"
            f" AS change_pct FROM {t}{SEASON_COMPARISON.name} WHERE fair_id = {FAIR}"
            " GROUP BY cluster_id ORDER BY buyers_now DESC, cluster_id",
            Grid(8, 20, 8, 8), ("cluster_id", "buyers_now", "buyers_previous", "change_pct")),
        PanelSpec(
            13, "死信原因", "Dead letters by reason", Kind.BARGAUGE,
            f"SELECT reason, {_DEAD_LETTER} AS dead_letters FROM {dead} FINAL"
            " WHERE $__timeFilter_ms(failed_at) GROUP BY reason"
            " ORDER BY dead_letters DESC, reason",
            Grid(16, 20, 8, 8), ("reason", "dead_letters")),
    )
    return DashboardSpec(WALL_UID, "展会大屏", "Fair wall", panels, (fair_variable(db),),
                         refresh=REFRESH, tags=("leadloom", "wall"))

"""The report's wording in Chinese (``zh``, the default) and English (``en``).

Every title, label and sentence the report shows is a key of :data:`TEXT`; the funnel
stages, lead tiers and procurement steps keep the names they have in the store (English
identifiers) and are translated for display only. Numbers are formatted here too, so the
HTML and the PDF show a figure the same way.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")

TEXT: dict[str, tuple[str, str]] = {  # key -> (zh, en)
    "title": ("{cluster}代表团 展后报告", "{cluster} delegation: post-fair report"),
    "subtitle": ("展会 {fair} · 生成于 {at}", "Fair {fair} · generated {at}"),
    "no_data": ("本展会没有{cluster}集群的数据：没有扫码、询盘或线索。",
                "No data for the {cluster} cluster at this fair: no scans, inquiries or"
                " leads."),
    "no_fair": ("尚无任何展会数据。", "No fair has data yet."),
    "scope_note": ("仅含本集群的数据（按集群过滤读取）。时间为展会当地时间 (UTC+8)。",
                   "Only this cluster's data (reads filtered by cluster). Times are the"
                   " fair's local time (UTC+8)."),
    "summary": ("概览", "Summary"),
    "unique_buyers": ("独立买家", "Unique buyers"),
    "unique_buyers_note": ("已识别买家（合并后）", "resolved buyers (merges applied)"),
    "scans": ("扫码次数", "Scans"),
    "visitors": ("到访胸卡", "Visiting badges"),
    "inquiries": ("询盘", "Inquiries"),
    "repeat_visitors": ("回头客", "Repeat visitors"),
    "hot_leads": ("热门线索", "Hot leads"),
    "warm_leads": ("温线索", "Warm leads"),
    "matches": ("撮合", "Matches"),
    "intents": ("合作意向", "Intents"),
    "orders": ("订单", "Orders"),
    "order_value": ("订单金额 (元)", "Order value (CNY)"),
    "traffic": ("每日每小时客流", "Traffic per day and hour"),
    "traffic_day": ("{day}（{scans} 次扫码）", "{day} ({scans} scans)"),
    "hour": ("时 (UTC+8)", "Hour (UTC+8)"),
    "top_booths": ("热门展位", "Top booths"),
    "booth": ("展位", "Booth"),
    "exhibitor": ("展商", "Exhibitor"),
    "buyers_per_day": ("每日独立买家（扫码）", "Unique buyers per day (scanned)"),
    "day": ("日期", "Day"),
    "buyers": ("买家", "Buyers"),
    "hot_leads_table": ("热门线索（评分最高者，姓名已脱敏）",
                        "Hot leads, best first (names masked)"),
    "no_hot_leads": ("没有热门线索。", "No hot leads."),
    "lead_tiers": ("线索分级", "Leads by tier"),
    "buyer": ("买家", "Buyer"),
    "name": ("姓名", "Name"),
    "company": ("公司", "Company"),
    "country": ("国家", "Country"),
    "score": ("评分", "Score"),
    "furthest_step": ("最远阶段", "Furthest step"),
    "last_activity": ("最近活动", "Last activity"),
    "funnel": ("集群漏斗", "The cluster's funnel"),
    "stage": ("阶段", "Stage"),
    "pairs": ("买家-展商对", "Pairs"),
    "events": ("事件", "Events"),
    "value_cny": ("金额 (元)", "Value (CNY)"),
    "conversion": ("转化率", "Conversion"),
    "match_outcomes": ("撮合结果", "Match outcomes"),
    "matches_by_exhibitor": ("撮合结果 按展商", "Matches per exhibitor"),
    "visited": ("到访", "Visited"),
    "sampled": ("索样", "Sampled"),
    "momentum": ("采购热度 对比全场", "Momentum against the fair"),
    "cluster_events": ("本集群事件/小时", "Cluster events per hour"),
    "expected": ("按全场份额预期", "Expected from the fair"),
    "z_score": ("热度 z 值", "z-score"),
    "surges": ("热度激增窗口 (5 分钟)", "Surge windows (5 minutes)"),
    "first_surge": ("首次激增", "First surge"),
    "peak_z": ("最高 z 值", "Peak z-score"),
    "none": ("无", "none"),
    "page": ("第 {n} 页", "Page {n}"),
}

DISPLAY: dict[str, tuple[str, str]] = {  # store identifiers -> (zh, en)
    "scan": ("扫码", "Scan"),
    "inquiry": ("询盘", "Inquiry"),
    "sample_request": ("索样", "Sample request"),
    "quote_request": ("询价", "Quote request"),
    "cooperation_intent": ("合作意向", "Cooperation intent"),
    "purchase_order": ("采购订单", "Purchase order"),
    "hot": ("热", "Hot"),
    "warm": ("温", "Warm"),
    "cold": ("冷", "Cold"),
}


def text(lang: Lang, key: str, **values: object) -> str:
    """The wording of ``key`` in ``lang``, with ``{name}`` fields filled from ``values``.

    Raises ``KeyError`` for an unknown key (a typo must fail the tests, not print a key).
    """
    zh, en = TEXT[key]
    return (zh if lang == "zh" else en).format(**values)


def display(lang: Lang, identifier: str | None) -> str:
    """A stage, tier or step identifier as shown; unknown ones as they are, None as ''."""
    if not identifier:
        return ""
    pair = DISPLAY.get(identifier)
    return identifier if pair is None else pair[0 if lang == "zh" else 1]


def number(value: int | float | Decimal | None, digits: int = 0) -> str:
    """A figure with thousands separators; ``digits`` decimals; None as an en dash."""
    if value is None:
        return "–"
    return f"{float(value):,.{digits}f}" if digits else f"{round(float(value)):,}"


def percent(value: float | None) -> str:
    """A ratio (0.25) as a percentage (25.0%); None as an en dash."""
    return "–" if value is None else f"{100 * float(value):.1f}%"


def moment(value: datetime | date | None) -> str:
    """A day (``2026-03-26``) or a moment to the minute (``2026-03-26 14:05``)."""
    if value is None:
        return "–"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return value.isoformat()

"""The report's charts, drawn with matplotlib into axes the HTML and the PDF lay out.

Chinese text needs a CJK font: Noto Sans SC (SIL Open Font License 1.1) from the PyPI
package ``pylopdf-fonts-zh-cn``, a single OpenType face (not a TTC collection), so no
face index has to be picked; it is registered with matplotlib once per process and is
the first family of every text (DejaVu Sans, matplotlib's own, as the fallback). Its
outlines are CFF, which matplotlib's PDF backend embeds correctly only as Type 3 fonts
(``pdf.fonttype`` 3, its default: Type 42 would write CFF outlines as TrueType); SVG
draws text as paths, so the HTML page shows the charts with no font installed.

Figures are ``matplotlib.figure.Figure`` objects (no pyplot state), so reports can be
drawn in any thread. ``draw_*`` functions fill one axes and say nothing when their data
is empty (the caller decides whether to show the chart).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import matplotlib
import matplotlib.dates as mdates
from matplotlib import font_manager
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from leadloom.report.data import ReportData
from leadloom.report.text import Lang, display, text
from schemas.reference import booths_by_id

PALETTE = ("#1f5f8b", "#e07b39", "#3a9b5c", "#b8433f", "#7a5ea8", "#8c6d46", "#c45c9b")
TIER_COLOURS = {"hot": "#b8433f", "warm": "#e07b39", "cold": "#1f5f8b"}


@cache
def cjk_font() -> str:
    """Register the CJK font with matplotlib; its family name ("Noto Sans SC").

    Raises ``RuntimeError`` (one line) when the font package is not installed.
    """
    try:
        from pylopdf_fonts_zh_cn import sans_path
    except ImportError:
        raise RuntimeError("the Chinese font package 'pylopdf-fonts-zh-cn' is not installed:"
                           " run ./dev setup") from None
    path = str(sans_path())
    font_manager.fontManager.addfont(path)
    return str(font_manager.FontProperties(fname=path).get_name())


def rc() -> dict[Any, Any]:
    """The report's matplotlib settings (fonts, PDF font type, quiet metadata)."""
    return {
        "font.family": [cjk_font(), "DejaVu Sans"],
        "pdf.fonttype": 3,
        "svg.fonttype": "path",
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.titlesize": 12,
        "axes.titleweight": "normal",  # the font has one weight (Regular)
        "font.size": 9,
        "svg.hashsalt": "leadloom-report",  # stable ids: the same data draws the same file
    }


@contextmanager
def style() -> Iterator[None]:
    """Every figure of the report is built and saved inside this context."""
    with matplotlib.rc_context(rc()):
        yield


def svg_data_uri(fig: Figure) -> str:
    """The figure as a ``data:image/svg+xml;base64,...`` URI (no file, no external URL)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight",
                metadata={"Date": None, "Creator": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def chart(draw: Any, data: ReportData, lang: Lang, size: tuple[float, float] = (7.5, 3.4)
          ) -> Figure:
    """A one-axes figure drawn by ``draw(ax, data, lang)``."""
    fig = Figure(figsize=size, layout="constrained")
    draw(fig.add_subplot(), data, lang)
    return fig


def booth_label(booth_id: str) -> str:
    booth = booths_by_id().get(booth_id)
    return booth_id if booth is None else f"{booth_id} {booth.exhibitor_name}"


def draw_traffic(ax: Axes, data: ReportData, lang: Lang) -> None:
    """Scans per hour of the day (fair time), one line per day."""
    ax.set_title(text(lang, "traffic"))
    for n, (day, hours) in enumerate(sorted(data.traffic.items())):
        xs = list(range(min(hours), max(hours) + 1))
        label = text(lang, "traffic_day", day=day.isoformat(),
                     scans=f"{data.scans_per_day.get(day, 0):,}")
        ax.plot(xs, [hours.get(h, 0) for h in xs], marker="o", markersize=3,
                color=PALETTE[n % len(PALETTE)], label=label)
    ax.set_xlabel(text(lang, "hour"))
    ax.set_ylabel(text(lang, "scans"))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if data.traffic:
        ax.legend(fontsize=8, frameon=False)


def draw_booths(ax: Axes, data: ReportData, lang: Lang) -> None:
    """Scans per booth, the busiest first (top of the chart)."""
    ax.set_title(text(lang, "top_booths"))
    booths = list(reversed(data.booths))
    ax.barh([booth_label(b.booth_id) for b in booths], [b.scans for b in booths],
            color=PALETTE[0])
    for y, b in enumerate(booths):
        ax.text(b.scans, y, f" {b.scans:,}", va="center", fontsize=8)
    ax.set_xlabel(text(lang, "scans"))


def draw_buyers(ax: Axes, data: ReportData, lang: Lang) -> None:
    """Unique resolved buyers who scanned here, per day."""
    ax.set_title(f"{text(lang, 'buyers_per_day')}: {text(lang, 'unique_buyers')}"
                 f" {data.unique_buyers:,}")
    days = sorted(data.buyers_per_day)
    values = [data.buyers_per_day[d] for d in days]
    ax.bar([d.isoformat() for d in days], values, color=PALETTE[2], width=0.5)
    for x, v in enumerate(values):
        ax.text(x, v, f"{v:,}", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel(text(lang, "buyers"))


def draw_tiers(ax: Axes, data: ReportData, lang: Lang) -> None:
    ax.set_title(text(lang, "lead_tiers"))
    tiers = ("hot", "warm", "cold")
    values = [data.tiers.get(t, 0) for t in tiers]
    ax.bar([display(lang, t) for t in tiers], values,
           color=[TIER_COLOURS[t] for t in tiers], width=0.5)
    for x, v in enumerate(values):
        ax.text(x, v, f"{v:,}", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel(text(lang, "buyers"))


def draw_funnel(ax: Axes, data: ReportData, lang: Lang) -> None:
    """Buyers per funnel stage, the first stage on top."""
    ax.set_title(text(lang, "funnel"))
    stages = list(reversed(data.funnel))
    ax.barh([display(lang, s.stage) for s in stages], [s.buyers for s in stages],
            color=PALETTE[4])
    for y, s in enumerate(stages):
        ax.text(s.buyers, y, f" {s.buyers:,}", va="center", fontsize=8)
    ax.set_xlabel(text(lang, "buyers"))


def draw_matches(ax: Axes, data: ReportData, lang: Lang) -> None:
    ax.set_title(text(lang, "match_outcomes"))
    keys = ("matches", "visited", "sampled", "intents", "orders")
    values = [int(data.matches.get(k, 0)) for k in keys]
    ax.bar([text(lang, k) for k in keys], values, color=PALETTE[1], width=0.5)
    for x, v in enumerate(values):
        ax.text(x, v, f"{v:,}", ha="center", va="bottom", fontsize=8)


def draw_momentum(ax: Axes, data: ReportData, lang: Lang) -> None:
    """The cluster's events per hour against what its share of the fair predicts, and the
    z-score (right axis)."""
    ax.set_title(text(lang, "momentum"))
    times = mdates.date2num([w.start for w in data.momentum])
    ax.plot(times, [w.events for w in data.momentum], color=PALETTE[0],
            label=text(lang, "cluster_events"))
    ax.plot(times, [w.expected for w in data.momentum], color=PALETTE[1], linestyle="--",
            label=text(lang, "expected"))
    ax.set_ylabel(text(lang, "events"))
    z = ax.twinx()
    z.bar(times, [w.z_score for w in data.momentum], width=1 / 24 * 0.8, alpha=0.25,
          color=PALETTE[3], label=text(lang, "z_score"))
    z.set_ylabel(text(lang, "z_score"))
    z.spines["right"].set_visible(True)
    lines, labels = ax.get_legend_handles_labels()
    bars, bar_labels = z.get_legend_handles_labels()
    ax.legend(lines + bars, labels + bar_labels, fontsize=8, frameon=False, loc="upper left")
    tz = data.momentum[0].start.tzinfo if data.momentum else None
    hours = len(data.momentum)  # one window per hour
    locator: mdates.DateLocator = (
        mdates.HourLocator(interval=max(1, hours // 10), tz=tz) if hours <= 48
        else mdates.DayLocator(interval=max(1, hours // 240), tz=tz))
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M", tz=tz))
    for label in ax.get_xticklabels():
        label.set_rotation(30)
        label.set_horizontalalignment("right")


CHARTS = (  # (key, draw, shown when) in the order of the report
    ("traffic", draw_traffic, lambda d: bool(d.traffic)),
    ("top_booths", draw_booths, lambda d: bool(d.booths)),
    ("buyers_per_day", draw_buyers, lambda d: bool(d.buyers_per_day)),
    ("lead_tiers", draw_tiers, lambda d: sum(d.tiers.values()) > 0),
    ("funnel", draw_funnel, lambda d: bool(d.funnel)),
    ("match_outcomes", draw_matches, lambda d: bool(d.matches)),
    ("momentum", draw_momentum, lambda d: bool(d.momentum)),
)

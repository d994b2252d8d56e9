"""The report as a PDF: A4 pages drawn by matplotlib and written with ``PdfPages``.

Pages with data (:data:`PAGES_WITH_DATA`): 1 title, summary figures and traffic; 2 top
booths and unique buyers per day; 3 lead tiers and the hot leads table; 4 funnel (chart
and table) and match outcomes; 5 matches per exhibitor and momentum against the fair.
Without data: one page that says so. Fonts: see ``leadloom.report.plots`` (Noto Sans SC
embedded as Type 3 subsets).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from leadloom.report import plots
from leadloom.report.data import ReportData
from leadloom.report.html import cluster_name, exhibitor_rows, funnel_rows, lead_rows
from leadloom.report.text import Lang, moment, number, text

A4 = (8.27, 11.69)  # inches, portrait
PAGES_WITH_DATA = 5


def write(path: Path, data: ReportData, lang: Lang, generated_at: datetime) -> int:
    """Write the PDF to ``path``; the number of pages written."""
    name = cluster_name(data.cluster_id, lang)
    pages = _pages(data, lang, generated_at, name)
    with plots.style(), PdfPages(path, metadata={
            "Title": text(lang, "title", cluster=name), "Creator": "LeadLoom",
            "Subject": f"{data.cluster_id} {data.fair or ''}".strip()}) as pdf:
        for n, draw in enumerate(pages, start=1):
            fig = Figure(figsize=A4)
            draw(fig)
            fig.text(0.5, 0.015, text(lang, "page", n=n), ha="center", fontsize=8,
                     color="#5b6776")
            pdf.savefig(fig)
    return len(pages)


def _pages(data: ReportData, lang: Lang, at: datetime, name: str
           ) -> list[Callable[[Figure], None]]:
    def header(fig: Figure) -> None:
        fig.text(0.06, 0.955, text(lang, "title", cluster=name), fontsize=18)
        fig.text(0.06, 0.935, text(lang, "subtitle", fair=data.fair or "–", at=moment(at)),
                 fontsize=9, color="#5b6776")
        fig.text(0.06, 0.92, text(lang, "scope_note"), fontsize=8, color="#5b6776")

    if not data.has_data:
        def empty(fig: Figure) -> None:
            header(fig)
            key = "no_data" if data.fair else "no_fair"
            fig.text(0.06, 0.85, text(lang, key, cluster=name), fontsize=12)
        return [empty]

    def first(fig: Figure) -> None:
        header(fig)
        fig.text(0.06, 0.875, text(lang, "summary"), fontsize=13)
        tiles = [("unique_buyers", data.unique_buyers), ("scans", data.scans),
                 ("visitors", data.visitors), ("inquiries", data.inquiries),
                 ("repeat_visitors", data.repeat_visitors),
                 ("hot_leads", data.tiers.get("hot", 0)),
                 ("warm_leads", data.tiers.get("warm", 0)),
                 ("matches", data.matches.get("matches", 0)),
                 ("intents", data.matches.get("intents", 0)),
                 ("orders", data.matches.get("orders", 0))]
        for i, (key, value) in enumerate(tiles):
            x, y = 0.06 + (i % 5) * 0.18, 0.83 - (i // 5) * 0.07
            fig.text(x, y, number(value), fontsize=16)
            fig.text(x, y - 0.02, text(lang, key), fontsize=8, color="#5b6776")
        _place(fig, (0.1, 0.08, 0.85, 0.58), plots.draw_traffic, data, lang)

    def second(fig: Figure) -> None:
        _place(fig, (0.38, 0.55, 0.57, 0.38), plots.draw_booths, data, lang)
        _place(fig, (0.1, 0.08, 0.85, 0.36), plots.draw_buyers, data, lang)

    def third(fig: Figure) -> None:
        _place(fig, (0.1, 0.68, 0.85, 0.25), plots.draw_tiers, data, lang)
        fig.text(0.06, 0.6, text(lang, "hot_leads_table"), fontsize=12)
        if data.hot_leads:
            _table(fig, (0.03, 0.06, 0.94, 0.52), *lead_rows(data, lang))
        else:
            fig.text(0.06, 0.56, text(lang, "no_hot_leads"), fontsize=10)

    def fourth(fig: Figure) -> None:
        _place(fig, (0.25, 0.7, 0.7, 0.24), plots.draw_funnel, data, lang)
        _table(fig, (0.05, 0.47, 0.9, 0.18), *funnel_rows(data, lang))
        _place(fig, (0.1, 0.08, 0.85, 0.3), plots.draw_matches, data, lang)

    def fifth(fig: Figure) -> None:
        fig.text(0.06, 0.95, text(lang, "matches_by_exhibitor"), fontsize=12)
        if data.matches_by_exhibitor:
            _table(fig, (0.03, 0.6, 0.94, 0.33), *exhibitor_rows(data, lang))
        else:
            fig.text(0.06, 0.9, text(lang, "none"), fontsize=10)
        _place(fig, (0.1, 0.17, 0.8, 0.33), plots.draw_momentum, data, lang)
        first_surge = moment(data.first_surge) if data.first_surge else text(lang, "none")
        fig.text(0.06, 0.05, f"{text(lang, 'surges')}: {data.surge_windows:,};"
                 f" {text(lang, 'first_surge')}: {first_surge};"
                 f" {text(lang, 'peak_z')}: {number(data.peak_z, 1)}", fontsize=9)

    return [first, second, third, fourth, fifth]


def _place(fig: Figure, rect: tuple[float, float, float, float],
           draw: Callable[[Axes, ReportData, Lang], None], data: ReportData, lang: Lang) -> None:
    draw(fig.add_axes(rect), data, lang)


def _table(fig: Figure, rect: tuple[float, float, float, float],
           headers: list[tuple[str, bool]], rows: list[list[str]]) -> None:
    ax = fig.add_axes(rect)
    ax.axis("off")
    # columns as wide as their longest text (a CJK character counts twice), filling the
    # axes' width: the table stays on the page whatever its content
    widths = [max(_width(v) for v in [h, *(r[i] for r in rows)]) + 2
              for i, (h, _) in enumerate(headers)]
    table = ax.table(cellText=rows, colLabels=[h for h, _ in headers], loc="upper center",
                     cellLoc="left", colLoc="left",
                     colWidths=[w / sum(widths) for w in widths])
    table.auto_set_font_size(False)
    table.set_fontsize(7 if sum(widths) > 110 else 7.5)
    table.scale(1, 1.3)
    for (row, col), cell in table.get_celld().items():
        cell.set_edgecolor("#d5dbe3")
        if headers[col][1]:
            cell.get_text().set_horizontalalignment("right")
        if row == 0:
            cell.set_facecolor("#eef2f6")


def _width(value: str) -> int:
    return sum(2 if ord(c) > 0x2E80 else 1 for c in value)

"""The report as one self-contained HTML page.

Charts are SVG images inside ``data:`` URIs, CSS is inline, and nothing else is linked:
the page opens offline and sends no request. Every value from the store is escaped
(``html.escape``). Text uses the reader's CJK fonts when present (the charts carry their
own glyphs as paths).
"""

from __future__ import annotations

from datetime import datetime
from html import escape

from leadloom.report import plots
from leadloom.report.data import ReportData
from leadloom.report.text import Lang, display, moment, number, percent, text
from schemas.reference import CLUSTERS_BY_ID

_CSS = """
body { font-family: "Noto Sans SC", "Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei",
  "Source Han Sans SC", sans-serif; margin: 2em auto; max-width: 60em; color: #1d2733; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
.sub, .note { color: #5b6776; font-size: 0.9em; }
.tiles { display: flex; flex-wrap: wrap; gap: 0.6em; }
.tile { border: 1px solid #d5dbe3; border-radius: 6px; padding: 0.5em 0.9em; min-width: 8em; }
.tile b { display: block; font-size: 1.4em; } .tile span { color: #5b6776; font-size: 0.85em; }
img { max-width: 100%; } table { border-collapse: collapse; font-size: 0.9em; }
th, td { border-bottom: 1px solid #e3e7ec; padding: 0.25em 0.7em; text-align: left; }
td.n, th.n { text-align: right; }
.empty { padding: 1em; background: #f4f6f8; border-radius: 6px; }
"""


def cluster_name(cluster_id: str, lang: Lang) -> str:
    cluster = CLUSTERS_BY_ID[cluster_id]
    return cluster.name_zh if lang == "zh" else cluster.name_en


def render(data: ReportData, lang: Lang, generated_at: datetime) -> str:
    """The page for ``data`` in ``lang`` (``generated_at``: aware, shown as given)."""
    name = cluster_name(data.cluster_id, lang)
    title = text(lang, "title", cluster=name)
    parts = [f"<h1>{escape(title)}</h1>",
             f'<p class="sub">{escape(text(lang, "subtitle", fair=data.fair or "–", at=moment(generated_at)))}</p>',  # noqa: E501
             f'<p class="note">{escape(text(lang, "scope_note"))}</p>']
    if not data.has_data:
        key = "no_data" if data.fair else "no_fair"
        parts.append(f'<p class="empty" id="no-data">{escape(text(lang, key, cluster=name))}</p>')
        return _page(lang, title, parts)
    parts.append(f"<h2>{escape(text(lang, 'summary'))}</h2>{_tiles(data, lang)}")
    with plots.style():
        for key, draw, shown in plots.CHARTS:
            if not shown(data):
                continue
            fig = plots.chart(draw, data, lang)
            parts.append(f'<h2>{escape(text(lang, key))}</h2><img id="chart-{key}"'
                         f' alt="{escape(text(lang, key))}" src="{plots.svg_data_uri(fig)}">')
            parts.extend(_tables_after(key, data, lang))
    return _page(lang, title, parts)


def _page(lang: Lang, title: str, parts: list[str]) -> str:
    html_lang = "zh-CN" if lang == "zh" else "en"
    body = "\n".join(parts)
    return (f'<!DOCTYPE html>\n<html lang="{html_lang}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title><style>{_CSS}</style></head>"
            f"<body>\n{body}\n</body></html>\n")


def _tiles(data: ReportData, lang: Lang) -> str:
    tiles = (
        ("unique_buyers", number(data.unique_buyers)),
        ("scans", number(data.scans)), ("visitors", number(data.visitors)),
        ("inquiries", number(data.inquiries)),
        ("repeat_visitors", number(data.repeat_visitors)),
        ("hot_leads", number(data.tiers.get("hot", 0))),
        ("warm_leads", number(data.tiers.get("warm", 0))),
        ("matches", number(data.matches.get("matches", 0))),
        ("intents", number(data.matches.get("intents", 0))),
        ("orders", number(data.matches.get("orders", 0))),
    )
    return '<div class="tiles">' + "".join(
        f'<div class="tile" id="fig-{key}"><b>{escape(value)}</b>'
        f"<span>{escape(text(lang, key))}</span></div>" for key, value in tiles) + "</div>"


def _table(headers: list[tuple[str, bool]], rows: list[list[str]], table_id: str) -> str:
    head = "".join(f'<th{" class=n" if n else ""}>{escape(h)}</th>' for h, n in headers)
    body = "".join("<tr>" + "".join(
        f'<td{" class=n" if headers[i][1] else ""}>{escape(v)}</td>' for i, v in enumerate(row))
        + "</tr>" for row in rows)
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def lead_rows(data: ReportData, lang: Lang) -> tuple[list[tuple[str, bool]], list[list[str]]]:
    """The hot leads table (shared with the PDF): masked name columns only when present."""
    headers = [(text(lang, "buyer"), False)]
    if data.names_masked:
        headers += [(text(lang, "name"), False), (text(lang, "company"), False),
                    (text(lang, "country"), False)]
    headers += [(text(lang, "score"), True), (text(lang, "scans"), True),
                (text(lang, "furthest_step"), False), (text(lang, "last_activity"), False)]
    rows = []
    for lead in data.hot_leads:
        row = [lead.buyer_id]
        if data.names_masked:
            row += [lead.name_masked, lead.company, lead.country]
        row += [number(lead.score, 1), number(lead.scans), display(lang, lead.furthest_step)
                or (display(lang, "inquiry") if lead.has_inquiry else ""),
                moment(lead.last_activity)]
        rows.append(row)
    return headers, rows


def funnel_rows(data: ReportData, lang: Lang) -> tuple[list[tuple[str, bool]], list[list[str]]]:
    headers = [(text(lang, k), k != "stage") for k in
               ("stage", "buyers", "pairs", "events", "value_cny", "conversion")]
    rows = [[display(lang, s.stage), number(s.buyers), number(s.pairs), number(s.events),
             number(s.value_cny), percent(s.conversion)] for s in data.funnel]
    return headers, rows


def exhibitor_rows(data: ReportData, lang: Lang
                   ) -> tuple[list[tuple[str, bool]], list[list[str]]]:
    headers = [(text(lang, "exhibitor"), False)] + [(text(lang, k), True) for k in (
        "matches", "visited", "sampled", "intents", "orders", "order_value")]
    rows = [[e.exhibitor_id, number(e.matches), number(e.visited), number(e.sampled),
             number(e.intents), number(e.orders), number(e.order_value_cny)]
            for e in data.matches_by_exhibitor]
    return headers, rows


def booth_rows(data: ReportData, lang: Lang) -> tuple[list[tuple[str, bool]], list[list[str]]]:
    headers = [(text(lang, "booth"), False), (text(lang, "exhibitor"), False),
               (text(lang, "scans"), True), (text(lang, "visitors"), True)]
    rows = [[b.booth_id, plots.booth_label(b.booth_id).removeprefix(b.booth_id).strip()
             or b.exhibitor_id, number(b.scans), number(b.visitors)] for b in data.booths]
    return headers, rows


def _tables_after(key: str, data: ReportData, lang: Lang) -> list[str]:
    if key == "top_booths":
        return [_table(*booth_rows(data, lang), "top-booths")]
    if key == "lead_tiers":
        out = [f"<h2>{escape(text(lang, 'hot_leads_table'))}</h2>"]
        if data.hot_leads:
            out.append(_table(*lead_rows(data, lang), "hot-leads"))
        else:
            out.append(f'<p class="empty">{escape(text(lang, "no_hot_leads"))}</p>')
        return out
    if key == "funnel":
        return [_table(*funnel_rows(data, lang), "funnel")]
    if key == "match_outcomes" and data.matches_by_exhibitor:
        return [f"<h2>{escape(text(lang, 'matches_by_exhibitor'))}</h2>",
                _table(*exhibitor_rows(data, lang), "matches-by-exhibitor")]
    if key == "momentum":
        first = moment(data.first_surge) if data.first_surge else text(lang, "none")
        peak = number(data.peak_z, 1)
        return [f'<p id="surges">{escape(text(lang, "surges"))}: {data.surge_windows:,}; '
                f'{escape(text(lang, "first_surge"))}: {escape(first)}; '
                f'{escape(text(lang, "peak_z"))}: {escape(peak)}</p>']
    return []

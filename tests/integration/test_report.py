"""A delegation's post-fair report on the real embedded engine, read as the delegation.

A simulated 20,000-event day built by the project's own row builders (``fair_day_rows``)
is stored and the snapshots refreshed; the report of one cluster is made through a query
that runs every statement with the delegation's ``additional_table_filters``
(``schemas.scope``: its cluster on the tables it may read, ``'0'`` on every other table),
so a statement that read a table a delegation may not read would see it empty. Checked:
the figures against the stored rows (scans per booth, unique resolved buyers, the funnel
against the named query), the same figures read unfiltered, no other cluster's booth or
buyer in the page, no external URL, the PDF's pages, text and embedded CJK font, and no
missing glyph while drawing Chinese.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pypdf
import pytest

from core import queries
from core.reads import QueryResult
from core.settings import Settings
from core.store import Store
from dashboards.build import build_all
from dashboards.macros import TimeRange
from dashboards.panel_sql import run_panels
from leadloom.report import Report, make_report
from leadloom.report.data import HOT_LEADS, READS, TOP_BOOTHS, Query
from leadloom.report.pdf import PAGES_WITH_DATA
from schemas.registry import (
    BUYER_ALIASES,
    BUYER_EVENTS_TABLE,
    BUYERS,
    REGISTRATIONS,
    SCANS,
    TABLES_BY_NAME,
)
from schemas.scope import delegation_scope
from tests.factories.rows import DayRows, fair_day_rows
from tests.factories.stores import open_store

pytestmark = pytest.mark.integration

EVENTS = 20_000
SEED = 3
CLUSTER = "keqiao"
DB = "leadloom"
NOW = datetime(2026, 3, 27, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def day() -> DayRows:
    return fair_day_rows(events=EVENTS, seed=SEED)


@pytest.fixture(scope="module")
def store(day: DayRows, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    store = open_store(Settings(data_dir=tmp_path_factory.mktemp("report")))
    try:
        for table, rows in day.rows.items():
            store.insert_json_rows(table, rows)
        store.refresh_snapshots()
        yield store
    finally:
        store.close()


def scoped(store: Store, cluster: str) -> Query:
    """Statements run as ``cluster``'s delegation: its additional_table_filters on the
    engine (every existing table keyed), read-only."""
    tables = [(str(d), str(t)) for d, t in store.client.query(
        "SELECT database, name FROM system.tables").result_rows]
    filters = delegation_scope(cluster).table_filters(DB, tables)
    setting = "{" + ", ".join(
        "'{}': '{}'".format(k, v.replace("\\", "\\\\").replace("'", "\\'"))
        for k, v in filters.items()) + "}"

    def query(sql: str) -> QueryResult:
        result = store.client.query(sql, settings={"additional_table_filters": setting,
                                                   "readonly": 2})
        return QueryResult(list(result.column_names), [list(r) for r in result.result_rows])

    return query


@pytest.fixture(scope="module")
def report(store: Store, tmp_path_factory: pytest.TempPathFactory) -> Report:
    out = tmp_path_factory.mktemp("out") / "nested" / "dir"  # created by the report
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        made = make_report(scoped(store, CLUSTER), DB, CLUSTER, out, lang="zh", now=NOW)
    missing = [str(w.message) for w in caught if "missing from" in str(w.message)]
    assert missing == []  # every Chinese glyph found in the report's font
    return made


def cluster_scans(day: DayRows, cluster: str) -> list[dict]:
    return [r for r in day.decoded(SCANS.name) if r["cluster_id"] == cluster]


def resolved_buyers(day: DayRows) -> dict[str, set[str]]:
    """cluster -> the resolved buyers of its scans, inquiries and steps (newest alias)."""
    newest: dict[tuple[str, str], tuple[int, str]] = {}
    for a in day.decoded(BUYER_ALIASES.name):
        key = (a["fair_id"], a["alias"])
        if key not in newest or a["version"] > newest[key][0]:
            newest[key] = (a["version"], a["buyer_id"])
    out: dict[str, set[str]] = defaultdict(set)
    for e in day.decoded(BUYER_EVENTS_TABLE.name):
        if e.get("cluster_id"):
            out[e["cluster_id"]].add(newest[(e["fair_id"], e["alias"])][1])
    return out


def test_the_files_are_named_after_cluster_and_fair(report: Report, day: DayRows) -> None:
    fair = day.decoded(SCANS.name)[0]["fair_id"]
    assert report.data.fair == fair
    assert report.html_path.name == f"report-{CLUSTER}-{fair}.html"
    assert report.pdf_path.name == f"report-{CLUSTER}-{fair}.pdf"
    assert report.html_path.is_file() and report.pdf_path.is_file()
    assert report.summary()["elapsed_s"] > 0


def test_scans_per_booth_and_totals_equal_the_stored_rows(report: Report, day: DayRows) -> None:
    scans = cluster_scans(day, CLUSTER)
    per_booth: dict[str, set[str]] = defaultdict(set)
    for r in scans:
        per_booth[r["booth_id"]].add(r["event_id"])
    expected = sorted(((b, len(e)) for b, e in per_booth.items()), key=lambda x: (-x[1], x[0]))
    assert [(b.booth_id, b.scans) for b in report.data.booths] == expected[:TOP_BOOTHS]
    assert report.data.scans == len({r["event_id"] for r in scans})
    assert report.data.visitors == len({r["badge_id"] for r in scans})
    assert sum(report.data.scans_per_day.values()) == report.data.scans
    assert sum(sum(h.values()) for h in report.data.traffic.values()) == report.data.scans


def test_unique_buyers_are_the_resolved_buyers_of_the_stored_rows(report: Report,
                                                                  day: DayRows) -> None:
    buyers = resolved_buyers(day)[CLUSTER]
    assert report.data.unique_buyers == len(buyers) > 0
    assert {lead.buyer_id for lead in report.data.hot_leads} <= buyers
    assert len(report.data.hot_leads) == min(HOT_LEADS, report.data.tiers["hot"])


def test_the_funnel_equals_the_named_query_and_the_scans(report: Report, store: Store,
                                                         day: DayRows) -> None:
    named = queries.run(queries.FUNNEL, store.query, DB)[CLUSTER]
    assert [(s.stage, s.buyers, s.pairs, s.events) for s in report.data.funnel] == [
        (s["stage"], s["buyers"], s["pairs"], s["events"]) for s in named]
    scan = report.data.funnel[0]
    assert (scan.stage, scan.events) == ("scan", report.data.scans)


def test_read_unfiltered_the_figures_are_the_same(report: Report, store: Store,
                                                  tmp_path: Path) -> None:
    # every statement names the cluster itself, and reads only what a delegation may
    # (a table it may not read is empty under the filters: the figures would differ)
    plain = make_report(store.query, DB, CLUSTER, tmp_path, lang="zh", now=NOW)
    assert plain.data.figures() == report.data.figures()
    assert plain.data.hot_leads == report.data.hot_leads


def test_the_page_shows_no_other_clusters_booth_or_buyer(report: Report, day: DayRows) -> None:
    page = report.html_path.read_text(encoding="utf-8")
    ours = {r["booth_id"] for r in cluster_scans(day, CLUSTER)}
    others = {r["booth_id"] for r in day.decoded(SCANS.name)} - ours
    assert others and [b for b in others if b in page] == []
    buyers = resolved_buyers(day)
    foreign = set().union(*(b for c, b in buyers.items() if c != CLUSTER)) - buyers[CLUSTER]
    assert foreign and [b for b in foreign if b in page] == []
    assert all(b.booth_id in page for b in report.data.booths)  # ours are shown
    assert all(lead.buyer_id in page for lead in report.data.hot_leads)


class _Links(HTMLParser):
    """Every URL-bearing attribute and the text of <style> elements."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_style = tag == "style"
        for name, value in attrs:
            if name in ("src", "href", "srcset", "action", "poster", "data", "xlink:href"):
                self.urls.append(value or "")
            if name == "style":
                self.styles.append(value or "")

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)


def test_the_page_is_self_contained(report: Report) -> None:
    page = report.html_path.read_text(encoding="utf-8")
    links = _Links()
    links.feed(page)
    assert len(links.urls) >= 6  # the charts
    assert all(u.startswith("data:image/svg+xml;base64,") for u in links.urls)
    assert links.styles and not any("url(" in s or "@import" in s for s in links.styles)
    outside = page
    for u in links.urls:
        outside = outside.replace(u, "")
    assert "://" not in outside and "<script" not in outside


def test_the_pdf_has_its_pages_text_and_a_cjk_font(report: Report) -> None:
    reader = pypdf.PdfReader(report.pdf_path)
    assert len(reader.pages) == report.pdf_pages == PAGES_WITH_DATA
    fonts = {str(page["/Resources"]["/Font"][k].get_object()["/BaseFont"])
             for page in reader.pages for k in page["/Resources"]["/Font"]}
    assert any(f.endswith("+NotoSansSC-Regular") for f in fonts)
    first = reader.pages[0].extract_text()
    assert "柯桥代表团 展后报告" in first
    assert f"{report.data.unique_buyers:,}" in first
    assert report.data.booths[0].booth_id in reader.pages[1].extract_text()


def test_a_fair_without_the_clusters_data_says_so(store: Store, tmp_path: Path) -> None:
    made = make_report(scoped(store, CLUSTER), DB, CLUSTER, tmp_path, lang="en",
                       fair="NO-SUCH-FAIR", now=NOW)
    assert not made.data.has_data and made.pdf_pages == 1
    assert made.html_path.name == f"report-{CLUSTER}-NO-SUCH-FAIR.html"
    page = made.html_path.read_text(encoding="utf-8")
    assert 'id="no-data"' in page and "No data for the Keqiao cluster" in page
    first = pypdf.PdfReader(made.pdf_path).pages[0].extract_text()
    assert "No data for the Keqiao cluster" in first


def test_an_empty_store_gives_a_report_without_a_fair(store: Store, tmp_path: Path) -> None:
    # one engine per process and one owner per store: an empty copy of every table the
    # report reads, in a database of its own on the same engine
    store.client.command("CREATE DATABASE IF NOT EXISTS leadloom_empty")
    for table in READS:
        if table in TABLES_BY_NAME:
            store.client.command(f"CREATE TABLE IF NOT EXISTS leadloom_empty.{table}"
                                 f" AS {DB}.{table}")
    made = make_report(store.query, "leadloom_empty", "dongguan", tmp_path / "out", now=NOW)
    assert made.data.fair is None and made.html_path.name == "report-dongguan-none.html"
    assert "尚无任何展会数据" in made.html_path.read_text(encoding="utf-8")
    assert made.pdf_pages == 1


FILL = """
import sys
from pathlib import Path
from core.settings import Settings
from tests.factories.rows import fair_day_rows
from tests.factories.stores import open_store
store = open_store(Settings(data_dir=Path(sys.argv[1])))
for table, rows in fair_day_rows(events=3000, seed=5).rows.items():
    store.insert_json_rows(table, rows)
store.refresh_snapshots()
store.close()
"""


def test_the_command_reads_with_the_delegations_scope(tmp_path: Path) -> None:
    # the command as a user runs it, on a store of its own (another process: one engine
    # per process): read_query with the delegation's scope, files, --json last line
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "LEADLOOM_DATA_DIR": str(tmp_path / "data"),
           "PYTHONPATH": str(root)}
    subprocess.run([sys.executable, "-c", FILL, str(tmp_path / "data")], env=env, cwd=root,
                   check=True, timeout=300)
    out = tmp_path / "reports"
    done = subprocess.run([sys.executable, "-m", "leadloom.cli", "report", "--cluster",
                           "dongguan", "--lang", "en", "--out", str(out), "--json"],
                          env=env, cwd=root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["has_data"] and summary["pdf_pages"] == PAGES_WITH_DATA
    assert summary["figures"]["unique_buyers"] > 0 and summary["elapsed_s"] > 0
    assert Path(summary["html"]).parent == out and Path(summary["pdf"]).is_file()
    assert "Dongguan delegation" in Path(summary["html"]).read_text(encoding="utf-8")
    assert "leadloom: drawing the PDF" in done.stderr
    bad = subprocess.run([sys.executable, "-m", "leadloom.cli", "report", "--cluster",
                          "atlantis", "--out", str(out)], env=env, cwd=root,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines() == [
        bad.stderr.strip().splitlines()[0]] and "unknown cluster 'atlantis'" in bad.stderr


def test_the_figures_equal_the_delegation_dashboards(report: Report, store: Store,
                                                     day: DayRows) -> None:
    times = [datetime.fromisoformat(r["occurred_at"]) for r in day.decoded(SCANS.name)]
    built = next(b for b in build_all(store.settings) if b.file.cluster_id == CLUSTER)
    runs = {r.spec.id: r.result.rows for r in run_panels(
        built, store.query, TimeRange(min(times), max(times), interval_s=60))}
    assert runs[1][0][0] == report.data.unique_buyers  # unique buyers
    assert runs[2][0][0] == report.data.repeat_visitors
    assert list(runs[3][0]) == [report.data.tiers["hot"], report.data.tiers["warm"]]
    assert list(runs[4][0][:2]) == [report.data.matches["matches"],
                                    report.data.matches["intents"]]
    assert [(r[0], r[1], r[2], r[3]) for r in runs[8]] == [
        (s.stage, s.buyers, s.pairs, s.events) for s in report.data.funnel]


def test_hot_leads_carry_masked_names_and_no_contact_data(report: Report,
                                                          day: DayRows) -> None:
    assert report.data.names_masked  # delegation_buyers is in the registry
    buyers = {b["buyer_id"]: b for b in day.decoded(BUYERS.name)}
    for lead in report.data.hot_leads:
        profile = buyers[lead.buyer_id]
        assert lead.name_masked == (profile["name_masked"] if profile["consent"] else "")
        assert "*" in lead.name_masked or not lead.name_masked
    page = report.html_path.read_text(encoding="utf-8")
    text = " ".join(p.extract_text() for p in pypdf.PdfReader(report.pdf_path).pages)
    secrets = {h for b in buyers.values() for k in ("email_hashes", "phone_hashes",
                                                     "wechat_hashes", "badges") for h in b[k]}
    secrets |= {r[k] for r in day.decoded(REGISTRATIONS.name)
                for k in ("email_hash", "phone_hash", "wechat_hash", "badge_id") if r[k]}
    assert secrets and [s for s in secrets if s in page or s in text] == []


def test_the_pdf_renders_to_png_pages_with_text_and_plots(report: Report,
                                                          tmp_path: Path) -> None:
    """The PDF as a reader sees it: pdftoppm (poppler, installed by ./dev test) rasterises
    every page; each page has ink (text), and the plot pages carry colour (the series),
    not only the black and grey of text and axes."""
    from PIL import Image

    subprocess.run(["pdftoppm", "-r", "40", "-png", str(report.pdf_path),
                    str(tmp_path / "page")], check=True, capture_output=True, timeout=120)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) == report.pdf_pages
    coloured_pages = 0
    for png in pages:
        image = Image.open(png).convert("RGB")
        pixels = list(image.getdata())
        ink = sum(1 for r, g, b in pixels if min(r, g, b) < 200) / len(pixels)
        colour = sum(1 for r, g, b in pixels if max(r, g, b) - min(r, g, b) > 60)
        assert 0.005 < ink < 0.6, (png.name, ink)
        coloured_pages += colour / len(pixels) > 0.002
    assert coloured_pages >= report.pdf_pages - 1  # every page but the cover has a plot

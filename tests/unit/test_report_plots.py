"""The report's charts, page and PDF from data made here (no store): Chinese renders with
the report's font (no missing glyph), charts are embedded, values are escaped, the command
refuses an unknown cluster in one line."""

from __future__ import annotations

import base64
import warnings
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pypdf
import pytest
from matplotlib.figure import Figure

from leadloom.cli import main
from leadloom.report import html, pdf, plots
from leadloom.report.data import (
    READS,
    Booth,
    ExhibitorMatches,
    Lead,
    ReportData,
    Stage,
    Window,
    literal,
)
from schemas.scope import DELEGATION_TABLES

NOW = datetime(2026, 3, 27, 9, 0, tzinfo=UTC)
SHANGHAI = ZoneInfo("Asia/Shanghai")


def sample(names: bool = True) -> ReportData:
    day = date(2026, 3, 26)
    data = ReportData("keqiao", "CIFW-2026-AW", scans=120, visitors=80, inquiries=7,
                      unique_buyers=75, repeat_visitors=20,
                      tiers={"hot": 2, "warm": 10, "cold": 63})
    data.traffic = {day: {9: 30, 10: 50, 11: 40}}
    data.scans_per_day = {day: 120}
    data.buyers_per_day = {day: 75}
    data.booths = [Booth("YRD-KQ-001", "EX-KQ-001", 70, 40), Booth("YRD-KQ-002", "EX-KQ-002",
                                                                    50, 35)]
    data.names_masked = names
    data.hot_leads = [Lead("buyer:1", 71.5, "hot", 6, True, "purchase_order",
                           datetime(2026, 3, 26, 16, 0, tzinfo=SHANGHAI),
                           "<script>alert(1)</script>", "柯桥<b>公司", "CN")]
    data.funnel = [Stage("scan", 75, 90, 120, 0.0, None),
                   Stage("inquiry", 7, 0, 7, 1000.0, 0.093)]
    data.matches = {"matches": 5, "visited": 2, "sampled": 1, "intents": 1, "orders": 0,
                    "order_value_cny": 0.0}
    data.matches_by_exhibitor = [ExhibitorMatches("EX-KQ-001", 5, 2, 1, 1, 0, 0.0)]
    data.momentum = [Window(datetime(2026, 3, 26, h, tzinfo=SHANGHAI), 10 * h, 9.0 * h,
                            0.5 - h / 10) for h in range(9, 13)]
    data.surge_windows, data.peak_z = 0, 1.2
    return data


def test_the_font_is_noto_sans_sc() -> None:
    assert plots.cjk_font() == "Noto Sans SC"
    assert plots.rc()["font.family"][0] == "Noto Sans SC"


@pytest.mark.parametrize("key", [key for key, _, _ in plots.CHARTS])
def test_each_chart_draws_chinese_without_a_missing_glyph(key: str) -> None:
    draw = {k: d for k, d, _ in plots.CHARTS}[key]
    data = sample()
    with warnings.catch_warnings(record=True) as caught, plots.style():
        warnings.simplefilter("always")
        fig = plots.chart(draw, data, "zh")
        uri = plots.svg_data_uri(fig)
    assert [str(w.message) for w in caught if "missing from" in str(w.message)] == []
    assert {k for k, _, shown in plots.CHARTS if shown(data)} >= {key}
    assert uri.startswith("data:image/svg+xml;base64,")
    svg = base64.b64decode(uri.split(",", 1)[1]).decode()
    assert "<svg" in svg and "<text" not in svg  # glyphs as paths: no font needed to view


def test_the_default_font_would_miss_the_glyphs() -> None:
    # the check above can fail: without the report's font, Chinese glyphs are missing
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig = Figure()
        fig.text(0.1, 0.5, "柯桥", family="DejaVu Sans")
        fig.savefig(Path("/dev/null"), format="png")
    assert any("missing from" in str(w.message) for w in caught)


def test_empty_data_shows_no_chart() -> None:
    assert [k for k, _, shown in plots.CHARTS if shown(ReportData("keqiao", "F"))] == []


def test_the_page_escapes_values_and_shows_masked_names_only() -> None:
    page = html.render(sample(), "zh", NOW)
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    assert "柯桥&lt;b&gt;公司" in page and 'id="hot-leads"' in page
    assert "柯桥代表团 展后报告" in page and 'lang="zh-CN"' in page
    without = html.render(sample(names=False), "en", NOW)
    assert "&lt;script&gt;" not in without and "Keqiao delegation" in without


def test_a_report_without_data_says_so_in_one_pdf_page(tmp_path: Path) -> None:
    data = ReportData("keqiao", "CIFW-2026-AW")
    page = html.render(data, "zh", NOW)
    assert 'id="no-data"' in page and "<img" not in page
    path = tmp_path / "r.pdf"
    assert pdf.write(path, data, "zh", NOW) == 1
    assert "本展会没有柯桥集群的数据" in pypdf.PdfReader(path).pages[0].extract_text()


def test_the_pdf_with_data_has_every_page(tmp_path: Path) -> None:
    path = tmp_path / "r.pdf"
    assert pdf.write(path, sample(), "en", NOW) == pdf.PAGES_WITH_DATA
    reader = pypdf.PdfReader(path)
    assert len(reader.pages) == pdf.PAGES_WITH_DATA
    assert "Keqiao delegation: post-fair report" in reader.pages[0].extract_text()
    assert "buyer:1" in reader.pages[2].extract_text()


def test_the_report_reads_only_what_a_delegation_may_read() -> None:
    assert set(READS) <= set(DELEGATION_TABLES) | {"delegation_buyers"}
    assert "inquiries" not in READS and "buyers" not in READS
    assert literal("it's") == "'it\\'s'"


def test_an_unknown_cluster_is_one_line_and_exit_1(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--cluster", "atlantis", "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("leadloom: error: unknown cluster 'atlantis'")
    assert not (tmp_path / "o").exists()

"""The post-fair report of one delegation: a self-contained HTML page and a PDF.

:func:`make_report` reads through a ``Query`` it is given (the command gives it one scoped
to the delegation's cluster), so the report sees what the delegation may see and nothing
more; ``data`` holds the queries, ``plots`` the charts, ``html`` and ``pdf`` the two
files, ``text`` the Chinese and English wording.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from leadloom.report import data as report_data
from leadloom.report import html, pdf
from leadloom.report.data import Query, ReportData
from leadloom.report.text import LANGS, Lang
from schemas.reference import CLUSTERS_BY_ID


@dataclass(frozen=True)
class Report:
    html_path: Path
    pdf_path: Path
    pdf_pages: int
    data: ReportData
    elapsed_s: float

    def summary(self) -> dict[str, Any]:
        """What ``--json`` prints: paths, the fair, the figures shown, the time taken."""
        return {"cluster": self.data.cluster_id, "fair": self.data.fair,
                "has_data": self.data.has_data, "html": str(self.html_path),
                "pdf": str(self.pdf_path), "pdf_pages": self.pdf_pages,
                "figures": self.data.figures(), "elapsed_s": round(self.elapsed_s, 3)}


def file_stem(cluster_id: str, fair: str | None) -> str:
    """``report-<cluster>-<fair>`` (``none`` when no fair has data); path-safe."""
    fair_part = "".join(c if c.isalnum() or c in "-_." else "_" for c in (fair or "none"))
    return f"report-{cluster_id}-{fair_part}"


def make_report(query: Query, database: str, cluster_id: str, out_dir: Path, *,
                lang: Lang = "zh", fair: str | None = None,
                now: datetime, progress: Any = None) -> Report:
    """Read, draw and write the report of ``cluster_id`` into ``out_dir`` (created).

    ``fair`` None: the cluster's fair with the latest data. ``now``: aware, the moment the
    report says it was generated. Raises ``ValueError`` (one line) for an unknown cluster
    or language, and what ``query`` raises.
    """
    if cluster_id not in CLUSTERS_BY_ID:
        raise ValueError(f"unknown cluster {cluster_id!r}: one of {', '.join(CLUSTERS_BY_ID)}")
    if lang not in LANGS:
        raise ValueError(f"unknown language {lang!r}: one of {', '.join(LANGS)}")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    say = progress or (lambda _message: None)
    started = time.perf_counter()
    if fair is None:
        fair = report_data.latest_fair(query, database, cluster_id)
    say(f"reading {cluster_id} at fair {fair or '(none)'}")
    loaded = report_data.load(query, database, cluster_id, fair)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = file_stem(cluster_id, fair)
    local_now = now.astimezone(report_data.local_zone())
    say("drawing the HTML page")
    html_path = out_dir / f"{stem}.html"
    html_path.write_text(html.render(loaded, lang, local_now), encoding="utf-8")
    say("drawing the PDF")
    pdf_path = out_dir / f"{stem}.pdf"
    pages = pdf.write(pdf_path, loaded, lang, local_now)
    return Report(html_path, pdf_path, pages, loaded, time.perf_counter() - started)

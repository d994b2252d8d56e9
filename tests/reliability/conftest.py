"""Fixtures of the reliability tier: kcat, a pipeline per test, and the figures table.

Every test records one row per fault or input: events lost, events doubled, and the
seconds the pipeline took to settle (or to recover after a fault). Rows are printed in the
test's output, collected into a table at the end of the session, and written as JSON to
``<pytest basetemp>/reliability-figures.json`` (and to ``$LEADLOOM_RELIABILITY_FIGURES``
when set), for the closing note of issue 7.

``LEADLOOM_RELIABILITY_LONG=1`` runs the long variants (see ``LONG``): a 100,000-message
flood with a worker and store outage loop instead of 10,000 messages.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.settings import Settings
from leadloom.pipeline import Pipeline
from tests.conftest import running_pipeline
from tests.reliability.kcat import INSTALL_HINT

LONG = os.environ.get("LEADLOOM_RELIABILITY_LONG", "") not in ("", "0")
_FIGURES: list[dict[str, Any]] = []


@pytest.fixture(scope="session")
def kcat() -> str:
    """The kcat binary. Missing kcat fails the test: a reliability test never skips."""
    path = shutil.which("kcat")
    if path is None:
        pytest.fail(f"kcat not found on PATH: {INSTALL_HINT}", pytrace=False)
    return path


@pytest.fixture
def pipeline(pipeline_settings: Settings, kcat: str) -> Iterator[Pipeline]:
    with running_pipeline(pipeline_settings, workers=1) as pipe:
        yield pipe


class Figures:
    """The rows one test adds to the reliability table."""

    def __init__(self, test: str, path: Path) -> None:
        self.test = test
        self.path = path
        self.rows: list[dict[str, Any]] = []

    def record(self, fault: str, *, lost: int, doubled: int, seconds: float,
               **more: Any) -> None:
        row = {"test": self.test, "fault": fault, "lost": lost, "doubled": doubled,
               "seconds": round(seconds, 1), **more}
        self.rows.append(row)
        _FIGURES.append(row)
        print(f"reliability: {json.dumps(row, ensure_ascii=False)}")
        self.path.write_text(json.dumps(self.rows, indent=2, ensure_ascii=False))


@pytest.fixture
def figures(request: pytest.FixtureRequest, tmp_path: Path) -> Figures:
    return Figures(request.node.name, tmp_path / "reliability-figures.json")


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if not _FIGURES:
        return
    tr = terminalreporter
    tr.section("reliability: fault/input -> lost, doubled, seconds to settle or recover")
    tr.write_line(f"{'fault / input':<64} {'lost':>6} {'doubled':>8} {'seconds':>8}  more")
    for row in _FIGURES:
        extra = {k: v for k, v in row.items()
                 if k not in ("test", "fault", "lost", "doubled", "seconds")}
        more = ", ".join(f"{k}={v}" for k, v in extra.items())
        tr.write_line(f"{row['fault'][:64]:<64} {row['lost']:>6} {row['doubled']:>8} "
                      f"{row['seconds']:>8}  {more}")
    basetemp = config._tmp_path_factory.getbasetemp()  # type: ignore[attr-defined]
    targets = [Path(basetemp) / "reliability-figures.json"]
    if os.environ.get("LEADLOOM_RELIABILITY_FIGURES"):
        targets.append(Path(os.environ["LEADLOOM_RELIABILITY_FIGURES"]))
    for target in targets:
        target.write_text(json.dumps(_FIGURES, indent=2, ensure_ascii=False))
        tr.write_line(f"figures written to {target}")

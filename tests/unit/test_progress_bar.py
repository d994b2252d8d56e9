"""The ops commands' progress bar: rate and ETA on a terminal, nothing elsewhere."""

from __future__ import annotations

import io

import pytest

from leadloom.commands.progress_bar import ProgressBar


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_bar_shows_share_count_rate_and_eta(monkeypatch: pytest.MonkeyPatch) -> None:
    bar = ProgressBar("reprocess", 1000, stream=io.StringIO())
    bar._began = 100.0
    bar.done = 250
    line = bar.line(now=105.0)  # 250 in 5 s: 50/s, 750 to go: 15 s
    assert "25%" in line and "250/1,000 events" in line and "50/s" in line
    assert line.endswith("ETA 0:15")
    unknown = ProgressBar("republish", None, stream=io.StringIO())
    unknown._began, unknown.done = 0.0, 120
    assert unknown.line(now=60.0) == "republish 120 events 2/s 1:00"


def test_it_draws_on_a_terminal_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    terminal, pipe = _Terminal(), io.StringIO()
    for stream in (terminal, pipe):
        bar = ProgressBar("retry", 10, stream=stream)
        bar.advance(10)
        bar.close()
    assert "100%" in terminal.getvalue() and terminal.getvalue().endswith("\n")
    assert pipe.getvalue() == ""
    monkeypatch.setenv("CI", "true")  # CI's captured output is no terminal either
    ci = _Terminal()
    bar = ProgressBar("retry", 10, stream=ci)
    bar.advance(10)
    bar.close()
    assert ci.getvalue() == ""

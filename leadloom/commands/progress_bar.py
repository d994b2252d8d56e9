"""A progress bar with rate and ETA for long ops commands, drawn on a terminal only.

``ProgressBar(label, total)``; ``advance(n)`` as work is done; ``close()`` once (it
draws the final state and a newline). On anything but a terminal (CI, a pipe, a log
file) it draws nothing: the command's own summary line says what was done. ``total``
may be None (unknown): then rate and count only. Redraws at most every 0.2 s.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

_WIDTH = 28
_REDRAW_S = 0.2


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class ProgressBar:
    def __init__(self, label: str, total: int | None, stream: TextIO | None = None,
                 unit: str = "events") -> None:
        self.label, self.total, self.unit = label, total, unit
        self.stream = stream or sys.stderr
        self.done = 0
        self.enabled = self.stream.isatty() and os.environ.get("CI", "") == ""
        self._began = time.monotonic()
        self._drawn_at = 0.0

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and now - self._drawn_at >= _REDRAW_S:
            self._draw(now)

    def line(self, now: float | None = None) -> str:
        """The bar as text (what is drawn)."""
        now = time.monotonic() if now is None else now
        elapsed = max(now - self._began, 1e-9)
        rate = self.done / elapsed
        if self.total:
            share = min(self.done / self.total, 1.0)
            filled = int(share * _WIDTH)
            eta = (self.total - self.done) / rate if rate > 0 else 0.0
            return (f"{self.label} [{'#' * filled}{'.' * (_WIDTH - filled)}] {share:4.0%} "
                    f"{self.done:,}/{self.total:,} {self.unit} {rate:,.0f}/s "
                    f"ETA {_clock(eta)}")
        return f"{self.label} {self.done:,} {self.unit} {rate:,.0f}/s {_clock(elapsed)}"

    def _draw(self, now: float) -> None:
        self._drawn_at = now
        self.stream.write("\r\x1b[2K" + self.line(now))
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()

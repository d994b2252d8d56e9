"""An operator's CSV file, checked whole before anything loads (rates, seasons).

Contract: the first non-blank line is a header naming exactly the expected columns (any
order, any case); blank lines are skipped; a line with another number of fields is an
error. Errors are collected, one per bad line with its line number, so the operator fixes
the whole file at once; the caller adds its own per-value checks to the same list and
raises a :class:`CsvFileError` (nothing loaded) if any.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence


class CsvFileError(ValueError):
    """A file that must not be loaded; ``errors`` holds one line per problem."""

    def __init__(self, source: str, errors: Sequence[str]) -> None:
        self.errors = list(errors)
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"{source}: {errors[0]}{more}; nothing was loaded")


class CheckedCsv:
    """The data lines of ``text`` as dicts keyed by ``columns``; problems in ``errors``."""

    def __init__(self, text: str, columns: Sequence[str]) -> None:
        self.columns = tuple(columns)
        self.errors: list[str] = []
        self._reader = csv.reader(io.StringIO(text))
        self._header: list[str] | None = None

    def rows(self) -> Iterator[tuple[int, dict[str, str]]]:
        """``(line number, {column: stripped value})`` per data line with the right number
        of fields; stops at a wrong header (no other line can be read without one)."""
        for fields in self._reader:
            line = self._reader.line_num
            if not any(f.strip() for f in fields):
                continue
            if self._header is None:
                self._header = [f.strip().lower() for f in fields]
                if sorted(self._header) != sorted(self.columns):
                    self.errors.append(f"line {line}: header must be {','.join(self.columns)}"
                                       f" (any order); got {','.join(fields)}")
                    return
                continue
            if len(fields) != len(self._header):
                self.errors.append(f"line {line}: {len(fields)} fields, the header has"
                                   f" {len(self._header)}")
                continue
            yield line, dict(zip(self._header, (f.strip() for f in fields), strict=True))

    def finish(self, found: int, noun: str) -> list[str]:
        """Every error, adding "empty" or "no ``noun`` after the header" when the file held
        none of the ``found`` rows and no other problem explains why."""
        if self._header is None:
            self.errors.append(f"line 1: empty; the header must be {','.join(self.columns)}")
        elif not found and not self.errors:
            self.errors.append(f"line {self._reader.line_num}: no {noun} after the header")
        return self.errors

"""A previous season's professional buyers, from a CSV, into ``season_baseline``.

The seed's KPI "professional buyers versus the previous season" needs last season's counts,
which the product cannot recompute (that fair's events are gone): an operator imports
them with ``leadloom season import FILE`` and the ``season_comparison`` view compares the
fair's professional buyers per pavilion and cluster with them.

A season file is CSV with a header naming exactly the columns ``season``, ``pavilion_id``,
``cluster_id`` and ``professional_buyers`` (any order), then one line per pavilion and
cluster of one season (``producers.simulator.season.write_season_csv`` writes such a file).
:func:`parse_season` checks the whole file and raises :class:`SeasonFileError` listing
every bad line (one line each, with its line number): a file with any error loads nothing.
Importing a (season, pavilion, cluster) again replaces its count (the table keeps the
newest ``loaded_at``); keys the file does not name keep their earlier counts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from clickhouse_connect.driver.client import Client

from core.csvfile import CheckedCsv, CsvFileError
from schemas.reference import CLUSTERS_BY_ID, PAVILIONS_BY_ID
from schemas.registry import SEASON_BASELINE

COLUMNS = ("season", "pavilion_id", "cluster_id", "professional_buyers")
# The column is UInt32; no fair has billions of buyers, so a larger count is a typo.
MAX_BUYERS = 2**32 - 1
# A season label is a fair id (``CIFW-2025-AW``): it is compared with fair_id by the view.
_SEASON = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class SeasonRow:
    """One line of a season file: ``professional_buyers`` distinct professional buyers
    scanned at ``cluster_id``'s booths in ``pavilion_id`` during ``season``."""

    season: str
    pavilion_id: str
    cluster_id: str
    professional_buyers: int
    line: int = 0  # where it came from in its file (0: not from a file)


class SeasonFileError(CsvFileError):
    """A season file that must not be loaded; ``errors`` holds one line per problem."""


def parse_season(text: str, source: str = "season file") -> list[SeasonRow]:
    """The rows of a season CSV text, or :class:`SeasonFileError` naming every bad line.

    Blank lines are skipped. Errors: a header that is not exactly the four columns, a line
    with another number of fields, a season label that is not a fair-id-like token, more
    than one season in the file, a pavilion or cluster unknown to ``schemas.reference``, a
    cluster that is not in that pavilion (the view joins on both: such a row would never
    match), a count that is not a non-negative integer (or above the UInt32 column), the
    same (pavilion, cluster) twice, and no rows.
    """
    checked = CheckedCsv(text, COLUMNS)
    rows: list[SeasonRow] = []
    seen: dict[tuple[str, str], int] = {}
    first_season: tuple[str, int] | None = None
    for line, row in checked.rows():
        problems: list[str] = []
        season = row["season"]
        if not _SEASON.match(season):
            problems.append(f"season {season!r} is not a season label like CIFW-2025-AW")
        elif first_season is None:
            first_season = (season, line)
        elif season != first_season[0]:
            problems.append(f"season {season!r} differs from {first_season[0]!r} (line"
                            f" {first_season[1]}): one season per file")
        pavilion, cluster = row["pavilion_id"], row["cluster_id"]
        if pavilion not in PAVILIONS_BY_ID:
            problems.append(f"pavilion_id {pavilion!r} is not a known pavilion")
        if cluster not in CLUSTERS_BY_ID:
            problems.append(f"cluster_id {cluster!r} is not a known cluster")
        elif pavilion in PAVILIONS_BY_ID and CLUSTERS_BY_ID[cluster].pavilion_id != pavilion:
            problems.append(f"cluster {cluster!r} is in pavilion"
                            f" {CLUSTERS_BY_ID[cluster].pavilion_id!r}, not {pavilion!r}")
        count = _count(row["professional_buyers"], problems)
        if not problems and count is not None:
            first = seen.setdefault((pavilion, cluster), line)
            if first != line:
                problems.append(f"{pavilion}/{cluster} again (first on line {first})")
            else:
                rows.append(SeasonRow(season, pavilion, cluster, count, line))
        checked.errors.extend(f"line {line}: {p}" for p in problems)
    errors = checked.finish(len(rows), "rows")
    if errors:
        raise SeasonFileError(source, errors)
    return rows


def _count(text: str, problems: list[str]) -> int | None:
    # Digits only: "1e3", "12.0", "+5" and " 5 " are what a spreadsheet makes of a typo.
    if not text.isascii() or not text.isdigit():
        problems.append(f"professional_buyers {text!r} is not a non-negative integer")
        return None
    value = int(text)
    if value > MAX_BUYERS:
        problems.append(f"professional_buyers {text} is above {MAX_BUYERS}")
        return None
    return value


class _HasClient(Protocol):
    client: Client


def load_season(store_or_client: _HasClient | Client, database: str,
                rows: Iterable[SeasonRow], source: str = "") -> int:
    """Insert ``rows`` into ``<database>.season_baseline`` in one insert; returns how many.

    ``store_or_client`` is a ``core.store.Store`` (its writing client) or a
    clickhouse-connect client. All rows share one ``loaded_at``, later than any earlier
    load, so each replaces the count of the same (season, pavilion, cluster) and the
    season becomes the latest loaded one (the view's "previous season").
    """
    client = store_or_client if isinstance(store_or_client, Client) else store_or_client.client
    loaded_at = datetime.now(UTC)
    data = [[r.season, r.pavilion_id, r.cluster_id, r.professional_buyers, source, loaded_at]
            for r in rows]
    if data:
        client.insert(f"{database}.{SEASON_BASELINE.name}", data,
                      column_names=["season", "pavilion_id", "cluster_id",
                                    "professional_buyers", "source", "loaded_at"])
    return len(data)

"""``leadloom season import FILE``: load a previous season's professional buyers (CSV).

The file is checked whole first (``core.season.parse_season``): any bad line and nothing
is loaded, the command exits 1 naming the first bad line. Then the rows go into
``season_baseline`` in one insert; a (season, pavilion, cluster) imported again replaces
its count. The ``season_comparison`` view compares each fair with the latest imported
season whose label is not the fair's own.

While ``leadloom run`` owns the embedded store the command refuses and changes nothing
(``store_writes``); owning the store, it refreshes the views' snapshots after loading.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from core.season import load_season, parse_season
from core.settings import Settings
from leadloom.commands.store_writes import read_text, store_for_writing


def import_file(settings: Settings, path: Path,
                progress: Callable[[str], None]) -> dict[str, object]:
    """Check and import the season file at ``path``; the summary ``--json`` prints:
    ``{"file", "database", "season", "rows", "professional_buyers"}`` (the file's total).

    Raises ``SeasonFileError`` (a bad file), ``StoreError`` (not UTF-8, or the store is
    owned by a running ``leadloom run``) or ``OSError`` (unreadable file), each with a
    one-line reason.
    """
    rows = parse_season(read_text(path), source=str(path))
    with store_for_writing(settings) as store:
        loaded = load_season(store, store.database, rows, source=path.name)
    season = rows[0].season  # parse_season guarantees one season and at least one row
    progress(f"imported {loaded} pavilion/cluster count(s) of season {season} from {path}"
             f" into {settings.clickhouse_database}")
    return {
        "file": str(path),
        "database": settings.clickhouse_database,
        "season": season,
        "rows": loaded,
        "professional_buyers": sum(r.professional_buyers for r in rows),
    }

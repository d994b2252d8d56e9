"""``leadloom season import FILE``: load a previous season's professional buyers (CSV).

The file is checked whole first (``core.season.parse_season``): any bad line and nothing
is loaded, the command exits 1 naming the first bad line. Then the rows go into
``season_baseline`` in one insert; a (season, pavilion, cluster) imported again replaces
its count. The ``season_comparison`` view compares each fair with the latest imported
season whose label is not the fair's own.

The embedded store has one writer, its owner: writes through the owner (``leadloom run``)
are not supported, so while it runs the command refuses and changes nothing; otherwise it
opens the store itself (and applies pending migrations, as every writer does). On a
server DSN it writes directly.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from core.migrations import load_migrations
from core.reads import StoreError
from core.season import load_season, parse_season
from core.settings import Settings
from core.store import Store
from infra.clickhouse import MIGRATIONS_DIR


def import_file(settings: Settings, path: Path,
                progress: Callable[[str], None]) -> dict[str, object]:
    """Check and import the season file at ``path``; the summary ``--json`` prints:
    ``{"file", "database", "season", "rows", "professional_buyers"}`` (the file's total).

    Raises ``SeasonFileError`` (a bad file), ``StoreError`` (not UTF-8, or the store is
    owned by a running ``leadloom run``) or ``OSError`` (unreadable file), each with a
    one-line reason.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")  # a spreadsheet's BOM is not a header
    except UnicodeDecodeError:
        raise StoreError(f"{path}: not UTF-8 text; nothing was loaded") from None
    rows = parse_season(text, source=str(path))
    try:
        store = Store(settings, migrations=load_migrations(MIGRATIONS_DIR))
    except StoreError:
        if not settings.embedded:
            raise
        raise StoreError(
            f"the embedded store in {settings.data_dir} is owned by a running 'leadloom run'"
            " (writes through it are not supported): stop leadloom run first; nothing was"
            " loaded"
        ) from None
    try:
        loaded = load_season(store, store.database, rows, source=path.name)
        if settings.embedded:  # this process owns the store: the views' snapshots are ours
            store.refresh_snapshots()  # (on a server, leadloom run's refresher sees the change)
    finally:
        store.close()
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

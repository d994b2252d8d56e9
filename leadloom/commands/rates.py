"""``leadloom rates load FILE``: load an operator's currency rates (CSV) into the store.

The file is checked whole first (``core.rates.parse_rates``): any bad line and nothing is
loaded, the command exits 1 naming the first bad line. Then the rows go into
``currency_rates`` in one insert; a (currency, valid_from) loaded again replaces the earlier
rate, others are added. The shipped reference rates come from migration 009
(``009_currency_rates.sql``, which creates the table and inserts them while it is empty).

The embedded store has one writer, its owner: writes through the owner (``leadloom run``)
are not supported, so while it runs the command refuses and changes nothing; otherwise it
opens the store itself (and applies pending migrations, as every writer does). On a
server DSN it writes directly.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from core.migrations import load_migrations
from core.rates import load_rates, parse_rates
from core.reads import StoreError
from core.settings import Settings
from core.store import Store
from infra.clickhouse import MIGRATIONS_DIR
from schemas.registry import CNY_RATE_CURRENT


def load_file(settings: Settings, path: Path,
              progress: Callable[[str], None]) -> dict[str, object]:
    """Check and load the rates file at ``path``; the summary ``--json`` prints.

    Raises ``RatesFileError`` (a bad file), ``StoreError`` (the store is owned by a running
    ``leadloom run``) or ``OSError`` (unreadable file), each with a one-line reason.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")  # a spreadsheet's BOM is not a header
    except UnicodeDecodeError:
        raise StoreError(f"{path}: not UTF-8 text; nothing was loaded") from None
    rates = parse_rates(text, source=str(path))
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
        loaded = load_rates(store, store.database, rates, source=path.name)
        if settings.embedded:  # this process owns the store: the views' snapshots are ours
            store.refresh_snapshots()  # (on a server, leadloom run's refresher sees the change)
        current = store.query(
            f"SELECT currency, cny_per_unit, valid_from FROM {store.database}."
            f"{CNY_RATE_CURRENT.name} ORDER BY currency"
        ).rows
    finally:
        store.close()
    progress(f"loaded {loaded} rate(s) for {len({r.currency for r in rates})} currencies"
             f" from {path} into {settings.clickhouse_database}")
    return {
        "file": str(path),
        "database": settings.clickhouse_database,
        "loaded": loaded,
        "current": {str(c): {"cny_per_unit": str(Decimal(str(r)).normalize()),
                             "valid_from": str(v)} for c, r, v in current},
    }

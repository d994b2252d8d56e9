"""``leadloom rates load FILE``: load an operator's currency rates (CSV) into the store.

The file is checked whole first (``core.rates.parse_rates``): any bad line and nothing is
loaded, the command exits 1 naming the first bad line. Then the rows go into
``currency_rates`` in one insert; a (currency, valid_from) loaded again replaces the earlier
rate, others are added. The shipped reference rates come from migration 009
(``009_currency_rates.sql``, which creates the table and inserts them while it is empty).

While ``leadloom run`` owns the embedded store the command refuses and changes nothing
(``store_writes``); owning the store, it refreshes the views' snapshots after loading.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from core.rates import load_rates, parse_rates
from core.settings import Settings
from leadloom.commands.store_writes import read_text, store_for_writing
from schemas.registry import CNY_RATE_CURRENT


def load_file(settings: Settings, path: Path,
              progress: Callable[[str], None]) -> dict[str, object]:
    """Check and load the rates file at ``path``; the summary ``--json`` prints.

    Raises ``RatesFileError`` (a bad file), ``StoreError`` (the store is owned by a running
    ``leadloom run``) or ``OSError`` (unreadable file), each with a one-line reason.
    """
    rates = parse_rates(read_text(path), source=str(path))
    with store_for_writing(settings) as store:
        loaded = load_rates(store, store.database, rates, source=path.name)
        current = store.query(
            f"SELECT currency, cny_per_unit, valid_from FROM {store.database}."
            f"{CNY_RATE_CURRENT.name} ORDER BY currency"
        ).rows
    progress(f"loaded {loaded} rate(s) for {len({r.currency for r in rates})} currencies"
             f" from {path} into {settings.clickhouse_database}")
    return {
        "file": str(path),
        "database": settings.clickhouse_database,
        "loaded": loaded,
        "current": {str(c): {"cny_per_unit": str(Decimal(str(r)).normalize()),
                             "valid_from": str(v)} for c, r, v in current},
    }

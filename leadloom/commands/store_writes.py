"""What the commands that write an operator's file into the store share (``leadloom rates
load``, ``leadloom season import``).

The embedded store has one writer, its owner: writes through the owner (``leadloom run``)
are not supported, so while it runs such a command refuses and changes nothing; otherwise
it opens the store itself (applying pending migrations, as every writer does) and, owning
it, refreshes the lead intelligence snapshots after its write so the next reader sees it.
On a server DSN it writes directly and ``leadloom run``'s refresher sees the change.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.migrations import load_migrations
from core.reads import StoreError
from core.settings import Settings
from core.store import Store
from infra.clickhouse import MIGRATIONS_DIR


def read_text(path: Path) -> str:
    """The file's text; ``StoreError`` if it is not UTF-8, ``OSError`` if unreadable."""
    try:
        return path.read_text(encoding="utf-8-sig")  # a spreadsheet's BOM is not a header
    except UnicodeDecodeError:
        raise StoreError(f"{path}: not UTF-8 text; nothing was loaded") from None


@contextmanager
def store_for_writing(settings: Settings) -> Iterator[Store]:
    """The store, opened by this process; after the block, the snapshots refreshed (when
    embedded) and the store closed. ``StoreError`` with a one-line reason when another
    process owns the embedded store."""
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
        yield store
        if settings.embedded:
            store.refresh_snapshots()
    finally:
        store.close()

"""The store as the command opens it: with the project's migrations."""

from __future__ import annotations

from core.migrations import Migration, load_migrations
from core.settings import Settings
from core.store import Store
from infra.clickhouse import MIGRATIONS_DIR

MIGRATIONS: list[Migration] = load_migrations(MIGRATIONS_DIR)


def open_store(settings: Settings, **options: float) -> Store:
    return Store(settings, migrations=MIGRATIONS, **options)

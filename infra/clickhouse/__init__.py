"""ClickHouse DDL as numbered SQL files (``migrations/``), applied by ``core.migrations``."""

from pathlib import Path

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

"""Numbered ClickHouse migrations: reading them, their cluster variants, applying them.

The SQL files live in ``infra/clickhouse/migrations`` (``NNN_name.sql``, ``{database}`` is
replaced); the command hands them to the store (``Store(settings, migrations)``), so the
core never reaches into ``infra``. Every statement is itself idempotent, and the versions
applied are recorded in ``schema_migrations``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from clickhouse_connect.driver.client import Client

from schemas.registry import SCHEMA_MIGRATIONS


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(folder: Path) -> list[Migration]:
    """Every ``NNN_name.sql`` of ``folder``, in version order."""
    found = []
    for entry in Path(folder).iterdir():
        m = re.match(r"^(\d{3})_(.+)\.sql$", entry.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), entry.read_text("utf-8")))
    return sorted(found, key=lambda m: m.version)


def split_statements(sql: str) -> list[str]:
    lines = [ln for ln in sql.splitlines() if not ln.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def on_cluster(statement: str, cluster: str) -> str:
    """The ClickHouse-cluster variant of one migration statement.

    Tables become replicated on every node of ``cluster`` (``ON CLUSTER``, also for
    ``ALTER TABLE``, and ``Replicated*MergeTree`` with the server's default replica path);
    views are created on every node. The data is replicated, not sharded:
    ReplacingMergeTree collapses duplicates only within one shard, and a fair's volume
    fits one shard comfortably.
    """
    statement = re.sub(
        r"^((?:CREATE (?:TABLE|VIEW|DATABASE) IF NOT EXISTS|ALTER TABLE) \S+)",
        lambda m: f"{m.group(1)} ON CLUSTER '{cluster}'",
        statement,
        flags=re.M,
    )
    return re.sub(r"ENGINE = (\w*MergeTree)", r"ENGINE = Replicated\1", statement)


def migrate(client: Client, database: str, migrations: Sequence[Migration],
            cluster: str = "") -> list[int]:
    """Create ``database`` if missing and apply the migrations not yet recorded there.

    With ``cluster`` set (``LEADLOOM_CLICKHOUSE_CLUSTER``), the cluster variants run.
    Returns the versions applied.
    """
    def adapt(statement: str) -> str:
        return on_cluster(statement, cluster) if cluster else statement

    client.command(adapt(f"CREATE DATABASE IF NOT EXISTS {database}"))
    client.command(adapt(
        f"CREATE TABLE IF NOT EXISTS {database}.{SCHEMA_MIGRATIONS.name} "
        "(version UInt32, name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) "
        "ENGINE = ReplacingMergeTree ORDER BY version"
    ))
    done = {
        r[0]
        for r in client.query(
            f"SELECT version FROM {database}.{SCHEMA_MIGRATIONS.name}"
        ).result_rows
    }
    applied = []
    for migration in migrations:
        if migration.version in done:
            continue
        for statement in split_statements(migration.sql.replace("{database}", database)):
            client.command(adapt(statement))
        client.insert(
            f"{database}.{SCHEMA_MIGRATIONS.name}", [[migration.version, migration.name]],
            column_names=["version", "name"],
        )
        applied.append(migration.version)
    return applied

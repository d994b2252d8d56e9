"""Numbered ClickHouse migrations: reading them, their cluster variants, applying them.

The SQL files live in ``infra/clickhouse/migrations`` (``NNN_name.sql``, ``{database}`` is
replaced); the command hands them to the store (``Store(settings, migrations)``), so the
core never reaches into ``infra``. The versions applied are recorded in
``schema_migrations``, each only after all its statements ran, so a migration interrupted
midway runs again from its first statement. Every statement is therefore safe to repeat:
idempotent by itself (``CREATE ... IF NOT EXISTS``, ``DROP ... IF EXISTS``, an
``INSERT ... SELECT`` whose rows collapse with an earlier copy of themselves), or guarded.

A guard is a comment block that starts with ``-- when:`` right before a statement (its
``--`` lines up to the statement are one query, ``{database}`` replaced): the statement
runs only if that query's first value is true (non-zero). Guards read the state of the
store (``system.tables``), never a record of progress, so a statement that ran but was not
recorded is not run twice::

    -- when: SELECT count() FROM system.tables
    --       WHERE database = '{database}' AND name = 'scans' AND sorting_key != 'event_id'
    EXCHANGE TABLES {database}.scans AND {database}.scans__006;

A migration whose file has a line starting ``-- online:`` (followed by why) may run while
the pipeline runs: the owner applies it when it opens the store as any other, and also
while running (``Store.apply_online_migrations``: a periodic check of ``leadloom run`` and
the sink when a row needs a column the store lacks). Only what changes nothing a running
writer relies on qualifies (e.g. ``ADD COLUMN IF NOT EXISTS`` of a Nullable column, a new
table); rewrites and exchanges wait for the owner's next start.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from clickhouse_connect.driver.client import Client

from schemas.registry import SCHEMA_MIGRATIONS

_GUARD = "-- when:"
_ONLINE = "-- online:"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def online(self) -> bool:
        """Whether a running pipeline may apply it (a ``-- online:`` line; module docstring)."""
        return any(line.strip().startswith(_ONLINE) for line in self.sql.splitlines())


@dataclass(frozen=True)
class Statement:
    """One statement of a migration and the guard query deciding whether it runs ("": it
    always runs)."""

    sql: str
    when: str = ""


def load_migrations(folder: Path) -> list[Migration]:
    """Every ``NNN_name.sql`` of ``folder``, in version order."""
    found = []
    for entry in Path(folder).iterdir():
        m = re.match(r"^(\d{3})_(.+)\.sql$", entry.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), entry.read_text("utf-8")))
    return sorted(found, key=lambda m: m.version)


def parse_statements(sql: str) -> list[Statement]:
    """The statements of a migration file, each with its guard (see the module docstring)."""
    out: list[Statement] = []
    guard: list[str] = []
    body: list[str] = []
    for line in sql.splitlines():
        text = line.strip()
        if text.startswith("--"):  # comments may hold ';' and never end a statement
            if body:
                continue
            if text.startswith(_GUARD):
                guard = [text[len(_GUARD):]]
            elif guard:  # the guard query goes on over the following comment lines
                guard.append(text[2:])
            continue
        pieces = line.split(";")
        for piece in pieces[:-1]:  # each ';' ends a statement
            body.append(piece)
            _flush(out, guard, body)
            guard, body = [], []
        if pieces[-1].strip():
            body.append(pieces[-1])
    _flush(out, guard, body)
    return out


def _flush(out: list[Statement], guard: list[str], body: list[str]) -> None:
    statement = "\n".join(b for b in body if b.strip()).strip()
    if statement:
        out.append(Statement(statement, " ".join(" ".join(guard).split())))


def split_statements(sql: str) -> list[str]:
    """The statements of a migration file, without comments and guards."""
    return [s.sql for s in parse_statements(sql)]


# Statement kinds and where ON CLUSTER goes in each: after the object's name, or (EXCHANGE)
# after the second name. INSERT has no cluster variant: it runs on one node, and the
# replicated table carries the rows to the others.
_CLUSTER_CLAUSE = re.compile(
    r"^((?:CREATE (?:TABLE|VIEW|DATABASE) IF NOT EXISTS|ALTER TABLE"
    r"|DROP (?:TABLE|VIEW|DATABASE) IF EXISTS|TRUNCATE TABLE)"
    r" \S+|EXCHANGE TABLES \S+ AND \S+|RENAME TABLE \S+ TO \S+)",
    flags=re.M,
)


def on_cluster(statement: str, cluster: str) -> str:
    """The ClickHouse-cluster variant of one migration statement.

    Tables become replicated on every node of ``cluster`` (``ON CLUSTER``, also for
    ``ALTER TABLE``, ``DROP TABLE|VIEW|DATABASE``, ``TRUNCATE TABLE``, ``RENAME TABLE``
    and ``EXCHANGE TABLES``; and
    ``Replicated*MergeTree`` with the server's default replica path, which names the
    table by its UUID, so an exchange keeps each table's replicas); views are created on
    every node. ``INSERT`` stays as it is (one node writes, replication copies). The data
    is replicated, not sharded: ReplacingMergeTree collapses duplicates only within one
    shard, and a fair's volume fits one shard comfortably.
    """
    statement = _CLUSTER_CLAUSE.sub(
        lambda m: f"{m.group(1)} ON CLUSTER '{cluster}'", statement, count=1
    )
    return re.sub(r"ENGINE = (\w*MergeTree)", r"ENGINE = Replicated\1", statement)


def migrate(client: Client, database: str, migrations: Sequence[Migration],
            cluster: str = "", online_only: bool = False) -> list[int]:
    """Create ``database`` if missing and apply the migrations not yet recorded there.

    With ``cluster`` set (``LEADLOOM_CLICKHOUSE_CLUSTER``), the cluster variants run.
    Guards run as they are, on the node this client reaches (cluster DDL keeps every
    node's tables alike). With ``online_only`` (a running pipeline), the pending
    migrations are applied in order up to the first one that is not ``online``: versions
    are never applied out of order. Returns the versions applied.
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
        if online_only and not migration.online:
            break
        for statement in parse_statements(migration.sql.replace("{database}", database)):
            if statement.when and not _holds(client, statement.when):
                continue
            client.command(adapt(statement.sql))
        client.insert(
            f"{database}.{SCHEMA_MIGRATIONS.name}", [[migration.version, migration.name]],
            column_names=["version", "name"],
        )
        applied.append(migration.version)
    return applied


def _holds(client: Client, query: str) -> bool:
    rows = client.query(query).result_rows
    return bool(rows and rows[0] and rows[0][0])

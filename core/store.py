"""The ClickHouse store: client factory and the single owner of the embedded engine.

The store applies the migrations it is handed (``core.migrations``) when it opens.

Two targets, one client library (clickhouse-connect), chosen by DSN:
- ``chdb://<path>``: the embedded engine. Only one process may open a path, so the
  process that runs the sink *owns* it (an exclusive lock file) and serves ClickHouse's
  HTTP interface on loopback to other processes and clients (``core.owner``), each read on
  a session of the reader's scope (``scoped_sessions``).
- ``http(s)://host:port``: a ClickHouse server; every process connects directly.

Writes are the sink's (``Store.insert_json_rows``). Reads never share the sink's client:
each runs on a read-only client of its own under the engine's rules (``core.reads``).
Named queries, the numbers shown to users, are in ``core.queries``.
"""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import urlparse

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from core.migrations import Migration, migrate
from core.reads import (
    READ_TIME_LIMIT_S,
    QueryResult,
    ReaderPool,
    StoreError,
    StoreLocked,
    open_reader,
    run_read,
)
from core.scoped_sessions import ScopedSessions
from core.settings import Settings
from core.snapshots import inputs_signature
from core.snapshots import refresh as refresh_snapshots

# A JSON key with no column of its table is refused (INCORRECT_DATA, a row refusal the
# sink dead-letters as store_refused), not dropped: rows match their columns
# (tests/integration/test_row_contract.py). Omitted keys take the column's DEFAULT.
INSERT_SETTINGS = {
    "input_format_skip_unknown_fields": 0,
    "date_time_input_format": "best_effort",
}
READERS = 4
"""Reads the embedded store's owner runs at once; more wait (up to the time limit) for one."""


def connect(settings: Settings) -> Client:
    """Open a client on the configured DSN (embedded callers must hold the owner lock).

    It creates nothing: the database is created by the migrations (``Store``), so a user
    who may only read can connect.
    """
    dsn = settings.resolved_dsn
    if dsn.startswith("chdb://"):
        path = Path(dsn[len("chdb://"):])
        path.mkdir(parents=True, exist_ok=True)
        client = clickhouse_connect.get_client(dsn=f"chdb://{path}")
    else:
        url = urlparse(dsn)
        client = clickhouse_connect.get_client(
            dsn=dsn, password=settings.clickhouse_password.get_secret_value() or url.password
        )
    return client


class Store:
    """Read/write access for the owner process (the sink) or for a server DSN."""

    def __init__(self, settings: Settings, migrations: Sequence[Migration],
                 read_time_limit_s: float = READ_TIME_LIMIT_S,
                 migrations_source: Callable[[], Sequence[Migration]] | None = None) -> None:
        """Open the store; apply ``migrations`` not applied yet (none: open it as it is).

        ``migrations_source`` gives the migrations as they are now (``leadloom run``: the
        migrations folder, read again each time) for :meth:`apply_online_migrations`;
        by default the ``migrations`` handed here."""
        self.settings = settings
        self._migrations_source = migrations_source or (lambda: migrations)
        self.database = settings.clickhouse_database
        self.read_time_limit_s = read_time_limit_s
        self._lock_file = None
        if settings.embedded:
            self._lock_file = _acquire_owner_lock(settings)
        self.client = connect(settings)
        self._mutex = threading.Lock()  # the writing client, used from two threads
        if migrations:
            migrate(self.client, self.database, migrations, settings.clickhouse_cluster)
        self._readers = ReaderPool(lambda: open_reader(settings, read_time_limit_s), READERS,
                                   wait_s=read_time_limit_s)
        self._maintenance: Client | None = None
        self._maintenance_mutex = threading.Lock()
        self._sessions: ScopedSessions | None = None
        self._sessions_mutex = threading.Lock()

    def apply_online_migrations(self) -> list[int]:
        """Apply the pending migrations a running pipeline may apply (``online``, in order:
        ``core.migrations.migrate(online_only=True)``) from ``migrations_source``; the
        versions applied. Runs under the writing client's lock, between two sink inserts.
        Raises what the engine or reading the migrations raises (the callers retry later)."""
        migrations = self._migrations_source()
        with self._mutex:
            return migrate(self.client, self.database, migrations,
                           self.settings.clickhouse_cluster, online_only=True)

    def scoped_sessions(self) -> ScopedSessions:
        """The embedded store's scoped sessions (``core.scoped_sessions``: the HTTP
        interface's reads, one scope each); opened on first use, closed with the store."""
        if not self.settings.embedded:
            raise StoreError("scoped sessions are the embedded store's; a server has users")
        with self._sessions_mutex:
            if self._sessions is None:
                path = self.settings.resolved_dsn[len("chdb://"):]
                self._sessions = ScopedSessions(path, self.read_time_limit_s)
            return self._sessions

    def maintenance_client(self) -> Client:
        """A writing client of its own for the owner's long statements (snapshot refreshes),
        so they never hold the sink's lock; opened on first use, closed with the store."""
        with self._maintenance_mutex:
            if self._maintenance is None:
                self._maintenance = connect(self.settings)
            return self._maintenance

    def refresh_snapshots(self, max_threads: int | None = None) -> dict[str, float]:
        """Recompute every lead intelligence snapshot now (``core.snapshots.refresh``, on
        at most ``max_threads`` engine threads); seconds per view. ``leadloom run`` keeps
        them current with a ``SnapshotRefresher`` calling this; tests and the demo call it
        to read what is stored now."""
        client = self.maintenance_client()
        with self._maintenance_mutex:
            return refresh_snapshots(client, self.database,
                                     cluster=self.settings.clickhouse_cluster,
                                     max_threads=max_threads)

    def snapshot_inputs_signature(self) -> tuple[int, int, int]:
        """``core.snapshots.inputs_signature`` of this store's database."""
        client = self.maintenance_client()
        with self._maintenance_mutex:
            return inputs_signature(client, self.database)

    def insert_json_rows(self, table: str, rows: list[bytes]) -> None:
        """Insert JSON rows (one object each) as JSONEachRow into ``table``.

        A key the table has no column for is refused by the engine (``INCORRECT_DATA``):
        with the other refusals, the sink bisects the insert and dead-letters that row.
        """
        with self._mutex:
            self.client.raw_insert(
                f"{self.database}.{table}", column_names=None,
                insert_block=b"\n".join(rows), fmt="JSONEachRow", settings=INSERT_SETTINGS,
            )

    def query(self, sql: str) -> QueryResult:
        """Run one read statement (SELECT, DESCRIBE, SHOW, EXISTS) and return all its rows.

        It runs on a read-only client of its own, never under the sink's lock, with the
        engine's ``readonly=1`` and ``max_execution_time`` = ``read_time_limit_s``; the
        engine's parser must accept ``sql`` as one read statement (``core.reads``). Raises
        ``StoreError`` with a one-line reason: refused, over the time limit, the engine's
        own error, or the store closing.
        """
        with self._readers.borrow() as reader:
            return run_read(reader, sql, self.read_time_limit_s)

    def close(self) -> None:
        """Stop running reads (embedded: cancelled at once), then close every client."""
        self._readers.close(cancel=self._cancel_reads if self.settings.embedded else None)
        with self._sessions_mutex:
            if self._sessions is not None:
                self._sessions.close()
        with self._mutex:
            self.client.close()
        with self._maintenance_mutex:
            if self._maintenance is not None:
                self._maintenance.close()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def _cancel_reads(self) -> None:
        # Only the readers run with readonly=1 on this engine; killing them lets a shutdown
        # go ahead without waiting out the time limit. On a server that filter would also
        # match other processes' reads, so only the embedded engine does this.
        with self._mutex:
            self.client.command("KILL QUERY WHERE Settings['readonly'] = '1' ASYNC")


def _acquire_owner_lock(settings: Settings):  # type: ignore[no-untyped-def]
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    handle = open(settings.data_dir / "store.lock", "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise StoreLocked(
            f"the embedded store in {settings.data_dir} is owned by another process"
            " (is 'leadloom run' running?); stop it or use 'leadloom sql'"
        ) from None
    return handle


"""The ClickHouse store: client factory, migrations, and the single owner of the embedded engine.

Two targets, one client library (clickhouse-connect), chosen by DSN:
- ``chdb://<path>``: the embedded engine. Only one process may open a path, so the
  process that runs the sink *owns* it (an exclusive lock file) and serves read
  queries to other processes over a loopback HTTP endpoint (``store.endpoint``).
- ``http(s)://host:port``: a ClickHouse server; every process connects directly.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from leadloom.settings import Settings
from schemas.registry import ALL_TABLES, SCHEMA_MIGRATIONS

INSERT_SETTINGS = {
    "input_format_skip_unknown_fields": 1,
    "date_time_input_format": "best_effort",
}
_READ_ONLY = re.compile(r"^\s*(SELECT|WITH|SHOW|DESCRIBE|DESC|EXPLAIN|EXISTS)\b", re.I)


class StoreError(RuntimeError):
    """The store cannot be reached or refused the request (one-line message)."""


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[list[Any]]


def connect(settings: Settings) -> Client:
    """Open a client on the configured DSN (embedded callers must hold the owner lock)."""
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
    cluster = f" ON CLUSTER '{settings.clickhouse_cluster}'" if settings.clickhouse_cluster else ""
    client.command(f"CREATE DATABASE IF NOT EXISTS {settings.clickhouse_database}{cluster}")
    return client


def migration_files() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every numbered migration, in order."""
    folder = resources.files("infra") / "clickhouse" / "migrations"
    found = []
    for entry in folder.iterdir():
        m = re.match(r"^(\d{3})_(.+)\.sql$", entry.name)
        if m:
            found.append((int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    return sorted(found)


def on_cluster(statement: str, cluster: str) -> str:
    """The ClickHouse-cluster variant of one migration statement.

    Tables become replicated on every node of ``cluster`` (``ON CLUSTER``, also for
    ``ALTER TABLE``, and
    ``Replicated*MergeTree`` with the server's default replica path); views are created on
    every node. The data is replicated, not sharded: ReplacingMergeTree collapses duplicates
    only within one shard, and a fair's volume fits one shard comfortably.
    """
    statement = re.sub(
        r"^((?:CREATE (?:TABLE|VIEW) IF NOT EXISTS|ALTER TABLE) \S+)",
        lambda m: f"{m.group(1)} ON CLUSTER '{cluster}'",
        statement,
        flags=re.M,
    )
    return re.sub(r"ENGINE = (\w*MergeTree)", r"ENGINE = Replicated\1", statement)


def migrate(client: Client, database: str, cluster: str = "") -> list[int]:
    """Apply the migrations not yet recorded; every statement is itself idempotent.

    With ``cluster`` set (``LEADLOOM_CLICKHOUSE_CLUSTER``), the cluster variants run.
    """
    def adapt(statement: str) -> str:
        return on_cluster(statement, cluster) if cluster else statement

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
    for version, name, sql in migration_files():
        if version in done:
            continue
        for statement in split_statements(sql.replace("{database}", database)):
            client.command(adapt(statement))
        client.insert(
            f"{database}.{SCHEMA_MIGRATIONS.name}", [[version, name]],
            column_names=["version", "name"],
        )
        applied.append(version)
    return applied


def split_statements(sql: str) -> list[str]:
    lines = [ln for ln in sql.splitlines() if not ln.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


class Store:
    """Read/write access for the owner process (the sink) or for a server DSN."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.database = settings.clickhouse_database
        self._lock_file = None
        if settings.embedded:
            self._lock_file = _acquire_owner_lock(settings)
        self.client = connect(settings)
        self._mutex = threading.Lock()  # one engine handle, used from two threads
        migrate(self.client, self.database, settings.clickhouse_cluster)

    def insert_json_rows(self, table: str, rows: list[bytes]) -> None:
        """Insert JSON rows (one object each) as JSONEachRow; unknown keys are ignored."""
        with self._mutex:
            self.client.raw_insert(
                f"{self.database}.{table}", column_names=None,
                insert_block=b"\n".join(rows), fmt="JSONEachRow", settings=INSERT_SETTINGS,
            )

    def truncate_data(self) -> None:
        """Empty every data table (not the migrations record): a fresh start for a demo."""
        with self._mutex:
            for table in ALL_TABLES:
                if not table.is_view and table is not SCHEMA_MIGRATIONS:
                    self.client.command(f"TRUNCATE TABLE IF EXISTS {self.database}.{table.name}")

    def query(self, sql: str) -> QueryResult:
        with self._mutex:
            result = self.client.query(sql)
        return QueryResult(list(result.column_names), [list(r) for r in result.result_rows])

    def close(self) -> None:
        with self._mutex:
            self.client.close()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None


def _acquire_owner_lock(settings: Settings):  # type: ignore[no-untyped-def]
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    handle = open(settings.data_dir / "store.lock", "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise StoreError(
            f"the embedded store in {settings.data_dir} is owned by another process"
            " (is 'leadloom run' running?); stop it or use 'leadloom sql'"
        ) from None
    return handle


class QueryServer:
    """Serves read-only queries on the owner's store to other local processes."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.endpoint_file = settings.data_dir / "store.endpoint"
        handler = _make_handler(store)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="store-queries",
                                       daemon=True)

    def start(self) -> None:
        self.thread.start()
        port = self.httpd.server_address[1]
        tmp = self.endpoint_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": os.getpid(), "port": port}))
        tmp.replace(self.endpoint_file)

    def stop(self) -> None:
        try:
            self.endpoint_file.unlink()
        except FileNotFoundError:
            pass
        self.httpd.shutdown()
        self.httpd.server_close()


def _make_handler(store: Store) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server naming)
            sql = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            if not _READ_ONLY.match(sql):
                return self._reply(400, {"error": "only read queries are served"})
            try:
                result = store.query(sql)
            except Exception as exc:  # the caller gets the engine's message
                return self._reply(400, {"error": _first_line(str(exc))})
            self._reply(200, {"columns": result.columns, "rows": result.rows})

        def _reply(self, code: int, body: dict) -> None:
            data = json.dumps(body, default=str, ensure_ascii=False).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


def read_query(settings: Settings, sql: str, timeout_s: float = 60.0) -> QueryResult:
    """Run a read query from any process: via the owner if one runs, else directly."""
    if not _READ_ONLY.match(sql):
        raise StoreError("only read queries (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN) are allowed")
    if not settings.embedded:
        client = connect(settings)
        result = client.query(sql)
        return QueryResult(list(result.column_names), [list(r) for r in result.result_rows])
    endpoint = settings.data_dir / "store.endpoint"
    if endpoint.exists():
        info = json.loads(endpoint.read_text())
        request = urllib.request.Request(
            f"http://127.0.0.1:{info['port']}/query", data=sql.encode(), method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as resp:
                body = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raise StoreError(json.loads(exc.read()).get("error", str(exc))) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            body = None  # a stale endpoint file: the owner is gone
        if body is not None:
            return QueryResult(body["columns"], body["rows"])
    store = Store(settings)
    try:
        return store.query(sql)
    finally:
        store.close()


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "query failed"

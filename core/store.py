"""The ClickHouse store: client factory and the single owner of the embedded engine.

The store applies the migrations it is handed (``core.migrations``) when it opens.

Two targets, one client library (clickhouse-connect), chosen by DSN:
- ``chdb://<path>``: the embedded engine. Only one process may open a path, so the
  process that runs the sink *owns* it (an exclusive lock file) and serves read
  queries to other processes over a loopback HTTP endpoint (``store.endpoint``).
- ``http(s)://host:port``: a ClickHouse server; every process connects directly.

Reads (``Store.query``, the endpoint, ``read_query``) never share the sink's client: each
runs on a read-only client of its own (embedded: a separate engine handle on the same
path, so it runs beside the sink's inserts) under the engine's ``readonly=1`` and a time
limit (``max_execution_time``). The engine's parser admits one read statement; see
``_vetted``.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import Error as ClickHouseError

from core.migrations import Migration, migrate
from core.settings import Settings

INSERT_SETTINGS = {
    "input_format_skip_unknown_fields": 1,
    "date_time_input_format": "best_effort",
}
READ_TIME_LIMIT_S = 30.0
"""The engine's time limit for one read (``max_execution_time``), in seconds."""
READERS = 4
"""Reads the embedded store's owner runs at once; more wait (up to the time limit) for one."""
_ANSWER_MARGIN_S = 10.0  # read_query waits this much beyond the limit for the owner's reply
# Statement kinds served, as the engine's parser names them (first line of EXPLAIN AST).
# KILL QUERY and CHECK TABLE also pass readonly=1, so admitting kinds is an allow-list.
_SERVED_KINDS = frozenset({
    "SelectWithUnionQuery", "DescribeQuery", "ShowTables", "ShowColumns", "ShowIndexes",
    "ShowCreateTableQuery", "ShowCreateViewQuery", "ShowCreateDatabaseQuery",
    "ExistsTableQuery", "ExistsDatabaseQuery",
})
# The scalar file() reads any file the process can: the embedded engine runs as
# clickhouse-local, where neither readonly=1 nor user_files_path restricts it.
_UNSERVED_FUNCTIONS = frozenset({"file"})
# Engine error codes that get their own wording.
_READONLY, _TIMEOUT_EXCEEDED, _QUERY_WAS_CANCELLED, _FUNCTION_NOT_ALLOWED = 164, 159, 394, 446
_SYNTAX_ERROR = 62


class StoreError(RuntimeError):
    """The store cannot be reached or refused the request (one-line message)."""


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[list[Any]]


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
                 read_time_limit_s: float = READ_TIME_LIMIT_S) -> None:
        """Open the store; apply ``migrations`` not applied yet (none: open it as it is)."""
        self.settings = settings
        self.database = settings.clickhouse_database
        self.read_time_limit_s = read_time_limit_s
        self._lock_file = None
        if settings.embedded:
            self._lock_file = _acquire_owner_lock(settings)
        self.client = connect(settings)
        self._mutex = threading.Lock()  # the writing client, used from two threads
        if migrations:
            migrate(self.client, self.database, migrations, settings.clickhouse_cluster)
        self._readers = _Readers(lambda: _open_reader(settings, read_time_limit_s), READERS,
                                 wait_s=read_time_limit_s)

    def insert_json_rows(self, table: str, rows: list[bytes]) -> None:
        """Insert JSON rows (one object each) as JSONEachRow; unknown keys are ignored."""
        with self._mutex:
            self.client.raw_insert(
                f"{self.database}.{table}", column_names=None,
                insert_block=b"\n".join(rows), fmt="JSONEachRow", settings=INSERT_SETTINGS,
            )

    def query(self, sql: str) -> QueryResult:
        """Run one read statement (SELECT, DESCRIBE, SHOW, EXISTS) and return all its rows.

        It runs on a read-only client of its own, never under the sink's lock, with the
        engine's ``readonly=1`` and ``max_execution_time`` = ``read_time_limit_s``; the
        engine's parser must accept ``sql`` as one read statement (``_vetted``). Raises
        ``StoreError`` with a one-line reason: refused, over the time limit, the engine's
        own error, or the store closing.
        """
        with self._readers.borrow() as reader:
            return _read(reader, sql, self.read_time_limit_s)

    def close(self) -> None:
        """Stop running reads (embedded: cancelled at once), then close every client."""
        self._readers.close(cancel=self._cancel_reads if self.settings.embedded else None)
        with self._mutex:
            self.client.close()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def _cancel_reads(self) -> None:
        # Only the readers run with readonly=1 on this engine; killing them lets a shutdown
        # go ahead without waiting out the time limit. On a server that filter would also
        # match other processes' reads, so only the embedded engine does this.
        with self._mutex:
            self.client.command("KILL QUERY WHERE Settings['readonly'] = '1' ASYNC")


class _Readers:
    """Read-only clients, opened on demand, one per read running; at most ``size`` at once."""

    def __init__(self, open_client: Callable[[], Client], size: int, wait_s: float) -> None:
        self._open = open_client
        self._size = size
        self._wait_s = wait_s
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._idle: list[Client] = []
        self._opened: list[Client] = []
        self._closed = False

    @contextmanager
    def borrow(self) -> Iterator[Client]:
        if not self._slots.acquire(timeout=self._wait_s):
            raise StoreError(f"the store is busy: {self._size} reads are running; try again")
        try:
            with self._lock:
                if self._closed:
                    raise StoreError("the store is closing")
                client = self._idle.pop() if self._idle else None
            if client is None:
                client = self._open()
                with self._lock:
                    late = self._closed
                    if not late:
                        self._opened.append(client)
                if late:
                    client.close()
                    raise StoreError("the store is closing")
            try:
                yield client
            finally:
                with self._lock:
                    if not self._closed:
                        self._idle.append(client)
        finally:
            self._slots.release()

    def close(self, cancel: Callable[[], None] | None) -> None:
        with self._lock:
            self._closed = True
            opened, self._opened, self._idle = self._opened, [], []
        if cancel is not None and opened:
            try:
                cancel()
            except ClickHouseError:  # nothing to cancel, or the engine is going away anyway
                pass
        for client in opened:
            client.close()  # waits for a read still on it: cancelled, or within the limit


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
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                result = store.query(body.decode())
            except UnicodeDecodeError:
                return self._reply(400, {"error": "the query is not UTF-8 text"})
            except StoreError as exc:  # refused, over the limit, or the engine's own error
                return self._reply(400, {"error": str(exc)})
            except Exception as exc:  # a fault of ours: still one line for the caller
                reason = f"the store's owner failed: {_first_line(str(exc))}"
                return self._reply(500, {"error": reason})
            self._reply(200, {"columns": result.columns, "rows": result.rows})

        def _reply(self, code: int, body: dict) -> None:
            data = json.dumps(body, default=str, ensure_ascii=False).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the caller stopped waiting (its timeout): nobody to tell

        def log_message(self, *args: object) -> None:
            pass

    return Handler


def read_query(settings: Settings, sql: str, timeout_s: float | None = None) -> QueryResult:
    """Run one read statement from any process, under the rules of ``Store.query``.

    On a server DSN the read runs here, on a read-only client. On the embedded store it
    goes to the owner's endpoint while an owner (``leadloom run``, a demo) runs; only when
    the endpoint file is stale (nothing listens on its port: the owner is gone) is the
    store opened here. An owner that takes the request but does not answer within
    ``timeout_s`` (default: the time limit plus 10 s) is reported as not answering: the
    store is not opened behind its back. Raises ``StoreError`` with a one-line reason.
    """
    limit_s = READ_TIME_LIMIT_S
    if not settings.embedded:
        client = _open_reader(settings, limit_s)
        try:
            return _read(client, sql, limit_s)
        finally:
            client.close()
    endpoint = _read_endpoint(settings.data_dir / "store.endpoint")
    if endpoint is not None:
        wait_s = limit_s + _ANSWER_MARGIN_S if timeout_s is None else timeout_s
        answer = _ask_owner(endpoint, sql, wait_s)
        if answer is not None:
            return answer
    store = Store(settings, migrations=(), read_time_limit_s=limit_s)
    try:
        return store.query(sql)
    finally:
        store.close()


def _read_endpoint(path: Path) -> dict[str, int] | None:
    try:
        info = json.loads(path.read_text())
        return {"pid": int(info["pid"]), "port": int(info["port"])}
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):  # not ours, or torn: treat as stale
        return None


def _ask_owner(endpoint: dict[str, int], sql: str, timeout_s: float) -> QueryResult | None:
    """The owner's answer, or None when nothing listens on its port (a stale endpoint)."""
    pid, port = endpoint["pid"], endpoint["port"]
    request = urllib.request.Request(f"http://127.0.0.1:{port}/query", data=sql.encode(),
                                     method="POST")
    silent = StoreError(
        f"the store's owner (pid {pid}) did not answer within {timeout_s:g} s: it is running"
        " but busy or stopped, so the store was not opened here; try again later"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as resp:
            body = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        raise StoreError(_owner_error(exc)) from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ConnectionRefusedError):
            return None
        if isinstance(exc.reason, TimeoutError):
            raise silent from None
        raise StoreError(f"cannot reach the store's owner (pid {pid}): {exc.reason}") from None
    except TimeoutError:
        raise silent from None
    except ConnectionRefusedError:
        return None
    except ConnectionError as exc:  # it took the request and hung up: stopping, or died
        raise StoreError(f"the store's owner (pid {pid}) hung up without an answer ({exc});"
                         " try again") from None
    return QueryResult(body["columns"], body["rows"])


def _owner_error(exc: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(exc.read())["error"])
    except (ValueError, KeyError, TypeError, OSError):
        return f"the store's owner answered HTTP {exc.code}"


def _open_reader(settings: Settings, limit_s: float) -> Client:
    """A client for reads only: the engine refuses anything else on it.

    Embedded, it is a separate handle on the engine the owner already runs (so reads run
    beside the sink's inserts instead of queueing behind them), and the settings are its
    session's, set before ``readonly=1`` locks them. On a server they go with every request.
    """
    session: dict[str, Any] = {"max_execution_time": limit_s}
    dsn = settings.resolved_dsn
    if dsn.startswith("chdb://"):
        # Both are on by default in chdb and readonly=1 leaves them on: Python objects of
        # the owner process as tables, and introspection of its memory.
        session |= {"allow_python_table_function": 0, "allow_introspection_functions": 0}
        return clickhouse_connect.get_client(dsn=f"chdb://{Path(dsn[len('chdb://'):])}",
                                             settings={**session, "readonly": 1})
    url = urlparse(dsn)
    client = clickhouse_connect.get_client(
        dsn=dsn, password=settings.clickhouse_password.get_secret_value() or url.password,
        autogenerate_session_id=False,
    )
    for name, value in {**session, "readonly": 1}.items():
        known = client.server_settings.get(name)
        # A setting the user's profile fixes (a readonly user) stays as the profile has it:
        # on a server, ClickHouse's users and profiles decide.
        if known is None or not known.readonly:
            client.set_client_setting(name, value)
    return client


# The text to vet goes in as a value. `bare`: the parser still accepts an output clause
# after the statement, so the statement has none of its own.
_VET = (
    "SELECT formatQuerySingleLine({sql:String}) AS statement, "
    "formatQuerySingleLineOrNull(concat(statement, '\\nINTO OUTFILE ''/dev/null''')) IS NOT NULL"
    " AS bare"
)
_NOT_A_READ = "refused: only read queries are served (SELECT, DESCRIBE, SHOW, EXISTS)"


def _read(client: Client, sql: str, limit_s: float) -> QueryResult:
    statement = _vetted(client, sql, limit_s)
    try:
        result = client.query(statement)
    except ClickHouseError as exc:
        raise StoreError(_reason(exc, limit_s)) from None
    return QueryResult(list(result.column_names), [list(r) for r in result.result_rows])


def _vetted(client: Client, sql: str, limit_s: float) -> str:
    """The one statement to run for ``sql``, as the engine's parser formatted it.

    Each decision is the engine parser's, on ``sql`` passed as a value (nothing of it runs):
    - exactly one statement: a second one is refused, not run after the first;
    - nothing after it but where an output clause could still go, so it carries no
      ``INTO OUTFILE`` (the embedded engine writes that file anywhere, readonly or not)
      and no ``FORMAT``; SET, USE and INSERT take no output clause and stop here too;
    - its kind (the root of ``EXPLAIN AST``) is a read in ``_SERVED_KINDS``: KILL QUERY and
      CHECK TABLE run under readonly=1 too;
    - it calls no function in ``_UNSERVED_FUNCTIONS``.
    When it runs, readonly=1 refuses writes, DDL, table functions such as ``file()``,
    ``url()``, ``s3()`` and ``remote()``, and any SETTINGS override.
    """
    try:
        statement, bare = client.query(_VET, parameters={"sql": sql}).result_rows[0]
        if not bare:
            raise StoreError(f"{_NOT_A_READ}, and their rows come back to the caller:"
                             " no INTO OUTFILE or FORMAT, no SET, USE or INSERT")
        tree = [row[0] for row in client.query(f"EXPLAIN AST {statement}").result_rows]
    except ClickHouseError as exc:
        raise StoreError(_reason(exc, limit_s)) from None
    kind = tree[0].split()[0] if tree and tree[0].strip() else "nothing"
    if kind not in _SERVED_KINDS:
        raise StoreError(f"{_NOT_A_READ}; the engine parses this one as {kind}")
    called, sources = _functions(tree)
    unserved = sorted(called & _UNSERVED_FUNCTIONS)
    if unserved:
        raise StoreError(f"refused: {unserved[0]}() reads files on the store's host and is"
                         " not served")
    if sources and kind != "SelectWithUnionQuery":
        # DESCRIBE infers a table function's columns by reading its source, which neither
        # readonly=1 refuses nor max_execution_time bounds (url() to a closed port: 33 s
        # under a 3 s limit). In a SELECT, readonly=1 decides.
        raise StoreError(f"refused: describing a table function ({sorted(sources)[0]}()) reads"
                         " its source and is not served")
    return str(statement)


def _functions(tree: list[str]) -> tuple[set[str], set[str]]:
    """(functions called, table functions read from) in the lines of an EXPLAIN AST."""
    path: list[str] = []  # node kinds from the root down to the current line's parent
    called: set[str] = set()
    sources: set[str] = set()
    for line in tree:
        words = line.split()
        if not words:
            continue
        del path[len(line) - len(line.lstrip(" ")):]
        if words[0] == "Function" and len(words) > 1:
            is_source = path[-1:] == ["TableExpression"]
            (sources if is_source else called).add(words[1].lower())
        path.append(words[0])
    return called, sources


def _reason(exc: ClickHouseError, limit_s: float) -> str:
    """One line saying what happened, with the engine's own message in brackets."""
    engine = _engine_message(str(exc), getattr(exc, "name", None))
    code = getattr(exc, "code", None)
    if code in (_READONLY, _FUNCTION_NOT_ALLOWED):
        return f"refused: the store is read-only for queries ({engine})"
    if code == _TIMEOUT_EXCEEDED:
        return f"query exceeded the {limit_s:g} s limit ({engine})"
    if code == _QUERY_WAS_CANCELLED:
        return f"query cancelled: the store is closing ({engine})"
    if code == _SYNTAX_ERROR and "Multi-statements" in engine:
        return f"refused: one statement at a time ({engine})"
    return engine


def _engine_message(text: str, name: str | None) -> str:
    """The engine's message on one line, without repeated code prefixes and trailers."""
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    line = next((ln for ln in lines if "DB::Exception" in ln), lines[0] if lines else "")
    line = re.sub(r"Code: \d+\. DB::Exception: (default: )?", "", line)
    line = re.sub(r"\(version [^()]*\)", "", line)
    line = line.split(": In scope SELECT formatQuery", 1)[0]  # our vetting query, not theirs
    line = line.split(". Expected one of: ", 1)[0]  # a syntax error's list of every token
    line = re.sub(r"\s*\([A-Z][A-Z0-9_]+\)", "", line)
    line = re.sub(r"[\s.]+$", "", re.sub(r"\s+\.", ".", line)).strip() or "query failed"
    return f"{line} ({name})" if name else line


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "query failed"

"""The read path: read-only clients, and the engine's own checks on what they run.

Every read (``Store.query`` in the owner, the owner's endpoint, ``read_query`` on a server)
runs on a read-only client of its own (embedded: a separate engine handle on the same
path, so it runs beside the sink's inserts) under the engine's ``readonly=1`` and a time
limit (``max_execution_time``). The engine's parser admits one read statement; see
``_vetted``. Nothing here decides access by matching SQL text.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import Error as ClickHouseError

from core.settings import Settings

READ_TIME_LIMIT_S = 30.0
"""The engine's time limit for one read (``max_execution_time``), in seconds."""

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


class ReaderPool:
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


def open_reader(settings: Settings, limit_s: float) -> Client:
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


def run_read(client: Client, sql: str, limit_s: float) -> QueryResult:
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


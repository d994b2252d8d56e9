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


class StoreLocked(StoreError):
    """Another process owns the embedded store (``leadloom run``, a demo)."""


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
        dsn=dsn, password=settings.clickhouse_password.get_secret_value() or url.password or "",
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


Ask = Callable[[str, dict[str, str]], list[list[Any]]]
"""Runs one SQL statement with query parameters on the caller's session; its rows."""

# Table functions served: data from nowhere but the query itself. merge() and
# mergeTreeIndex() read tables past additional_table_filters, view() hides its tables from
# the pre-check's EXPLAIN QUERY TREE, and the rest reach files, URLs or other servers.
SERVED_TABLE_FUNCTIONS = frozenset({"numbers", "numbers_mt", "values", "null"})


class Refused(StoreError):
    """A refusal with ClickHouse's error code and name (the HTTP interface's answer)."""

    def __init__(self, message: str, code: int = 164, name: str = "READONLY") -> None:
        super().__init__(message)
        self.code = code
        self.name = name


@dataclass(frozen=True)
class Vetted:
    statement: str  # the one statement, as the engine's parser formatted it, without FORMAT
    kind: str  # the root of its EXPLAIN AST (one of _SERVED_KINDS)
    output_format: str | None  # its own FORMAT clause, if it had one (allow_format only)
    tree: tuple[str, ...]  # the lines of its EXPLAIN AST


def _vetted(client: Client, sql: str, limit_s: float) -> str:
    """``vet`` on a read-only client: the statement to run (no FORMAT clause allowed)."""

    def ask(query: str, params: dict[str, str]) -> list[list[Any]]:
        return [list(r) for r in client.query(query, parameters=params or None).result_rows]

    try:
        return vet(ask, sql).statement
    except ClickHouseError as exc:
        raise StoreError(_reason(exc, limit_s)) from None


def escape_param(value: str) -> str:
    """``value`` in the escaped text form the engine parses a String query parameter from
    (the form HTTP clients send ``param_<name>`` in)."""
    for raw, escaped in (("\\", "\\\\"), ("\n", "\\n"), ("\t", "\\t"), ("\r", "\\r"),
                         ("\0", "\\0"), ("'", "\\'")):
        value = value.replace(raw, escaped)
    return value


def vet(ask: Ask, sql: str, params: dict[str, str] | None = None, *,
        allow_format: bool = False, escape: Callable[[str], str] = lambda v: v) -> Vetted:
    """The one read statement ``sql`` is, as the engine's parser sees it; else ``Refused``.

    Each decision is the engine parser's, on ``sql`` passed as a value (nothing of it runs):
    - exactly one statement: a second one is refused, not run after the first;
    - nothing after it but where an output clause could still go, so it carries no
      ``INTO OUTFILE`` (the embedded engine writes that file anywhere, readonly or not)
      and, unless ``allow_format`` (the HTTP interface honours it), no ``FORMAT``; SET,
      USE and INSERT take no output clause and stop here too;
    - its kind (the root of ``EXPLAIN AST``) is a read in ``_SERVED_KINDS``: KILL QUERY and
      CHECK TABLE run under readonly=1 too;
    - it calls no function in ``_UNSERVED_FUNCTIONS`` and reads no table function outside
      ``SERVED_TABLE_FUNCTIONS``.
    When it runs, readonly=1 refuses writes, DDL and any SETTINGS override. ``ask`` errors
    (the engine's, e.g. a syntax error or a second statement) pass through unchanged.
    ``params`` go to ``ask`` as given; ``escape`` makes ``sql`` a parameter value for it.
    """
    params = dict(params or {})
    statement, bare = ask(_VET, {"sql": escape(sql)})[0]
    output_format = None
    if not bare:
        statement, output_format = (_without_format(ask, str(statement), params, escape)
                                    if allow_format else (statement, None))
        if output_format is None:
            outputs = "no INTO OUTFILE" + ("" if allow_format else " or FORMAT")
            raise Refused(f"{_NOT_A_READ}, and their rows come back to the caller: {outputs},"
                          " no SET, USE or INSERT")
    tree = [str(row[0]) for row in ask(f"EXPLAIN AST {statement}", params)]
    kind = tree[0].split()[0] if tree and tree[0].strip() else "nothing"
    if kind not in _SERVED_KINDS:
        raise Refused(f"{_NOT_A_READ}; the engine parses this one as {kind}")
    called, sources = _functions(tree)
    unserved = sorted(called & _UNSERVED_FUNCTIONS)
    if unserved:
        raise Refused(f"refused: {unserved[0]}() reads files on the store's host and is"
                      " not served")
    if sources and kind != "SelectWithUnionQuery":
        # DESCRIBE infers a table function's columns by reading its source, which neither
        # readonly=1 refuses nor max_execution_time bounds (url() to a closed port: 33 s
        # under a 3 s limit). In a SELECT, readonly=1 decides.
        raise Refused(f"refused: describing a table function ({sorted(sources)[0]}()) reads"
                      " its source and is not served")
    foreign = sorted(sources - SERVED_TABLE_FUNCTIONS)
    if foreign:
        served = ", ".join(sorted(SERVED_TABLE_FUNCTIONS))
        raise Refused(f"refused: the store is read-only for queries and serves no table"
                      f" function {foreign[0]}() (only {served})")
    return Vetted(str(statement), kind, output_format, tuple(tree))


def _without_format(ask: Ask, statement: str, params: dict[str, str],
                    escape: Callable[[str], str]) -> tuple[str, str | None]:
    """(``statement`` without its FORMAT clause, the format), or (statement, None) when its
    output clause is anything else (INTO OUTFILE). The parser decides: the format is the
    root's last child in EXPLAIN AST, and the text without it must parse to the same tree
    minus that child, with no output clause left."""
    tree = [str(row[0]) for row in ask(f"EXPLAIN AST {statement}", params)]
    top = [line.split() for line in tree[1:] if line.startswith(" ") and line[1:2] != " "]
    if not top or top[-1][0] != "Identifier" or len(top[-1]) != 2:
        return statement, None
    if any(words[0] == "Literal" for words in top):  # INTO OUTFILE '<path>'
        return statement, None
    fmt = top[-1][1]
    clause = f" FORMAT {fmt}"
    at = statement.rfind(clause)
    if at < 0:
        return statement, None
    rest = statement[:at] + statement[at + len(clause):]
    again, bare = ask(_VET, {"sql": escape(rest)})[0]
    stripped = [str(row[0]) for row in ask(f"EXPLAIN AST {again}", params)]
    if not bare or stripped[1:] != [ln for ln in tree[1:] if ln != f" Identifier {fmt}"]:
        return statement, None
    return str(again), fmt


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
    return reason(getattr(exc, "code", None), getattr(exc, "name", None), str(exc), limit_s)


def reason(code: int | None, name: str | None, text: str, limit_s: float) -> str:
    """``_reason`` for an error known by its code, name and text (an HTTP answer)."""
    engine = _engine_message(text, name)
    if engine.startswith("refused: "):  # a refusal of the pre-check: already worded
        return engine.removesuffix(f" ({name})") if name else engine
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


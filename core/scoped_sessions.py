"""Scoped sessions: the embedded engine's own sessions, one scope each, for the HTTP interface.

The embedded engine has no users, grants or row policies (``CREATE ROW POLICY`` is refused
to its only user), so a scope (``schemas.scope.Scope``) is enforced per session: each
engine handle on the store's path is its own session, set up once, in this order:

    USE <database>; SET max_execution_time = <limit>;
    SET allow_python_table_function = 0; SET allow_introspection_functions = 0;
    SET additional_table_filters = <scope.table_filters(database, every existing table)>;
    SET readonly = 1

and then used only for that (scope, database). Under readonly=1 no query can change any of
it (a ``SETTINGS`` clause or ``SET`` is refused with READONLY, 164), and the engine applies
the filters wherever a table is read: subqueries, CTEs, joins, UNION, views, ``IN``.

What the filters cannot cover is refused before a query runs (``check``): a statement the
parser does not see as one read (``core.reads.vet``), a table function other than
``SERVED_TABLE_FUNCTIONS`` (``merge()`` and ``mergeTreeIndex()`` read past the filters), and
every table the engine's analyzer resolves (``EXPLAIN QUERY TREE``, on the same restricted
session: it runs scalar subqueries, and its output never leaves this module) that the scope
may not read: ACCESS_DENIED (497).

``OWNER`` (None) is the store owner's own scope, for LeadLoom's processes through the
owner's local key (``leadloom sql``, ``read_query`` without a scope): the organizer's tables
in every database (a demo's, too), no filters, and the same readonly=1, time limit and
pre-check (no files, no ``system.parts``).

A table created after a session opened (a migration, a demo database) has no filter in it;
the pools compare a signature of ``system.tables`` before each borrow and reopen their
sessions when it changed, and the check refuses any table a delegation's session has no
filter for.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import chdb

from core.reads import (
    SERVED_TABLE_FUNCTIONS,
    Refused,
    StoreError,
    Vetted,
    escape_param,
    vet,
)
from schemas.scope import ORGANIZER_SCOPE, Role, Scope

POOL_SIZE = 4
"""Sessions per (scope, database) at most; more queries of that scope wait for one."""
_CANCEL_WAIT_S = 5.0  # close: how long running reads are cancelled before giving up
_CANCEL_POLL_S = 0.05

ACCESS_DENIED, UNKNOWN_TABLE, TOO_MANY_QUERIES, UNKNOWN_DATABASE = 497, 60, 202, 81
OWNER: Scope | None = None
"""The store owner's own scope (module docstring)."""


class EngineError(StoreError):
    """The engine's own error, with its code and name (``Code: 47 ... (UNKNOWN_IDENTIFIER)``)."""

    def __init__(self, message: str, code: int, name: str) -> None:
        super().__init__(message)
        self.code = code
        self.name = name


def engine_error(exc: Exception) -> EngineError:
    """``exc`` of the chdb engine as an ``EngineError``: its first line, code and name."""
    text = str(exc).strip()
    line = next((ln for ln in text.splitlines() if "DB::Exception" in ln),
                text.splitlines()[0] if text else "query failed")
    code = re.search(r"Code: (\d+)", line)
    name = re.search(r"\(([A-Z][A-Z0-9_]+)\)\s*(\(version [^()]*\))?\s*$", line)
    message = re.sub(r"^.*?Code: \d+\. DB::Exception: ", "", line)
    message = re.sub(r"\s*\(version [^()]*\)\s*$", "", message)
    message = re.sub(r"\s*\([A-Z][A-Z0-9_]+\)\s*$", "", message)
    return EngineError(message, int(code.group(1)) if code else 1000,
                       name.group(1) if name else "STD_EXCEPTION")


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass(frozen=True)
class Answer:
    body: bytes
    output_format: str
    rows_read: int
    bytes_read: int
    elapsed_s: float


class Session:
    """One engine handle set up for ``scope`` on ``database`` (module docstring)."""

    def __init__(self, path: str, scope: Scope | None, database: str, limit_s: float,
                 tables: list[tuple[str, str]], signature: tuple[int, int]) -> None:
        self.scope = scope
        self.database = database
        self.signature = signature
        self.tables = frozenset(tables)  # what existed at open: the filters cover these
        self.filters = scope.table_filters(database, tables) if scope is not None else {}
        self.conn = chdb.connect(path)
        try:
            try:
                self._set(f"USE `{database.replace('`', '``')}`")
            except EngineError as exc:  # the owner reads other databases by their names
                if scope is not OWNER or exc.code != UNKNOWN_DATABASE:
                    raise
            self._set(f"SET max_execution_time = {float(limit_s)}")
            self._set("SET allow_python_table_function = 0")
            self._set("SET allow_introspection_functions = 0")
            if self.filters:
                pairs = ", ".join(f"{_quote(k)}: {_quote(v)}" for k, v in self.filters.items())
                self._set(f"SET additional_table_filters = {{{pairs}}}")
            self._set("SET readonly = 1")  # last: it locks everything above
        except BaseException:
            self.conn.close()
            raise

    def _set(self, statement: str) -> None:
        try:
            self.conn.query(statement)
        except Exception as exc:  # noqa: BLE001 - the engine's errors are plain exceptions
            raise engine_error(exc) from None

    def ask(self, sql: str, params: dict[str, str]) -> list[list[Any]]:
        """The rows of ``sql`` (parsed from JSONCompact); engine errors as ``EngineError``."""
        try:
            data = self.conn.query(sql, "JSONCompact", params=params).bytes()
        except Exception as exc:  # noqa: BLE001
            raise engine_error(exc) from None
        return list(json.loads(data)["data"]) if data.strip() else []

    def run(self, statement: str, output_format: str, params: dict[str, str]) -> Answer:
        try:
            result = self.conn.query(statement, output_format, params=params)
            body = result.bytes()
        except Exception as exc:  # noqa: BLE001
            raise engine_error(exc) from None
        return Answer(body, output_format, int(result.rows_read()), int(result.bytes_read()),
                      float(result.elapsed()))

    def setting(self, name: str) -> str | None:
        """The session's value of setting ``name``, or None for no such setting."""
        rows = self.ask("SELECT value FROM system.settings WHERE name = {n:String}",
                        {"n": name})
        return str(rows[0][0]) if rows else None

    def close(self) -> None:
        self.conn.close()


def check(session: Session, sql: str, params: dict[str, str], user: str) -> Vetted:
    """The statement ``sql`` is, if ``session``'s scope may run it; else ``Refused``.

    ``core.reads.vet`` decides that it is one read (its own FORMAT allowed: the HTTP
    interface honours it); then every table it reads, as the engine's analyzer resolves
    them on this restricted session, must be one the scope may read, in the session's
    database or ``system``. Engine errors pass as ``EngineError``.
    """
    vetted = vet(session.ask, sql, params, allow_format=True, escape=escape_param)
    if vetted.kind == "SelectWithUnionQuery":
        tree = [str(r[0]) for r in session.ask(f"EXPLAIN QUERY TREE {vetted.statement}",
                                                params)]
        tables, functions = _query_tree_sources(tree)
    else:
        tables, functions = _ast_tables(vetted, session.database), set()
    foreign = sorted(functions - SERVED_TABLE_FUNCTIONS)
    if foreign:
        raise Refused(f"refused: the store is read-only for queries and serves no table"
                      f" function {foreign[0]}()")
    scope = session.scope or ORGANIZER_SCOPE
    for database, table in sorted(tables):
        readable = scope.may_read(database, table) and (
            session.scope is OWNER or database in (session.database, "system"))
        if not readable:
            raise Refused(f"{user}: Not enough privileges. To execute this query, it's"
                          f" necessary to have the grant SELECT ON {database}.{table}",
                          ACCESS_DENIED, "ACCESS_DENIED")
        if scope.role is Role.DELEGATION and (database, table) not in session.tables:
            # created after this session opened: no filter of this scope covers it yet
            raise Refused(f"refused: table {database}.{table} is newer than this session;"
                          " try again", UNKNOWN_TABLE, "UNKNOWN_TABLE")
    return vetted


def _query_tree_sources(tree: list[str]) -> tuple[set[tuple[str, str]], set[str]]:
    """(tables, table functions) an EXPLAIN QUERY TREE reads."""
    tables: set[tuple[str, str]] = set()
    functions: set[str] = set()
    for line in tree:
        node, _, rest = line.strip().partition(" ")
        # a node's line starts "<NODE> id: N"; "TABLE EXPRESSION" (under ARRAY_JOIN) is a
        # section label, not a table
        if node not in ("TABLE", "TABLE_FUNCTION") or not rest.startswith("id: "):
            continue
        fields = dict(part.partition(": ")[::2] for part in rest.split(", "))
        if node == "TABLE":
            database, _, table = fields.get("table_name", "").partition(".")
            tables.add((database, table))
        else:
            functions.add(fields.get("table_function_name", "").lower())
    return tables, functions


def _ast_tables(vetted: Vetted, database: str) -> set[tuple[str, str]]:
    """Tables named by a DESCRIBE, SHOW CREATE or EXISTS statement (EXPLAIN AST)."""
    names: set[tuple[str, str]] = set()
    head = vetted.tree[0].split(" (children")[0].split(" ")
    if vetted.kind in ("ShowCreateTableQuery", "ShowCreateViewQuery", "ExistsTableQuery"):
        # "<Kind> <database> <table>", the database empty when the statement names none
        db, table = (head + ["", ""])[1:3]
        names.add((db or database, table))
    for line in vetted.tree:
        words = line.split()
        if words[:1] == ["TableIdentifier"] and len(words) > 1:
            db, _, table = words[1].rpartition(".")
            names.add((db or database, table))
    return names


class _Pool:
    def __init__(self, size: int, wait_s: float) -> None:
        self.slots = threading.BoundedSemaphore(size)
        self.size = size
        self.wait_s = wait_s
        self.idle: list[Session] = []
        self.busy: set[Session] = set()


class ScopedSessions:
    """Pools of scoped sessions on the embedded store at ``path`` (module docstring)."""

    def __init__(self, path: str, limit_s: float, size: int = POOL_SIZE) -> None:
        self.path = path
        self.limit_s = limit_s
        self.size = size
        self._lock = threading.Lock()
        self._pools: dict[tuple[Scope | None, str], _Pool] = {}
        self._closed = False
        self._catalog = chdb.connect(path)  # system.tables only: the signature, the list
        self._catalog_lock = threading.Lock()
        self._catalog.query("SET readonly = 1")

    def _catalog_rows(self, sql: str) -> list[list[Any]]:
        with self._catalog_lock:
            if self._closed:
                raise StoreError("the store is closing")
            try:
                data = self._catalog.query(sql, "JSONCompact").bytes()
            except Exception as exc:  # noqa: BLE001
                raise engine_error(exc) from None
        return list(json.loads(data)["data"])

    def signature(self) -> tuple[int, int]:
        """(tables, a hash of their names): changes when a table is created or dropped."""
        rows = self._catalog_rows("SELECT count(), groupBitXor(cityHash64(database, name))"
                                  " FROM system.tables")
        return int(rows[0][0]), int(rows[0][1])

    @contextmanager
    def borrow(self, scope: Scope | None, database: str) -> Iterator[Session]:
        """A session of ``scope`` on ``database``, current with the tables that exist."""
        signature = self.signature()
        with self._lock:
            pool = self._pools.setdefault((scope, database), _Pool(self.size, self.limit_s))
        if not pool.slots.acquire(timeout=pool.wait_s):
            raise Refused(f"the store is busy: {pool.size} reads of this user are running;"
                          " try again", TOO_MANY_QUERIES, "TOO_MANY_SIMULTANEOUS_QUERIES")
        try:
            session = self._take(pool, scope, database, signature)
            try:
                yield session
            finally:
                with self._lock:
                    pool.busy.discard(session)
                    keep = not self._closed and session.signature == signature
                    if keep:
                        pool.idle.append(session)
                if not keep:
                    session.close()
        finally:
            pool.slots.release()

    def _take(self, pool: _Pool, scope: Scope | None, database: str,
              signature: tuple[int, int]) -> Session:
        with self._lock:
            if self._closed:
                raise StoreError("the store is closing")
            stale = [s for s in pool.idle if s.signature != signature]
            pool.idle = [s for s in pool.idle if s.signature == signature]
            session = pool.idle.pop() if pool.idle else None
            if session is not None:
                pool.busy.add(session)
        for old in stale:
            old.close()
        if session is None:
            tables = [(str(d), str(t)) for d, t in
                      self._catalog_rows("SELECT database, name FROM system.tables")]
            session = Session(self.path, scope, database, self.limit_s, tables, signature)
            with self._lock:
                late = self._closed
                if not late:
                    pool.busy.add(session)
            if late:
                session.close()
                raise StoreError("the store is closing")
        return session

    def close(self) -> None:
        """Cancel running queries (every readonly handle's), close the idle sessions; a busy
        one closes when its query returns."""
        with self._lock:
            self._closed = True
            idle = [s for p in self._pools.values() for s in p.idle]
            pools = list(self._pools.values())
            self._pools.clear()
        with self._catalog_lock:
            # A busy session closes when its query returns (borrow). One KILL is not enough:
            # a session borrowed just before the close may still be vetting its statement
            # and start the read after the KILL ran (under load that read then held the
            # owner's exit for its whole time limit), so the KILL repeats until none is busy.
            deadline = time.monotonic() + _CANCEL_WAIT_S
            while self._any_busy(pools) and time.monotonic() < deadline:
                try:
                    self._catalog.query("KILL QUERY WHERE Settings['readonly'] = '1' ASYNC")
                except Exception:  # noqa: BLE001 - nothing to cancel, or going away anyway
                    pass
                time.sleep(_CANCEL_POLL_S)
            for session in idle:
                session.close()
            self._catalog.close()

    def _any_busy(self, pools: list[_Pool]) -> bool:
        with self._lock:
            return any(p.busy for p in pools)

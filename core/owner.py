"""The embedded store's owner serves reads to other processes; ``read_query``.

The embedded engine allows one process per data path: the process that runs the sink
owns the store (``core.store.Store``) and serves ClickHouse's HTTP interface on
``settings.http_host:http_port`` (``core.http_interface``) for every client: configured
users (``core.users``) and the owner's own local key, which it writes with its pid and
port to ``<data_dir>/store.endpoint`` (mode 0600). ``read_query`` is how any LeadLoom
process reads: through that interface, or directly on a server DSN.
"""

from __future__ import annotations

import base64
import json
import os
import time
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from core.http_interface import LIMIT_HEADER, LOCAL_USER, SCOPE_HEADER, HttpInterface
from core.reads import (
    READ_TIME_LIMIT_S,
    QueryResult,
    StoreError,
    StoreLocked,
    open_reader,
    reason,
    run_read,
)
from core.scoped_sessions import check
from core.settings import Settings
from core.store import Store
from core.users import Users, UsersError, users_path
from schemas.scope import ORGANIZER_SCOPE, Role, Scope, filters_literal

_ANSWER_MARGIN_S = 10.0  # read_query waits this much beyond the limit for the owner's reply
_OWNER_START_S = 20.0  # ... and this long for a starting owner (store locked) to serve reads
_OWNER_POLL_S = 0.2
_RESULT_FORMAT = "JSONCompact"  # what read_query asks for: typed by its meta


class QueryServer:
    """The owner's HTTP interface and its endpoint file (embedded store only; on a server
    DSN every process reads the server directly and this does nothing)."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.endpoint_file = settings.data_dir / "store.endpoint"
        self.interface: HttpInterface | None = None
        if settings.embedded:
            self.interface = HttpInterface(
                store.scoped_sessions(), store.database, users_path(settings),
                settings.http_host, settings.http_port)

    def start(self) -> None:
        if self.interface is None:
            return
        self.interface.start()
        tmp = self.endpoint_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"pid": os.getpid(), "host": self.interface.httpd.server_address[0],
                       "port": self.interface.port, "user": LOCAL_USER,
                       "key": self.interface.local_key}, handle)
        os.chmod(tmp, 0o600)
        tmp.replace(self.endpoint_file)

    def stop(self) -> None:
        if self.interface is None:
            return
        try:
            self.endpoint_file.unlink()
        except FileNotFoundError:
            pass
        self.interface.stop()


def read_query(settings: Settings, sql: str, timeout_s: float | None = None, *,
               scope: Scope | None = None,
               credentials: tuple[str, str] | None = None) -> QueryResult:
    """Run one read statement from any process, within ``scope`` (None: the store owner's,
    ``core.scoped_sessions.OWNER``: the organizer's reads in every database, a demo's too).

    On the embedded store it goes to the owner's HTTP interface while an owner (``leadloom
    run``, a demo) runs, as the owner's local user with ``scope``, or as ``credentials``
    (user, password: a configured user, whose own scope applies); only when the endpoint
    file is stale (nothing listens on its port: the owner is gone) is the store opened
    here and the read run on a scoped session of it. An owner that takes the request but
    does not answer within ``timeout_s`` (default: the time limit plus 10 s) is reported
    as not answering: the store is not opened behind its back. A store locked by an owner
    that has not yet written its endpoint (starting) is waited for, up to 20 s, then
    reported as owned by another process (``StoreLocked``). On a server DSN the read
    runs here on a read-only client (the server's users decide; a narrower scope adds its
    ``additional_table_filters``). Raises ``StoreError`` with a one-line reason.
    """
    limit_s = READ_TIME_LIMIT_S
    if not settings.embedded:
        return _read_on_server(settings, sql, scope or ORGANIZER_SCOPE, limit_s)
    wait_s = limit_s + _ANSWER_MARGIN_S if timeout_s is None else timeout_s
    starting_until: float | None = None
    while True:
        endpoint = _read_endpoint(settings.data_dir / "store.endpoint")
        if endpoint is not None:
            answer = _ask_owner(endpoint, sql, wait_s, scope, credentials, limit_s)
            if answer is not None:
                return answer
        try:
            return _read_here(settings, sql, scope, credentials, limit_s)
        except StoreLocked:
            # An owner that is starting locks the store before it serves reads and writes
            # its endpoint: wait for that rather than refuse a read the owner will answer.
            now = time.monotonic()
            starting_until = starting_until or now + _OWNER_START_S
            if now >= starting_until:
                raise
            time.sleep(_OWNER_POLL_S)


def _read_here(settings: Settings, sql: str, scope: Scope | None,
               credentials: tuple[str, str] | None, limit_s: float) -> QueryResult:
    """The read run in this process on the store opened here (no owner runs)."""
    if credentials is not None:
        scope, name = _configured_user(settings, *credentials), credentials[0]
    else:
        name = LOCAL_USER
    store = Store(settings, migrations=(), read_time_limit_s=limit_s)
    try:
        with store.scoped_sessions().borrow(scope, store.database) as session:
            vetted = check(session, sql, {}, name)
            if vetted.output_format is not None:
                raise StoreError(_OWN_FORMAT)
            local = session.run(vetted.statement, _RESULT_FORMAT, {})
    except StoreError as exc:
        raise StoreError(_one_line(exc, limit_s)) from None
    finally:
        store.close()
    return _rows(local.body)


_OWN_FORMAT = ("refused: only read queries are served (SELECT, DESCRIBE, SHOW, EXISTS), and"
               " their rows come back to the caller: no INTO OUTFILE or FORMAT")


def _one_line(exc: StoreError, limit_s: float) -> str:
    code, name = getattr(exc, "code", None), getattr(exc, "name", None)
    if code is None:
        return str(exc)
    return reason(code, name, f"Code: {code}. DB::Exception: {exc}. ({name})", limit_s)


def _configured_user(settings: Settings, name: str, password: str) -> Scope:
    try:
        user = Users.load(users_path(settings)).verify(name, password)
    except UsersError as exc:
        raise StoreError(str(exc)) from None
    if user is None:
        raise StoreError(f"{name}: Authentication failed: password is incorrect, or there is"
                         " no user with such name (AUTHENTICATION_FAILED)")
    return user.scope


def _read_on_server(settings: Settings, sql: str, scope: Scope, limit_s: float) -> QueryResult:
    client = open_reader(settings, limit_s)
    try:
        if scope.role is not Role.ORGANIZER:
            tables = [(str(d), str(t)) for d, t in
                      client.query("SELECT database, name FROM system.tables").result_rows]
            filters = scope.table_filters(settings.clickhouse_database, tables)
            client.set_client_setting("additional_table_filters", filters_literal(filters))
        return run_read(client, sql, limit_s)
    finally:
        client.close()


def _read_endpoint(path: Path) -> dict[str, Any] | None:
    try:
        info = json.loads(path.read_text())
        return {"pid": int(info["pid"]), "port": int(info["port"]),
                "host": str(info.get("host", "127.0.0.1")), "key": str(info["key"])}
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):  # not ours, or torn: treat as stale
        return None


def _ask_owner(endpoint: dict[str, Any], sql: str, timeout_s: float, scope: Scope | None,
               credentials: tuple[str, str] | None, limit_s: float) -> QueryResult | None:
    """The owner's answer, or None when nothing listens on its port (a stale endpoint)."""
    pid, port, host = endpoint["pid"], endpoint["port"], endpoint["host"]
    user, password = credentials or (LOCAL_USER, endpoint["key"])
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    headers = {"Authorization": f"Basic {token}", "Content-Type": "text/plain; charset=utf-8"}
    if scope is not None and credentials is None:
        headers[SCOPE_HEADER] = (f"delegation:{scope.cluster_id}" if scope.cluster_id
                                 else str(scope.role))
    url = f"http://{host}:{port}/?" + urlencode({"default_format": _RESULT_FORMAT})
    request = urllib.request.Request(url, data=sql.encode(), method="POST", headers=headers)
    silent = StoreError(
        f"the store's owner (pid {pid}) did not answer within {timeout_s:g} s: it is running"
        " but busy or stopped, so the store was not opened here; try again later"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as resp:
            output = resp.headers.get("X-ClickHouse-Format")
            body = resp.read()
    except urllib.error.HTTPError as exc:
        raise StoreError(_owner_error(exc, limit_s)) from None
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
    if output != _RESULT_FORMAT:
        raise StoreError(_OWN_FORMAT)
    return _rows(body)


def _owner_error(exc: urllib.error.HTTPError, limit_s: float) -> str:
    try:
        text = exc.read().decode("utf-8", "replace")
    except OSError:
        text = ""
    code = exc.headers.get("X-ClickHouse-Exception-Code")
    if not code or not text.strip():
        return f"the store's owner answered HTTP {exc.code}"
    name = text.strip().rsplit("(", 1)[-1].rstrip(")") if text.strip().endswith(")") else None
    try:
        limit_s = float(exc.headers.get(LIMIT_HEADER) or limit_s)
    except ValueError:
        pass
    return reason(int(code), name, text, limit_s)


def _rows(body: bytes) -> QueryResult:
    """The rows of a JSONCompact answer, typed by its meta as the chdb client types them
    where JSON cannot (64-bit integers as int, Decimal as Decimal); dates stay text."""
    data = json.loads(body, parse_float=Decimal)
    types = [str(column["type"]) for column in data["meta"]]
    rows = [[_typed(v, t) for v, t in zip(row, types, strict=True)] for row in data["data"]]
    return QueryResult([str(column["name"]) for column in data["meta"]], rows)


def _typed(value: Any, type_name: str) -> Any:
    for wrapper in ("Nullable(", "LowCardinality("):
        if type_name.startswith(wrapper):
            type_name = type_name[len(wrapper):-1]
    if value is None:
        return None
    if type_name.startswith("Array(") and isinstance(value, list):
        return [_typed(v, type_name[len("Array("):-1]) for v in value]
    if type_name.startswith(("Int", "UInt")) and isinstance(value, str | int | Decimal):
        return int(value)
    if type_name.startswith("Float") and isinstance(value, Decimal | int):
        return float(value)
    if type_name.startswith("Decimal") and isinstance(value, str | int | Decimal):
        return Decimal(str(value))
    return value

"""ClickHouse's HTTP interface on the embedded store, served by its owner (``leadloom run``).

Clients that speak to a ClickHouse server over HTTP (clickhouse-connect's ``http://``
client, curl, Grafana's ClickHouse data source in HTTP mode) read the embedded store the
same way, as a configured user (``core.users``) and only within that user's scope
(``core.scoped_sessions``: the engine's own filters, readonly=1, and a pre-check).

The subset served (``core.ch_http`` for the wire details):
- ``GET /``, ``GET /ping``: ``Ok.``;
- ``POST /`` with the SQL in the body, or ``GET``/``POST`` with ``query=`` (a body is
  appended after a newline, as the server does); ``database``, ``default_format``,
  ``query_id``, ``param_<name>`` (bound query parameters, passed on unchanged); transport
  parameters (``session_id``, ``wait_end_of_query``, ``compress``...) accepted and ignored;
  any other parameter is a setting: accepted when equal to the session's value, else
  READONLY (164), UNKNOWN_SETTING (115) when there is no such setting;
- credentials: ``Authorization: Basic``, ``X-ClickHouse-User``/``X-ClickHouse-Key``, or
  ``user``/``password`` parameters; anything else: AUTHENTICATION_FAILED (516, HTTP 401).
  The built-in user ``leadloom_local`` (the owner's key, in the endpoint file, mode 0600) is
  the owner (``scoped_sessions.OWNER``: the organizer's reads in every database), or the
  scope named by ``X-LeadLoom-Scope`` (``organizer``, ``ops``, ``delegation:<cluster_id>``),
  honoured for that key only: ``read_query`` and ``leadloom sql`` use it;
- output: the statement's own ``FORMAT``, else ``default_format``, else TabSeparated; any
  format the engine writes. Native for a client announcing ``client_protocol_version`` > 0
  is re-framed (``ch_http.reframe_native``). The whole answer is buffered (as with
  ``wait_end_of_query=1``), so an error is never sent mid-stream.
Loopback only (``Settings.http_host`` refuses anything else): the interface speaks plain
HTTP; a remote Grafana goes through a TLS proxy on the same host.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import json
import logging
import secrets
import socket
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from core import ch_http
from core.reads import Refused, StoreError
from core.scoped_sessions import ACCESS_DENIED, OWNER, EngineError, ScopedSessions, check
from core.users import Users, UsersError
from schemas.scope import OPS_SCOPE, ORGANIZER_SCOPE, Role, Scope, delegation_scope

log = logging.getLogger(__name__)

LOCAL_USER = "leadloom_local"
SCOPE_HEADER = "X-LeadLoom-Scope"
LIMIT_HEADER = "X-LeadLoom-Time-Limit-S"  # on errors: the limit a timeout was over
MAX_BODY_BYTES = 16 * 1024 * 1024
_CATALOGS = frozenset({"system", "information_schema", "INFORMATION_SCHEMA"})


class Authenticator:
    """Who is asking: the local key, or a user of the users file (re-read when it changes).

    A password checked once is remembered as an HMAC under a key of this process (never
    the password), so a dashboard's every query does not pay a scrypt (~50 ms)."""

    def __init__(self, users_file: Path, local_key: str) -> None:
        self.users_file = users_file
        self.local_key = local_key
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._users = Users()
        self._remembered: dict[tuple[str, bytes], Scope] = {}
        self._pepper = secrets.token_bytes(32)

    def _current(self) -> Users:
        try:
            stat = self.users_file.stat()
            stamp: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            stamp = None
        with self._lock:
            if stamp != self._stamp:
                try:
                    self._users = Users.load(self.users_file)
                except UsersError:
                    self._users = Users()  # a broken file lets nobody in but the owner
                self._stamp = stamp
                self._remembered.clear()
            return self._users

    def scope_of(self, user: str, password: str, scope_header: str | None) -> Scope | None:
        """The scope of these credentials (``OWNER``: the local key without a scope header);
        ``Refused`` (516) for wrong ones."""
        if user == LOCAL_USER:
            if not hmac.compare_digest(password.encode(), self.local_key.encode()):
                raise _auth_failed(user)
            return _parse_scope(scope_header) if scope_header else OWNER
        users = self._current()
        tag = hmac.new(self._pepper, password.encode(), hashlib.sha256).digest()
        with self._lock:
            known = self._remembered.get((user, tag))
        if known is not None:
            return known
        found = users.verify(user, password)
        if found is None:
            raise _auth_failed(user)
        with self._lock:
            self._remembered[(user, tag)] = found.scope
        return found.scope


def _auth_failed(user: str) -> Refused:
    return Refused(f"{user}: Authentication failed: password is incorrect, or there is no user"
                   " with such name", ch_http.AUTHENTICATION_FAILED, "AUTHENTICATION_FAILED")


def _parse_scope(value: str) -> Scope:
    role, _, cluster = value.strip().partition(":")
    try:
        if role == "delegation":
            return delegation_scope(cluster)
    except ValueError as exc:
        raise Refused(str(exc), 36, "BAD_ARGUMENTS") from None
    scopes = {"organizer": ORGANIZER_SCOPE, "ops": OPS_SCOPE}
    if role in scopes and not cluster:
        return scopes[role]
    raise Refused(f"unknown scope {value!r}", 36, "BAD_ARGUMENTS")


class HttpInterface:
    """The server: a thread serving ClickHouse's HTTP interface on ``host:port``."""

    def __init__(self, sessions: ScopedSessions, database: str, users_file: Path,
                 host: str, port: int, local_key: str | None = None) -> None:
        self.local_key = local_key or secrets.token_urlsafe(32)
        self.sessions = sessions
        self.database = database
        self.auth = Authenticator(users_file, self.local_key)
        self.display_name = socket.gethostname()
        try:
            self.httpd = ThreadingHTTPServer((host, port), _make_handler(self))
        except OSError as exc:
            raise StoreError(f"cannot serve ClickHouse's HTTP interface on {host}:{port}"
                             f" ({exc.strerror or exc}); set LEADLOOM_HTTP_PORT") from None
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="ch-http",
                                       daemon=True)

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- one request ---------------------------------------------------------------------
    def answer(self, method: str, target: str, headers: dict[str, str], body: bytes
               ) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) for one request; never raises."""
        url = urlsplit(target)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        query_id = params.get("query_id") or str(uuid.uuid4())
        base = {"X-ClickHouse-Query-Id": query_id, "X-ClickHouse-Timezone": "UTC",
                "X-ClickHouse-Server-Display-Name": self.display_name}
        if url.path in ("/", "/ping") and method == "GET" and "query" not in params:
            return 200, {"Content-Type": "text/html; charset=UTF-8"}, b"Ok.\n"
        if url.path != "/":
            return self._error(base, Refused(f"There is no handle {url.path}", 0,
                                             "NO_HANDLE"), status=404)
        try:
            text = self._sql(params, body)
            scope, user = self._who(headers, params)
            database = params.get("database") or self.database
            if database in _CATALOGS and scope is not None and scope.role is Role.DELEGATION:
                # a session's filters are for a database of tables; the catalogs' own
                # readable tables are reached from the store's database
                raise Refused(f"{user}: Not enough privileges to use database {database}",
                              ACCESS_DENIED, "ACCESS_DENIED")
            started = time.monotonic()
            with self.sessions.borrow(scope, database) as session:
                self._check_settings(session.setting, params)
                vetted = check(session, text, _query_params(params), user)
                output = vetted.output_format or params.get("default_format") or "TabSeparated"
                answer = session.run(vetted.statement, output, _query_params(params))
            data = answer.body
            revision = _int(params.get("client_protocol_version"))
            if output == "Native" and revision > 0:
                data = ch_http.reframe_native(data, revision)
        except (Refused, EngineError) as exc:
            return self._error(base, exc)
        except StoreError as exc:  # the store closing
            return self._error(base, Refused(str(exc), 394, "QUERY_WAS_CANCELLED"))
        except ValueError as exc:  # a body we cannot read, a type we cannot re-frame
            return self._error(base, Refused(str(exc), 1001, "STD_EXCEPTION"))
        except Exception as exc:  # noqa: BLE001 - a fault of ours: still an answer
            log.exception("HTTP interface request failed")
            return self._error(base, Refused(f"the store's owner failed: {exc!r}", 1001,
                                             "STD_EXCEPTION"))
        elapsed_ns = int((time.monotonic() - started) * 1e9)
        summary = {"read_rows": str(answer.rows_read), "read_bytes": str(answer.bytes_read),
                   "written_rows": "0", "written_bytes": "0", "total_rows_to_read": "0",
                   "result_rows": "0", "result_bytes": str(len(data)),
                   "elapsed_ns": str(elapsed_ns)}
        return 200, {**base, "X-ClickHouse-Format": output,
                     "Content-Type": ch_http.content_type(output),
                     "X-ClickHouse-Summary": json.dumps(summary)}, data

    def _error(self, base: dict[str, str], exc: Refused | EngineError,
               status: int | None = None) -> tuple[int, dict[str, str], bytes]:
        return (status or ch_http.status_of(exc.code),
                {**base, "X-ClickHouse-Exception-Code": str(exc.code),
                 LIMIT_HEADER: f"{self.sessions.limit_s:g}",
                 "Content-Type": "text/plain; charset=UTF-8"},
                ch_http.error_body(exc.code, exc.name, str(exc)))

    @staticmethod
    def _sql(params: dict[str, str], body: bytes) -> str:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise Refused("the query is not UTF-8 text", 27, "CANNOT_PARSE_INPUT") from None
        if "query" in params:
            text = params["query"] + ("\n" + text if text else "")
        if not text.strip():
            raise Refused("Empty query", 62, "SYNTAX_ERROR")
        return text

    def _who(self, headers: dict[str, str], params: dict[str, str]
             ) -> tuple[Scope | None, str]:
        user, password = params.get("user"), params.get("password", "")
        basic = headers.get("authorization", "")
        if basic[:6].lower() == "basic ":
            try:
                user, _, password = base64.b64decode(basic[6:].strip()).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                raise _auth_failed("default") from None
        elif "x-clickhouse-user" in headers:
            user, password = headers["x-clickhouse-user"], headers.get("x-clickhouse-key", "")
        user = user or "default"
        return self.auth.scope_of(user, password, headers.get(SCOPE_HEADER.lower())), user

    @staticmethod
    def _check_settings(current: Callable[[str], str | None], params: dict[str, str]) -> None:
        for name, value in params.items():
            if (name in ch_http.TRANSPORT_PARAMS or name in ch_http.CLIENT_TIMEOUT_SETTINGS
                    or name.startswith("param_")):
                continue
            have = current(name)
            if have is None:
                raise Refused(f"Unknown setting '{name}'", ch_http.UNKNOWN_SETTING,
                              "UNKNOWN_SETTING")
            if not ch_http.same_setting(value, have):
                raise Refused(f"Cannot modify '{name}' setting in readonly mode",
                              ch_http.READONLY, "READONLY")


def _query_params(params: dict[str, str]) -> dict[str, str]:
    return {k[len("param_"):]: v for k, v in params.items() if k.startswith("param_")}


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def _make_handler(interface: HttpInterface) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: clients pool their connections
        # headers and body go out in two writes: without TCP_NODELAY the body waits for
        # the client's delayed ACK (40 ms a request on Linux)
        disable_nagle_algorithm = True

        def do_GET(self) -> None:  # noqa: N802 (http.server naming)
            self._serve()

        def do_POST(self) -> None:  # noqa: N802
            self._serve()

        def _serve(self) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                body = self._body(headers)
            except ValueError as exc:
                self.close_connection = True
                status, out_headers, data = interface._error(
                    {}, Refused(str(exc), 1001, "STD_EXCEPTION"), status=400)
            else:
                status, out_headers, data = interface.answer(self.command, self.path,
                                                             headers, body)
            self.send_response(status)
            for name, value in out_headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the caller stopped waiting (its timeout): nobody to tell

        def _body(self, headers: dict[str, str]) -> bytes:
            if headers.get("transfer-encoding", "").lower() == "chunked":
                parts = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        break
                    parts.append(self.rfile.read(size))
                    self.rfile.readline()
                    if sum(map(len, parts)) > MAX_BODY_BYTES:
                        raise ValueError("the request body is too large")
                raw = b"".join(parts)
            else:
                length = int(headers.get("content-length") or 0)
                if length > MAX_BODY_BYTES:
                    raise ValueError("the request body is too large")
                raw = self.rfile.read(length) if length else b""
            encoding = headers.get("content-encoding", "").lower()
            if encoding == "gzip":
                return gzip.decompress(raw)
            if encoding == "deflate":
                return zlib.decompress(raw)
            if encoding not in ("", "identity"):
                raise ValueError(f"Content-Encoding {encoding} is not supported")
            return raw

        def log_message(self, *args: object) -> None:
            pass

    return Handler

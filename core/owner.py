"""The embedded store's owner serves reads to other local processes; ``read_query``.

The embedded engine allows one process per data path: the process that runs the sink owns
the store (``core.store.Store``) and answers read queries on a loopback HTTP endpoint whose
port it writes to ``<data_dir>/store.endpoint``. ``read_query`` is how any other process
reads: through that endpoint, or directly on a server DSN.
"""

from __future__ import annotations

import json
import os
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from core.reads import READ_TIME_LIMIT_S, QueryResult, StoreError, open_reader, run_read
from core.settings import Settings
from core.store import Store

_ANSWER_MARGIN_S = 10.0  # read_query waits this much beyond the limit for the owner's reply


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
        client = open_reader(settings, limit_s)
        try:
            return run_read(client, sql, limit_s)
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


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "query failed"

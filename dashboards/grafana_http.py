"""A small typed client for the parts of Grafana's HTTP API that ``dashboards push`` uses.

Built on the standard library (``urllib.request``) on purpose: grafana-api is unmaintained
since 2020 and knows no service accounts or RBAC, and its maintained fork grafana-client
depends on niquests, whose urllib3-future takes over the ``urllib3`` import of the whole
environment, which clickhouse-connect runs on. A dozen endpoints do not justify either.

Contract: every call authenticates with ``Authorization: Bearer <token>`` (a service
account token), waits at most ``timeout_s`` seconds, and raises :class:`GrafanaError`
with one line naming the endpoint and Grafana's own message on any non-2xx answer, an
unreachable server, a timeout or a body that is not JSON. A 404 on a lookup is an answer
(``None``), not an error. The token never appears in an error.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

DEFAULT_TIMEOUT_S = 10.0
_WRITE_METHODS = frozenset({"POST", "PUT", "DELETE", "PATCH"})


class GrafanaError(RuntimeError):
    """One-line failure of one request: ``"<METHOD> <path>: <reason>"``; ``status`` is
    the HTTP status, or 0 when no answer came (unreachable, timeout)."""

    def __init__(self, method: str, path: str, reason: str, status: int = 0) -> None:
        super().__init__(f"Grafana {method} {path}: {reason}")
        self.method, self.path, self.status = method, path, status


@dataclass(frozen=True)
class Folder:
    uid: str
    title: str


@dataclass(frozen=True)
class StoredDashboard:
    """A dashboard as Grafana holds it: its JSON model (with Grafana's ``id`` and
    ``version``), the folder it is in and whether file provisioning owns it."""

    model: dict[str, Any]
    folder_uid: str
    provisioned: bool


@dataclass(frozen=True)
class Team:
    id: int
    name: str


@dataclass(frozen=True)
class Playlist:
    uid: str
    name: str
    interval: str
    items: tuple[tuple[str, str], ...]  # (type, value) in play order


class GrafanaClient:
    """Grafana at ``url`` (scheme, host, port and any sub-path it is served under)."""

    def __init__(self, url: str, token: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise GrafanaError("-", url, "the URL must be http(s)://host[:port][/path]")
        self.base = url.rstrip("/")
        self.timeout_s = timeout_s
        self.writes = 0  # requests that changed something, for the push summary
        self._token = token
        self._opener = urllib.request.build_opener(_NoRedirect)

    # -- transport ----------------------------------------------------------------------

    def request(self, method: str, path: str, body: object | None = None,
                query: dict[str, str] | None = None, missing_ok: bool = False) -> Any:
        """Send one request and return the decoded JSON answer (``None`` for a 404 when
        ``missing_ok``). Raises :class:`GrafanaError` on anything else but 2xx."""
        target = path + (f"?{urlencode(query)}" if query else "")
        data = None if body is None else json.dumps(body).encode("utf-8")
        req = urllib.request.Request(self.base + target, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self._token}")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if method in _WRITE_METHODS:
            self.writes += 1
        try:
            with self._opener.open(req, timeout=self.timeout_s) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            if exc.code == 404 and missing_ok:
                return None
            if 300 <= exc.code < 400:
                where = exc.headers.get("Location", "?")
                raise GrafanaError(method, path, f"HTTP {exc.code} redirected to {where}:"
                                   " pass Grafana's final URL", exc.code) from None
            message = _message(exc.read())
            raise GrafanaError(method, path, f"HTTP {exc.code} {message}".rstrip(),
                               exc.code) from None
        except TimeoutError:
            raise GrafanaError(method, path,
                               f"no answer within {self.timeout_s:g} s from {self.base}") from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):  # the connect itself timed out
                raise GrafanaError(method, path, f"no answer within {self.timeout_s:g} s"
                                   f" from {self.base}") from None
            reason = exc.reason if isinstance(exc.reason, str) else str(exc.reason)
            raise GrafanaError(method, path, f"cannot reach {self.base}: {reason}") from None
        except OSError as exc:  # a connection reset mid-answer, and the like
            raise GrafanaError(method, path, f"connection to {self.base} failed: {exc}") from None
        if not raw.strip():
            return {}
        try:
            return json.loads(raw)
        except ValueError:
            raise GrafanaError(method, path, "the answer is not JSON: is this Grafana's URL?",
                               200) from None

    # -- folders ------------------------------------------------------------------------

    def get_folder(self, uid: str) -> Folder | None:
        found = self.request("GET", f"/api/folders/{quote(uid)}", missing_ok=True)
        return None if found is None else Folder(uid=found["uid"], title=found["title"])

    def create_folder(self, uid: str, title: str) -> None:
        self.request("POST", "/api/folders", {"uid": uid, "title": title})

    def rename_folder(self, uid: str, title: str) -> None:
        self.request("PUT", f"/api/folders/{quote(uid)}", {"title": title, "overwrite": True})

    def folder_permissions(self, uid: str) -> list[dict[str, Any]]:
        found = self.request("GET", f"/api/folders/{quote(uid)}/permissions")
        return list(found or [])

    def set_folder_permissions(self, uid: str, items: list[dict[str, Any]]) -> None:
        """Replace every permission entry of the folder by ``items`` (Grafana drops the
        ones not listed, the default Viewer and Editor grants included)."""
        self.request("POST", f"/api/folders/{quote(uid)}/permissions", {"items": items})

    # -- dashboards ---------------------------------------------------------------------

    def get_dashboard(self, uid: str) -> StoredDashboard | None:
        found = self.request("GET", f"/api/dashboards/uid/{quote(uid)}", missing_ok=True)
        if found is None:
            return None
        meta = found.get("meta", {})
        return StoredDashboard(model=found["dashboard"], folder_uid=meta.get("folderUid", ""),
                               provisioned=bool(meta.get("provisioned", False)))

    def save_dashboard(self, model: dict[str, Any], folder_uid: str, message: str) -> None:
        """Create or overwrite the dashboard with ``model["uid"]`` in ``folder_uid``."""
        self.request("POST", "/api/dashboards/db", {
            "dashboard": model, "folderUid": folder_uid, "overwrite": True, "message": message,
        })

    # -- teams --------------------------------------------------------------------------

    def find_team(self, name: str) -> Team | None:
        # ``name`` matches exactly (``query`` would match substrings)
        found = self.request("GET", "/api/teams/search", query={"name": name})
        for team in found.get("teams", []):
            if team.get("name") == name:
                return Team(id=int(team["id"]), name=name)
        return None

    def create_team(self, name: str) -> Team:
        created = self.request("POST", "/api/teams", {"name": name})
        return Team(id=int(created["teamId"]), name=name)

    # -- playlists ----------------------------------------------------------------------

    def find_playlist(self, name: str) -> Playlist | None:
        found = self.request("GET", "/api/playlists", query={"query": name})
        for entry in found or []:
            if entry.get("name") == name:
                return self.get_playlist(entry["uid"])
        return None

    def get_playlist(self, uid: str) -> Playlist:
        found = self.request("GET", f"/api/playlists/{quote(uid)}")
        items = sorted(found.get("items") or [], key=lambda i: i.get("order", 0))
        return Playlist(uid=found["uid"], name=found["name"], interval=found["interval"],
                        items=tuple((i["type"], i["value"]) for i in items))

    def create_playlist(self, body: dict[str, Any]) -> None:
        self.request("POST", "/api/playlists", body)

    def update_playlist(self, uid: str, body: dict[str, Any]) -> None:
        self.request("PUT", f"/api/playlists/{quote(uid)}", body)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are errors: urllib would resend a POST as a GET without its body (a
    write silently lost), and the token would follow to wherever the redirect points."""

    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str,
                         headers: Any, newurl: str) -> None:
        return None


def _message(raw: bytes) -> str:
    """Grafana's reason from an error body: its JSON ``message`` (and ``error``), else the
    first line of the text, kept short and on one line."""
    text = raw.decode("utf-8", "replace").strip()
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("message"):
        parts = [str(body["message"])]
        if body.get("error") and body["error"] != body["message"]:
            parts.append(str(body["error"]))
        text = ": ".join(parts)
    line = " ".join(text.split())
    return line[:200]

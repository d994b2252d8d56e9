"""A small typed client for the parts of Grafana's HTTP API that ``dashboards push`` uses.

Built on the standard library (``urllib.request``) on purpose: grafana-api is unmaintained
since 2020 and knows no service accounts or RBAC, and its maintained fork grafana-client
depends on niquests, whose urllib3-future takes over the ``urllib3`` import of the whole
environment, which clickhouse-connect runs on. A dozen endpoints do not justify either.

Contract: every call authenticates either with ``Authorization: Bearer <token>`` (a
service account token: one org, the token's) or with ``Authorization: Basic`` (a Grafana
server admin's user and password: the only way to the admin org endpoints ``/api/orgs``,
and to any org through the ``X-Grafana-Org-Id`` header, set by :meth:`GrafanaClient.use_org`).
Each call waits at most ``timeout_s`` seconds, and raises :class:`GrafanaError` with one
line naming the endpoint and Grafana's own message on any non-2xx answer, an unreachable
server, a timeout or a body that is not JSON. A 404 on a lookup is an answer (``None``),
not an error. Neither the credentials nor a request body (data source passwords) ever
appear in an error.
"""

from __future__ import annotations

import base64
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
class Org:
    id: int
    name: str


@dataclass(frozen=True)
class OrgUser:
    user_id: int
    login: str
    role: str  # "Admin" | "Editor" | "Viewer" | "None"


@dataclass(frozen=True)
class DataSource:
    """A data source as Grafana returns it (never the password: ``secure_fields`` names
    the secrets it holds); ``read_only`` when file provisioning owns it."""

    uid: str
    body: dict[str, Any]  # name, type, access, isDefault, jsonData, ...
    secure_fields: frozenset[str]
    read_only: bool


@dataclass(frozen=True)
class Playlist:
    uid: str
    name: str
    interval: str
    items: tuple[tuple[str, str], ...]  # (type, value) in play order


class GrafanaClient:
    """Grafana at ``url`` (scheme, host, port and any sub-path it is served under)."""

    def __init__(self, url: str, token: str = "", timeout_s: float = DEFAULT_TIMEOUT_S, *,
                 basic: tuple[str, str] | None = None) -> None:
        """``token`` (a service account token) or ``basic`` (a server admin's user and
        password), exactly one."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise GrafanaError("-", url, "the URL must be http(s)://host[:port][/path]")
        if bool(token) == bool(basic):
            raise GrafanaError("-", url, "give either a token or an admin user and password")
        self.base = url.rstrip("/")
        self.timeout_s = timeout_s
        self.writes = 0  # requests that changed something, for the push summary
        self.org_id: int | None = None  # sent as X-Grafana-Org-Id when set (basic auth)
        if basic:
            pair = f"{basic[0]}:{basic[1]}".encode()
            self._auth = "Basic " + base64.b64encode(pair).decode("ascii")
        else:
            self._auth = f"Bearer {token}"
        self._opener = urllib.request.build_opener(_NoRedirect)

    @property
    def is_admin(self) -> bool:
        """True for basic auth (a server admin: every org), False for a token (one org)."""
        return self._auth.startswith("Basic ")

    def use_org(self, org_id: int | None) -> None:
        """Send the following requests to org ``org_id`` (``X-Grafana-Org-Id``; Grafana
        honours it for a user who is a member of that org), or to the user's current org."""
        self.org_id = org_id

    # -- transport ----------------------------------------------------------------------

    def request(self, method: str, path: str, body: object | None = None,
                query: dict[str, str] | None = None, missing_ok: bool = False) -> Any:
        """Send one request and return the decoded JSON answer (``None`` for a 404 when
        ``missing_ok``). Raises :class:`GrafanaError` on anything else but 2xx."""
        target = path + (f"?{urlencode(query)}" if query else "")
        data = None if body is None else json.dumps(body).encode("utf-8")
        req = urllib.request.Request(self.base + target, data=data, method=method)
        req.add_header("Authorization", self._auth)
        if self.org_id is not None:
            req.add_header("X-Grafana-Org-Id", str(self.org_id))
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

    # -- orgs (server admin, basic auth) ----------------------------------------------

    def current_org(self) -> Org:
        """The org requests go to: the token's, or the one ``use_org`` chose."""
        found = self.request("GET", "/api/org")
        return Org(id=int(found["id"]), name=str(found["name"]))

    def find_org(self, name: str) -> Org | None:
        found = self.request("GET", f"/api/orgs/name/{quote(name, safe='')}", missing_ok=True)
        return None if found is None else Org(id=int(found["id"]), name=str(found["name"]))

    def create_org(self, name: str) -> Org:
        """Create org ``name``; Grafana makes the signed-in admin its Admin member."""
        created = self.request("POST", "/api/orgs", {"name": name})
        return Org(id=int(created["orgId"]), name=name)

    def org_users(self, org_id: int) -> list[OrgUser]:
        found = self.request("GET", f"/api/orgs/{org_id}/users")
        return [OrgUser(int(u["userId"]), str(u["login"]), str(u["role"])) for u in found or []]

    def add_org_user(self, org_id: int, login: str, role: str) -> None:
        self.request("POST", f"/api/orgs/{org_id}/users", {"loginOrEmail": login, "role": role})

    def set_org_user_role(self, org_id: int, user_id: int, role: str) -> None:
        self.request("PATCH", f"/api/orgs/{org_id}/users/{user_id}", {"role": role})

    # -- data sources (of the current org) ----------------------------------------------

    def get_datasource(self, uid: str) -> DataSource | None:
        found = self.request("GET", f"/api/datasources/uid/{quote(uid)}", missing_ok=True)
        if found is None:
            return None
        secure = frozenset(k for k, v in (found.get("secureJsonFields") or {}).items() if v)
        return DataSource(uid=str(found["uid"]), body=found, secure_fields=secure,
                          read_only=bool(found.get("readOnly", False)))

    def create_datasource(self, body: dict[str, Any]) -> None:
        self.request("POST", "/api/datasources", body)

    def update_datasource(self, uid: str, body: dict[str, Any]) -> None:
        """Replace the data source's settings (the push always sends the password too)."""
        self.request("PUT", f"/api/datasources/uid/{quote(uid)}", body)

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

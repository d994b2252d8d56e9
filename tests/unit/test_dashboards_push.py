"""``dashboards push`` against a local HTTP server that answers as Grafana's API does.

This tests our client and push logic, not Grafana: the server below implements exactly the
endpoints the push uses, as Grafana's HTTP API documents them: the admin org endpoints
(``GET /api/orgs/name/:name``, ``POST /api/orgs`` making the creator an Admin member,
``/api/orgs/:id/users``; basic auth of a server admin only), ``GET /api/org``, the
``X-Grafana-Org-Id`` header (honoured for basic auth and members only; a token stays in its
own org), and per org: data sources by uid (secrets kept, answered as ``secureJsonFields``
only, ``readOnly`` ones refused), folders, dashboards with ids and versions, playlists.
Grafana's answer shapes: JSON bodies, ``{"message": ...}`` on errors, 404 for a missing
uid or name. It runs on loopback in a thread; no broker or store is needed.
"""

from __future__ import annotations

import base64
import copy
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from dashboards.grafana_http import GrafanaClient, GrafanaError
from dashboards.orgs import GrafanaOrg
from dashboards.push import PLAYLIST_INTERVAL, PLAYLIST_NAME, OrgTarget, PushReport, push

TOKEN = "glsa_test_token"  # a service account token of TOKEN_ORG's org
ADMIN, ADMIN_PASSWORD = "admin", "admin-secret"
WALL = "leadloom-wall"
DS_UID = "leadloom-clickhouse"
MAIN_ORG = 1


@dataclass
class OrgState:
    """What one Grafana org holds."""

    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)  # uid -> model, folder
    datasources: dict[str, dict[str, Any]] = field(default_factory=dict)  # uid -> body
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)  # uid -> secureJsonData
    playlists: dict[str, dict[str, Any]] = field(default_factory=dict)


class FakeGrafana:
    """Grafana's state for the endpoints the push uses, and the requests it received."""

    def __init__(self) -> None:
        self.orgs: dict[int, str] = {MAIN_ORG: "Main Org."}
        self.members: dict[int, dict[str, str]] = {MAIN_ORG: {ADMIN: "Admin"}}
        self.user_ids = {ADMIN: 1, "viewer": 2}
        self.data: dict[int, OrgState] = {MAIN_ORG: OrgState()}
        self.tokens: dict[str, int] = {TOKEN: MAIN_ORG}  # token -> its org
        self.requests: list[tuple[str, str, int]] = []  # method, path, org answered for
        self.fail: dict[tuple[str, str], int] = {}  # (method, path prefix) -> status
        self.delay_s = 0.0
        self.redirect_to = ""  # answer every request with a 301 there (http -> https)
        self._ids = iter(range(100, 1_000_000))
        self._next_org = 2  # ids are never reused, as SQLite's AUTOINCREMENT
        self.lock = threading.Lock()

    @property
    def writes(self) -> list[tuple[str, str, int]]:
        return [r for r in self.requests if r[0] != "GET"]

    def org(self, name: str) -> OrgState:
        return self.data[next(i for i, n in self.orgs.items() if n == name)]

    def add_org(self, name: str) -> int:
        """An org made by someone else (the admin not a member)."""
        org_id, self._next_org = self._next_org, self._next_org + 1
        self.orgs[org_id], self.members[org_id], self.data[org_id] = name, {}, OrgState()
        return org_id

    def authenticate(self, auth: str, org_header: str) -> tuple[int, Any, str, int]:
        """(status, error answer, who, org id): who is "admin" or "token"."""
        if auth.startswith("Bearer "):
            org_id = self.tokens.get(auth[7:])
            if org_id is None:
                return 401, {"message": "invalid API key"}, "", 0
            return 200, None, "token", org_id  # a token's org is its own, header or not
        if auth.startswith("Basic "):
            login, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            if (login, password) != (ADMIN, ADMIN_PASSWORD):
                return 401, {"message": "Invalid username or password"}, "", 0
            org_id = int(org_header) if org_header else MAIN_ORG
            if login not in self.members.get(org_id, {}):
                return 403, {"message": "Access denied to organization"}, "", 0
            return 200, None, "admin", org_id
        return 401, {"message": "Unauthorized"}, "", 0

    def handle(self, method: str, path: str, query: dict[str, str], body: Any, who: str,
               org_id: int) -> tuple[int, Any]:
        for (m, prefix), status in self.fail.items():
            if m == method and path.startswith(prefix):
                return status, {"message": "Internal Server Error", "error": "database is locked"}
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if parts[:2] == ["api", "orgs"]:
            if who != "admin":
                return 403, {"message": "Permission denied"}
            return self._orgs(method, parts[2:], body)
        if path == "/api/org" and method == "GET":
            return 200, {"id": org_id, "name": self.orgs[org_id]}
        state = self.data[org_id]
        if parts[:2] == ["api", "datasources"]:
            return self._datasources(state, org_id, method, parts[2:], body)
        if parts[:2] == ["api", "folders"]:
            return self._folders(state, method, parts[2:], body)
        if parts[:3] == ["api", "dashboards", "uid"] and method == "GET":
            found = state.dashboards.get(parts[3])
            if found is None:
                return 404, {"message": "Dashboard not found"}
            return 200, {"dashboard": copy.deepcopy(found["model"]),
                         "meta": {"folderUid": found["folderUid"], "provisioned": False,
                                  "version": found["model"]["version"]}}
        if path == "/api/dashboards/db" and method == "POST":
            return self._save_dashboard(state, body)
        if parts[:2] == ["api", "playlists"]:
            return self._playlists(state, method, parts[2:], query, body)
        return 404, {"message": "Not found"}

    def _orgs(self, method: str, rest: list[str], body: Any) -> tuple[int, Any]:
        if not rest and method == "POST":
            if body["name"] in self.orgs.values():
                return 409, {"message": "Organization name taken"}
            org_id = self.add_org(body["name"])
            self.members[org_id][ADMIN] = "Admin"  # the creator becomes its Admin
            return 200, {"orgId": org_id, "message": "Organization created"}
        if rest[:1] == ["name"] and method == "GET":
            for org_id, name in self.orgs.items():
                if name == rest[1]:
                    return 200, {"id": org_id, "name": name, "address": {}}
            return 404, {"message": "Organization not found"}
        org_id = int(rest[0])
        if org_id not in self.orgs:
            return 404, {"message": "Organization not found"}
        members = self.members[org_id]
        if rest[1:] == ["users"] and method == "GET":
            return 200, [{"orgId": org_id, "userId": self.user_ids[login], "login": login,
                          "email": f"{login}@localhost", "role": role}
                         for login, role in members.items()]
        if rest[1:] == ["users"] and method == "POST":
            if body["loginOrEmail"] in members:
                return 409, {"message": "User is already member of this organization"}
            members[body["loginOrEmail"]] = body["role"]
            return 200, {"message": "User added to organization",
                         "userId": self.user_ids[body["loginOrEmail"]]}
        if len(rest) == 3 and rest[1] == "users" and method == "PATCH":
            login = next(n for n, i in self.user_ids.items() if i == int(rest[2]))
            members[login] = body["role"]
            return 200, {"message": "Organization user updated"}
        return 405, {"message": "method not allowed"}

    def _datasources(self, state: OrgState, org_id: int, method: str, rest: list[str],
                     body: Any) -> tuple[int, Any]:
        def answer(uid: str) -> dict[str, Any]:
            stored = state.datasources[uid]
            fields = {k: True for k in state.secrets.get(uid, {})}
            return {**copy.deepcopy(stored), "secureJsonFields": fields}

        if not rest and method == "POST":
            if body["uid"] in state.datasources:
                return 409, {"message": "data source with the same uid already exists"}
            return 200, self._store_datasource(state, org_id, body, version=1)
        if rest[:1] != ["uid"] or len(rest) != 2:
            return 404, {"message": "Not found"}
        uid = rest[1]
        if uid not in state.datasources:
            return 404, {"message": "Data source not found"}
        if method == "GET":
            return 200, answer(uid)
        if method == "PUT":
            if state.datasources[uid].get("readOnly"):
                return 403, {"message": "Cannot update read-only data source"}
            return 200, self._store_datasource(
                state, org_id, body, version=state.datasources[uid]["version"] + 1)
        return 405, {"message": "method not allowed"}

    def _store_datasource(self, state: OrgState, org_id: int, body: dict[str, Any],
                          version: int) -> dict[str, Any]:
        body = copy.deepcopy(body)
        secrets = body.pop("secureJsonData", None) or {}
        uid = body["uid"]
        old = state.secrets.get(uid, {})
        state.secrets[uid] = {**old, **secrets}  # a secret left out keeps its value
        state.datasources[uid] = {"id": next(self._ids), "orgId": org_id, "readOnly": False,
                                  "jsonData": {}, **body, "version": version}
        return {"datasource": state.datasources[uid], "message": "Datasource added",
                "name": body["name"], "id": state.datasources[uid]["id"]}

    def _folders(self, state: OrgState, method: str, rest: list[str],
                 body: Any) -> tuple[int, Any]:
        if not rest and method == "POST":
            if body["uid"] in state.folders:
                return 409, {"message": "a folder with the same uid already exists"}
            state.folders[body["uid"]] = {"id": next(self._ids), "uid": body["uid"],
                                          "title": body["title"], "version": 1}
            return 200, state.folders[body["uid"]]
        folder = state.folders.get(rest[0]) if rest else None
        if folder is None:
            return 404, {"message": "folder not found"}
        if len(rest) == 1 and method == "GET":
            return 200, folder
        if len(rest) == 1 and method == "PUT":
            folder.update(title=body["title"], version=folder["version"] + 1)
            return 200, folder
        return 405, {"message": "method not allowed"}

    def _save_dashboard(self, state: OrgState, body: dict[str, Any]) -> tuple[int, Any]:
        model = copy.deepcopy(body["dashboard"])
        if body["folderUid"] not in state.folders:
            return 400, {"message": "folder not found"}
        found = state.dashboards.get(model["uid"])
        if found is not None and not body.get("overwrite"):
            return 412, {"message": "A dashboard with the same uid already exists"}
        model["id"] = found["model"]["id"] if found else next(self._ids)
        model["version"] = found["model"]["version"] + 1 if found else 1
        state.dashboards[model["uid"]] = {"model": model, "folderUid": body["folderUid"]}
        return 200, {"id": model["id"], "uid": model["uid"], "status": "success",
                     "version": model["version"], "url": f"/d/{model['uid']}"}

    def _playlists(self, state: OrgState, method: str, rest: list[str], query: dict[str, str],
                   body: Any) -> tuple[int, Any]:
        if not rest and method == "GET":
            return 200, [{"uid": p["uid"], "name": p["name"], "interval": p["interval"]}
                         for p in state.playlists.values()
                         if query.get("query", "") in p["name"]]
        if not rest and method == "POST":
            uid = f"pl{next(self._ids)}"
            state.playlists[uid] = {"uid": uid, **body}
            return 200, {"uid": uid, "name": body["name"], "interval": body["interval"]}
        found = state.playlists.get(rest[0]) if rest else None
        if found is None:
            return 404, {"message": "Playlist not found"}
        if method == "GET":
            items = [{"id": n, "playlistUid": found["uid"], **i}
                     for n, i in enumerate(found["items"], 1)]
            return 200, {**found, "items": items}
        if method == "PUT":
            found.update(body)
            return 200, found
        return 405, {"message": "method not allowed"}


@pytest.fixture
def grafana() -> Iterator[tuple[FakeGrafana, str]]:
    """The fake Grafana on a free loopback port, and its base URL."""
    state = FakeGrafana()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            if state.delay_s:
                time.sleep(state.delay_s)
            if state.redirect_to:
                with state.lock:
                    state.requests.append((self.command, url.path, 0))
                self.send_response(301)
                self.send_header("Location", state.redirect_to + self.path)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            with state.lock:
                status, answer, who, org_id = state.authenticate(
                    self.headers.get("Authorization", ""),
                    self.headers.get("X-Grafana-Org-Id", ""))
                state.requests.append((self.command, url.path, org_id))
                if status == 200:
                    query = {k: v[0] for k, v in parse_qs(url.query).items()}
                    status, answer = state.handle(self.command, url.path, query, body, who,
                                                  org_id)
            raw = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        do_GET = do_POST = do_PUT = do_PATCH = _serve

        def log_message(self, *args: object) -> None:  # keep the test output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@dataclass(frozen=True)
class File:
    """Shaped as ``dashboards.build.DashboardFile`` (the push's input contract)."""

    folder_uid: str
    folder_title: str
    uid: str
    title: str
    model: dict[str, Any]


CLUSTERS = ("knitwear", "denim", "silk")


def model(uid: str, title: str) -> dict[str, Any]:
    return {"uid": uid, "title": title, "schemaVersion": 41, "refresh": "10s",
            "panels": [{"id": 1, "type": "stat", "title": "扫码 Scans",
                        "gridPos": {"x": 0, "y": 0, "w": 6, "h": 4}}]}


def orgs() -> list[GrafanaOrg]:
    """The orgs of a three-cluster build, ids as a fresh Grafana gives them (2..)."""
    out = [GrafanaOrg("organizers", "LeadLoom organizers", 2, "organizer", None),
           GrafanaOrg("ops", "LeadLoom ops", 3, "ops", None)]
    out += [GrafanaOrg(c, f"LeadLoom delegation {c}", 4 + n, f"delegation_{c}", c)
            for n, c in enumerate(CLUSTERS)]
    return out


def password(org: GrafanaOrg) -> str:
    return f"pw-{org.ch_user}-secret"


def datasource(org: GrafanaOrg) -> dict[str, Any]:
    return {"name": "LeadLoom", "uid": DS_UID, "type": "grafana-clickhouse-datasource",
            "access": "proxy", "isDefault": True,
            "jsonData": {"host": "127.0.0.1", "port": 18123, "protocol": "http",
                         "secure": False, "username": org.ch_user,
                         "defaultDatabase": "leadloom"}}


def build(only: str | None = None) -> list[OrgTarget]:
    targets = []
    for org in orgs():
        if org.key == "organizers":
            uids = [("leadloom-organizers", "组委会 Organizers", WALL, "大屏 Wall")]
        elif org.key == "ops":
            uids = [("leadloom-ops", "运维 Ops", "leadloom-ops", "运维 Ops")]
        else:
            uid = f"leadloom-delegation-{org.key}"
            uids = [(uid, f"代表团 Delegation {org.key}", uid, org.key)]
        files = [File(f, ft, u, t, model(u, t)) for f, ft, u, t in uids]
        targets.append(OrgTarget(org, datasource(org), password(org), files))
    return [t for t in targets if only is None or t.org.key == only]


def admin(url: str, **kwargs: Any) -> GrafanaClient:
    return GrafanaClient(url, basic=(ADMIN, ADMIN_PASSWORD), **kwargs)


def push_admin(url: str, targets: list[OrgTarget] | None = None,
               lines: list[str] | None = None, **kwargs: Any) -> tuple[PushReport, int]:
    client = admin(url)
    report = push(client, build() if targets is None else targets, WALL,
                  (lines if lines is not None else []).append, admin_login=ADMIN, **kwargs)
    return report, client.writes


def counts(report: PushReport, outcome: str) -> dict[str, int]:
    return {kind: len(o[outcome]) for kind, o in report.changes.items()}  # type: ignore[index]


def test_the_first_push_creates_an_org_per_audience_each_with_its_own_data_source(
        grafana: tuple[FakeGrafana, str]) -> None:
    state, url = grafana
    lines: list[str] = []
    report, _ = push_admin(url, lines=lines)

    assert counts(report, "created") == {"orgs": 5, "datasources": 5, "folders": 5,
                                         "dashboards": 5, "playlists": 1}
    assert report.changed == 21
    # ids as the provisioning tree expects them, the admin an Admin member of each
    assert {state.orgs[o.org_id]: o.org_id for o in orgs()} == {o.name: o.org_id
                                                                for o in orgs()}
    for org in orgs():
        held = state.org(org.name)
        assert state.members[org.org_id] == {ADMIN: "Admin"}
        # one data source, the fixed uid, the org's ClickHouse user and password
        (ds,) = held.datasources.values()
        assert (ds["uid"], ds["orgId"], ds["jsonData"]["username"]) == (
            DS_UID, org.org_id, org.ch_user)
        assert ds["jsonData"]["protocol"] == "http" and ds["isDefault"] is True
        assert held.secrets[DS_UID] == {"password": password(org)}
    # each delegation's dashboard in its own org only
    silk = state.org("LeadLoom delegation silk")
    assert list(silk.dashboards) == ["leadloom-delegation-silk"]
    assert silk.dashboards["leadloom-delegation-silk"]["folderUid"] == "leadloom-delegation-silk"
    assert list(state.org("LeadLoom ops").dashboards) == ["leadloom-ops"]
    organizers = state.org("LeadLoom organizers")
    assert list(organizers.dashboards) == [WALL]
    (playlist,) = organizers.playlists.values()
    assert (playlist["name"], playlist["interval"]) == (PLAYLIST_NAME, PLAYLIST_INTERVAL)
    assert [(i["type"], i["value"]) for i in playlist["items"]] == [("dashboard_by_uid", WALL)]
    assert not any(state.org(o.name).playlists for o in orgs()[1:])
    assert not state.data[MAIN_ORG].dashboards and not state.data[MAIN_ORG].datasources
    # every org-scoped write went to its org (X-Grafana-Org-Id), none to Main Org.
    assert {org for m, p, org in state.writes if not p.startswith("/api/orgs")} == {
        o.org_id for o in orgs()}
    assert "orgs: 5 created, 0 updated, 0 unchanged" in lines
    assert not any("secret" in line for line in lines)  # passwords never printed


def test_a_second_push_of_the_same_build_reports_all_unchanged_and_writes_nothing(
        grafana: tuple[FakeGrafana, str]) -> None:
    state, url = grafana
    push_admin(url)
    before = len(state.writes)
    report, writes = push_admin(url)

    assert report.changed == 0 and writes == 0
    assert len(state.writes) == before
    assert counts(report, "unchanged") == {"orgs": 5, "datasources": 5, "folders": 5,
                                           "dashboards": 5, "playlists": 1}
    assert {d["version"] for o in orgs() for d in state.org(o.name).datasources.values()} == {1}


def test_a_changed_dashboard_is_updated_and_nothing_else(
        grafana: tuple[FakeGrafana, str]) -> None:
    state, url = grafana
    push_admin(url)
    targets = build()
    ops = targets[1]
    changed = replace(ops.files[0], model={**ops.files[0].model, "refresh": "30s"})  # type: ignore[type-var]
    targets[1] = replace(ops, files=[changed])
    before = len(state.writes)
    report, _ = push_admin(url, targets)

    assert report.changes["dashboards"]["updated"] == ["leadloom-ops"]
    assert report.changed == 1
    assert state.writes[before:] == [("POST", "/api/dashboards/db", 3)]
    stored = state.org("LeadLoom ops").dashboards["leadloom-ops"]["model"]
    assert (stored["refresh"], stored["version"]) == ("30s", 2)


def test_drift_made_in_grafana_is_put_back(grafana: tuple[FakeGrafana, str]) -> None:
    """A renamed folder, a data source pointed at another user, the admin demoted in an
    org and a slower playlist are all put back."""
    state, url = grafana
    push_admin(url)
    state.org("LeadLoom ops").folders["leadloom-ops"]["title"] = "Ops (old)"
    denim = state.org("LeadLoom delegation denim")
    denim.datasources[DS_UID]["jsonData"]["username"] = "organizer"
    denim.secrets[DS_UID] = {"password": "the organizer's"}
    state.members[4][ADMIN] = "Viewer"
    next(iter(state.org("LeadLoom organizers").playlists.values()))["interval"] = "5m"
    report, _ = push_admin(url)

    assert report.changes["folders"]["updated"] == ["leadloom-ops"]
    assert report.changes["datasources"]["updated"] == ["LeadLoom delegation denim"]
    assert report.changes["orgs"]["updated"] == ["LeadLoom delegation knitwear"]
    assert report.changes["playlists"]["updated"] == [PLAYLIST_NAME]
    assert report.changed == 4
    assert state.org("LeadLoom ops").folders["leadloom-ops"]["title"] == "运维 Ops"
    assert denim.datasources[DS_UID]["jsonData"]["username"] == "delegation_denim"
    assert denim.secrets[DS_UID] == {"password": "pw-delegation_denim-secret"}
    assert state.members[4][ADMIN] == "Admin"


def test_an_existing_org_the_admin_is_not_in_gets_the_admin_then_its_content(
        grafana: tuple[FakeGrafana, str]) -> None:
    state, url = grafana
    assert state.add_org("LeadLoom organizers") == 2  # made by hand, in the expected place
    report, _ = push_admin(url)

    assert report.changes["orgs"]["updated"] == ["LeadLoom organizers"]
    assert len(report.changes["orgs"]["created"]) == 4
    assert state.members[2] == {ADMIN: "Admin"}
    assert list(state.org("LeadLoom organizers").dashboards) == [WALL]


def test_an_org_in_another_place_than_the_tree_expects_is_refused_before_any_write(
        grafana: tuple[FakeGrafana, str]) -> None:
    """A shifted id would provision one delegation's data source into another's org."""
    state, url = grafana
    state.add_org("someone else's org")  # takes id 2
    state.add_org("LeadLoom organizers")  # id 3, the tree says 2
    with pytest.raises(GrafanaError) as err:
        push_admin(url)
    assert str(err.value).startswith(
        "Grafana - /api/orgs: org 'LeadLoom organizers' has id 3, the provisioning tree"
        " gives it orgId 2: ")
    assert "--not-provisioned" in str(err.value) and "\n" not in str(err.value)
    assert not state.writes
    # a Grafana that does not mount the tree takes the build anyway
    report, _ = push_admin(url, check_ids=False)
    assert len(report.changes["datasources"]["created"]) == 5


def test_a_data_source_that_files_provision_is_left_alone_or_refused(
        grafana: tuple[FakeGrafana, str]) -> None:
    state, url = grafana
    push_admin(url)
    ops = state.org("LeadLoom ops")
    ops.datasources[DS_UID]["readOnly"] = True
    report, writes = push_admin(url, set_passwords=True)  # same settings: nothing to do
    assert "LeadLoom ops" in report.changes["datasources"]["unchanged"]
    assert len(report.changes["datasources"]["updated"]) == 4  # the pushed ones re-sent
    ops.datasources[DS_UID]["jsonData"]["port"] = 8123
    with pytest.raises(GrafanaError, match=r"^Grafana PUT /api/datasources/uid/leadloom-"
                                           r"clickhouse: the data source of org 'LeadLoom ops'"
                                           r" is provisioned from files"):
        push_admin(url)


def test_a_token_pushes_its_own_org_only(grafana: tuple[FakeGrafana, str]) -> None:
    state, url = grafana
    push_admin(url)  # the orgs exist; then a service account token of the ops org
    state.tokens[TOKEN] = 3
    state.org("LeadLoom ops").folders.clear()
    state.org("LeadLoom ops").dashboards.clear()
    report = push(GrafanaClient(url, TOKEN), build("ops"), WALL, lambda _: None)

    assert report.changes["orgs"]["unchanged"] == ["LeadLoom ops"]
    assert report.changes["dashboards"]["created"] == ["leadloom-ops"]
    assert list(state.org("LeadLoom ops").dashboards) == ["leadloom-ops"]
    with pytest.raises(GrafanaError) as err:  # the token of another org
        push(GrafanaClient(url, TOKEN), build("silk"), WALL, lambda _: None)
    assert str(err.value) == (
        "Grafana GET /api/org: the token belongs to org 'LeadLoom ops' (id 3), not"
        " 'LeadLoom delegation silk': use a token of a service account in that org,"
        " or a server admin")
    with pytest.raises(ValueError, match="reaches one org"):
        push(GrafanaClient(url, TOKEN), build(), WALL, lambda _: None)


def test_a_token_cannot_create_orgs(grafana: tuple[FakeGrafana, str]) -> None:
    """The admin org endpoints answer a token with 403, as Grafana's do."""
    with pytest.raises(GrafanaError, match=r"^Grafana POST /api/orgs: HTTP 403 Permission"):
        GrafanaClient(grafana[1], TOKEN).create_org("x")


def test_wrong_credentials_are_a_one_line_error_naming_the_endpoint(
        grafana: tuple[FakeGrafana, str]) -> None:
    state, url = grafana
    with pytest.raises(GrafanaError) as err:
        push(GrafanaClient(url, basic=(ADMIN, "wrong")), build(), WALL, lambda _: None,
             admin_login=ADMIN)
    assert str(err.value) == ("Grafana GET /api/orgs/name/LeadLoom%20organizers:"
                              " HTTP 401 Invalid username or password")
    assert err.value.status == 401 and "wrong" not in str(err.value)
    with pytest.raises(GrafanaError) as err:
        push(GrafanaClient(url, "glsa_wrong"), build("ops"), WALL, lambda _: None)
    assert str(err.value) == "Grafana GET /api/org: HTTP 401 invalid API key"
    assert not state.writes


def test_a_server_error_is_a_one_line_error_with_grafanas_message(
        grafana: tuple[FakeGrafana, str]) -> None:
    state, url = grafana
    state.fail[("POST", "/api/datasources")] = 500
    with pytest.raises(GrafanaError) as err:
        push_admin(url)
    assert str(err.value) == ("Grafana POST /api/datasources: HTTP 500 Internal Server Error:"
                              " database is locked")
    assert "pw-" not in str(err.value)
    # what came before the refusal stays; the next push carries on from there
    del state.fail[("POST", "/api/datasources")]
    report, _ = push_admin(url)
    assert len(report.changes["orgs"]["unchanged"]) == 5
    assert len(report.changes["datasources"]["created"]) == 5


def test_the_client_takes_a_token_or_an_admin_not_both(grafana: tuple[FakeGrafana, str]) -> None:
    with pytest.raises(GrafanaError, match="either a token or an admin"):
        GrafanaClient(grafana[1], TOKEN, basic=(ADMIN, ADMIN_PASSWORD))
    with pytest.raises(GrafanaError, match="either a token or an admin"):
        GrafanaClient(grafana[1])


def test_no_answer_in_time_and_no_server_are_one_line_errors(
        grafana: tuple[FakeGrafana, str]) -> None:
    state, url = grafana
    state.delay_s = 1.0
    with pytest.raises(GrafanaError, match=r"^Grafana GET /api/orgs/name/LeadLoom%20"
                                           r"organizers: no answer within 0.2 s from"
                                           r" http://127\.0"):
        push(admin(url, timeout_s=0.2), build(), WALL, lambda _: None, admin_login=ADMIN)
    closed = GrafanaClient("http://127.0.0.1:9", TOKEN)  # discard port: nothing listens
    with pytest.raises(GrafanaError, match=r"cannot reach http://127\.0\.0\.1:9: ") as err:
        closed.get_folder("x")
    assert "\n" not in str(err.value)


def test_a_redirect_is_an_error_not_a_lost_write(grafana: tuple[FakeGrafana, str]) -> None:
    state, url = grafana
    state.redirect_to = "https://grafana.example"
    with pytest.raises(GrafanaError) as err:
        GrafanaClient(url, TOKEN).create_folder("x", "X")
    assert str(err.value) == ("Grafana POST /api/folders: HTTP 301 redirected to"
                              " https://grafana.example/api/folders: pass Grafana's final URL")
    assert state.requests == [("POST", "/api/folders", 0)]  # followed nowhere


def test_the_url_must_be_http(grafana: tuple[FakeGrafana, str]) -> None:
    with pytest.raises(GrafanaError, match="must be http"):
        GrafanaClient("grafana.local:3000", TOKEN)

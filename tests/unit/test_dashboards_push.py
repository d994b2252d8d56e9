"""``dashboards push`` against a local HTTP server that answers as Grafana's API does.

This tests our client and push logic, not Grafana: the server below implements exactly the
endpoints the push uses (folders, folder permissions, dashboards with ids and versions,
teams with ids, playlists), with state, Bearer token checking and Grafana's answer shapes
(JSON bodies, ``{"message": ...}`` on errors, 404 for a missing uid). It runs on loopback
in a thread; no broker or store is needed.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from dashboards.grafana_http import GrafanaClient, GrafanaError
from dashboards.push import PLAYLIST_INTERVAL, PLAYLIST_NAME, PushReport, push

TOKEN = "glsa_test_token"
WALL = "leadloom-wall"


class FakeGrafana:
    """Grafana's state for the endpoints the push uses, and the requests it received."""

    def __init__(self) -> None:
        self.folders: dict[str, dict[str, Any]] = {}
        self.permissions: dict[str, list[dict[str, Any]]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}  # uid -> {"model", "folderUid"}
        self.teams: dict[int, str] = {}
        self.playlists: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self.fail: dict[tuple[str, str], int] = {}  # (method, path prefix) -> status
        self.delay_s = 0.0
        self.redirect_to = ""  # answer every request with a 301 there (http -> https)
        self._ids = iter(range(1, 1_000_000))
        self.lock = threading.Lock()

    @property
    def writes(self) -> list[tuple[str, str]]:
        return [r for r in self.requests if r[0] != "GET"]

    def handle(self, method: str, path: str, query: dict[str, str],
               body: Any) -> tuple[int, Any]:
        for (m, prefix), status in self.fail.items():
            if m == method and path.startswith(prefix):
                return status, {"message": "Internal Server Error", "error": "database is locked"}
        parts = path.strip("/").split("/")
        if parts[:2] == ["api", "folders"]:
            return self._folders(method, parts[2:], body)
        if parts[:3] == ["api", "dashboards", "uid"] and method == "GET":
            found = self.dashboards.get(parts[3])
            if found is None:
                return 404, {"message": "Dashboard not found"}
            return 200, {"dashboard": copy.deepcopy(found["model"]),
                         "meta": {"folderUid": found["folderUid"], "provisioned": False,
                                  "version": found["model"]["version"]}}
        if path == "/api/dashboards/db" and method == "POST":
            return self._save_dashboard(body)
        if path == "/api/teams/search" and method == "GET":
            teams = [{"id": i, "name": n, "memberCount": 0} for i, n in self.teams.items()
                     if not query.get("name") or n == query["name"]]
            return 200, {"totalCount": len(teams), "teams": teams, "page": 1, "perPage": 1000}
        if path == "/api/teams" and method == "POST":
            if body["name"] in self.teams.values():
                return 409, {"message": "Team name taken"}
            team_id = next(self._ids)
            self.teams[team_id] = body["name"]
            return 200, {"message": "Team created", "teamId": team_id}
        if parts[:2] == ["api", "playlists"]:
            return self._playlists(method, parts[2:], query, body)
        return 404, {"message": "Not found"}

    def _folders(self, method: str, rest: list[str], body: Any) -> tuple[int, Any]:
        if not rest and method == "POST":
            if body["uid"] in self.folders:
                return 409, {"message": "a folder with the same uid already exists"}
            self.folders[body["uid"]] = {"id": next(self._ids), "uid": body["uid"],
                                         "title": body["title"], "version": 1}
            # Grafana's default grants on a new folder
            self.permissions[body["uid"]] = [{"role": "Viewer", "permission": 1},
                                             {"role": "Editor", "permission": 2}]
            return 200, self.folders[body["uid"]]
        folder = self.folders.get(rest[0]) if rest else None
        if folder is None:
            return 404, {"message": "folder not found"}
        if len(rest) == 1 and method == "GET":
            return 200, folder
        if len(rest) == 1 and method == "PUT":
            folder.update(title=body["title"], version=folder["version"] + 1)
            return 200, folder
        if rest[1:] == ["permissions"] and method == "GET":
            return 200, [{"folderUid": rest[0], "userId": 0, "teamId": 0, "role": "",
                          "permissionName": "View", "inherited": False, **item}
                         for item in self.permissions[rest[0]]]
        if rest[1:] == ["permissions"] and method == "POST":
            for item in body["items"]:
                if item.get("teamId") and item["teamId"] not in self.teams:
                    return 400, {"message": "Team not found"}
            self.permissions[rest[0]] = [dict(i) for i in body["items"]]
            return 200, {"message": "Folder permissions updated"}
        return 405, {"message": "method not allowed"}

    def _save_dashboard(self, body: dict[str, Any]) -> tuple[int, Any]:
        model = copy.deepcopy(body["dashboard"])
        if body["folderUid"] not in self.folders:
            return 400, {"message": "folder not found"}
        found = self.dashboards.get(model["uid"])
        if found is not None and not body.get("overwrite"):
            return 412, {"message": "A dashboard with the same uid already exists"}
        model["id"] = found["model"]["id"] if found else next(self._ids)
        model["version"] = found["model"]["version"] + 1 if found else 1
        self.dashboards[model["uid"]] = {"model": model, "folderUid": body["folderUid"]}
        return 200, {"id": model["id"], "uid": model["uid"], "status": "success",
                     "version": model["version"], "url": f"/d/{model['uid']}"}

    def _playlists(self, method: str, rest: list[str], query: dict[str, str],
                   body: Any) -> tuple[int, Any]:
        if not rest and method == "GET":
            return 200, [{"uid": p["uid"], "name": p["name"], "interval": p["interval"]}
                         for p in self.playlists.values()
                         if query.get("query", "") in p["name"]]
        if not rest and method == "POST":
            uid = f"pl{next(self._ids)}"
            self.playlists[uid] = {"uid": uid, **body}
            return 200, {"uid": uid, "name": body["name"], "interval": body["interval"]}
        found = self.playlists.get(rest[0]) if rest else None
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
            with state.lock:
                state.requests.append((self.command, url.path))
            if state.delay_s:
                time.sleep(state.delay_s)
            if state.redirect_to:
                self.send_response(301)
                self.send_header("Location", state.redirect_to + self.path)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            auth = self.headers.get("Authorization", "")
            if not auth.startswith("Bearer "):
                status, answer = 401, {"message": "Unauthorized"}
            elif auth != f"Bearer {TOKEN}":
                status, answer = 401, {"message": "invalid API key"}
            else:
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                with state.lock:
                    status, answer = state.handle(self.command, url.path, query, body)
            raw = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        do_GET = do_POST = do_PUT = _serve

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

    audience: str
    folder_uid: str
    folder_title: str
    cluster_id: str | None
    uid: str
    title: str
    model: dict[str, Any]


def model(uid: str, title: str) -> dict[str, Any]:
    return {"uid": uid, "title": title, "schemaVersion": 41, "refresh": "10s",
            "panels": [{"id": 1, "type": "stat", "title": "扫码 Scans",
                        "gridPos": {"x": 0, "y": 0, "w": 6, "h": 4}}]}


def build(clusters: tuple[str, ...] = ("knitwear", "denim", "silk")) -> list[File]:
    files = [File("organizers", "leadloom-organizers", "组委会 Organizers", None, WALL,
                  "大屏 Wall", model(WALL, "大屏 Wall")),
             File("ops", "leadloom-ops", "运维 Ops", None, "leadloom-ops", "运维 Ops",
                  model("leadloom-ops", "运维 Ops"))]
    for c in clusters:
        uid = f"leadloom-delegation-{c}"
        files.append(File("delegation", uid, f"代表团 Delegation {c}", c, uid, c, model(uid, c)))
    return files


def counts(report: PushReport, outcome: str) -> dict[str, int]:
    return {kind: len(o[outcome]) for kind, o in report.changes.items()}  # type: ignore[index]


def test_the_first_push_creates_folders_dashboards_teams_permissions_and_the_playlist(
        grafana: tuple[FakeGrafana, str]) -> None:
    state, url = grafana
    lines: list[str] = []
    report = push(GrafanaClient(url, TOKEN), build(), WALL, lines.append)

    assert counts(report, "created") == {"folders": 5, "dashboards": 5, "teams": 3,
                                         "permissions": 3, "playlists": 1}
    assert report.changed == 17
    assert sorted(state.folders) == sorted(f.folder_uid for f in build())
    assert state.folders["leadloom-ops"]["title"] == "运维 Ops"
    assert state.dashboards[WALL]["folderUid"] == "leadloom-organizers"
    assert state.dashboards[WALL]["model"]["panels"] == model(WALL, "")["panels"]
    assert sorted(state.teams.values()) == ["leadloom-denim", "leadloom-knitwear",
                                            "leadloom-silk"]
    # a delegation's folder: its team as Viewer and nothing else (default grants dropped)
    silk = next(i for i, n in state.teams.items() if n == "leadloom-silk")
    assert state.permissions["leadloom-delegation-silk"] == [{"teamId": silk, "permission": 1}]
    # the organizers' and ops folders keep Grafana's defaults: left to the admin
    assert {p["role"] for p in state.permissions["leadloom-ops"]} == {"Viewer", "Editor"}
    (playlist,) = state.playlists.values()
    assert (playlist["name"], playlist["interval"]) == (PLAYLIST_NAME, PLAYLIST_INTERVAL)
    assert [(i["type"], i["value"]) for i in playlist["items"]] == [("dashboard_by_uid", WALL)]
    assert "folders: 5 created, 0 updated, 0 unchanged" in lines


def test_a_second_push_of_the_same_build_reports_all_unchanged_and_writes_nothing(
        grafana: tuple[FakeGrafana, str]) -> None:
    state, url = grafana
    push(GrafanaClient(url, TOKEN), build(), WALL, lambda _: None)
    before = len(state.writes)
    client = GrafanaClient(url, TOKEN)
    report = push(client, build(), WALL, lambda _: None)

    assert report.changed == 0 and client.writes == 0
    assert len(state.writes) == before
    assert counts(report, "unchanged") == {"folders": 5, "dashboards": 5, "teams": 3,
                                           "permissions": 3, "playlists": 1}
    assert {d["model"]["version"] for d in state.dashboards.values()} == {1}


def test_a_changed_dashboard_is_updated_and_nothing_else(
        grafana: tuple[FakeGrafana, str]) -> None:
    state, url = grafana
    push(GrafanaClient(url, TOKEN), build(), WALL, lambda _: None)
    files = build()
    files[1] = replace(files[1], model={**files[1].model, "refresh": "30s"})
    before = len(state.writes)
    report = push(GrafanaClient(url, TOKEN), files, WALL, lambda _: None)

    assert report.changes["dashboards"]["updated"] == ["leadloom-ops"]
    assert report.changed == 1
    assert state.writes[before:] == [("POST", "/api/dashboards/db")]
    stored = state.dashboards["leadloom-ops"]["model"]
    assert (stored["refresh"], stored["version"]) == ("30s", 2)


def test_drift_made_in_grafana_is_put_back(grafana: tuple[FakeGrafana, str]) -> None:
    """A renamed folder, a re-added default grant and a slower playlist are updated."""
    state, url = grafana
    push(GrafanaClient(url, TOKEN), build(), WALL, lambda _: None)
    state.folders["leadloom-ops"]["title"] = "Ops (old)"
    state.permissions["leadloom-delegation-denim"].append({"role": "Editor", "permission": 2})
    next(iter(state.playlists.values()))["interval"] = "5m"
    report = push(GrafanaClient(url, TOKEN), build(), WALL, lambda _: None)

    assert report.changes["folders"]["updated"] == ["leadloom-ops"]
    assert report.changes["permissions"]["updated"] == ["leadloom-delegation-denim"]
    assert report.changes["playlists"]["updated"] == [PLAYLIST_NAME]
    assert report.changed == 3
    assert state.folders["leadloom-ops"]["title"] == "运维 Ops"
    assert [p.get("role") for p in state.permissions["leadloom-delegation-denim"]] == [None]
    assert next(iter(state.playlists.values()))["interval"] == PLAYLIST_INTERVAL


def test_a_wrong_token_is_a_one_line_error_naming_the_endpoint(
        grafana: tuple[FakeGrafana, str]) -> None:
    state, url = grafana
    with pytest.raises(GrafanaError) as err:
        push(GrafanaClient(url, "glsa_wrong"), build(), WALL, lambda _: None)
    assert str(err.value) == ("Grafana GET /api/folders/leadloom-organizers:"
                              " HTTP 401 invalid API key")
    assert err.value.status == 401
    assert not state.writes


def test_a_server_error_is_a_one_line_error_with_grafanas_message(
        grafana: tuple[FakeGrafana, str]) -> None:
    state, url = grafana
    state.fail[("POST", "/api/teams")] = 500
    with pytest.raises(GrafanaError) as err:
        push(GrafanaClient(url, TOKEN), build(), WALL, lambda _: None)
    assert str(err.value) == ("Grafana POST /api/teams: HTTP 500 Internal Server Error:"
                              " database is locked")
    # what came before the refusal stays; the next push carries on from there
    del state.fail[("POST", "/api/teams")]
    report = push(GrafanaClient(url, TOKEN), build(), WALL, lambda _: None)
    assert len(report.changes["dashboards"]["unchanged"]) == 5
    assert len(report.changes["teams"]["created"]) == 3


def test_no_answer_in_time_and_no_server_are_one_line_errors(
        grafana: tuple[FakeGrafana, str]) -> None:
    state, url = grafana
    state.delay_s = 1.0
    with pytest.raises(GrafanaError, match=r"^Grafana GET /api/folders/leadloom-organizers:"
                                           r" no answer within 0.2 s from http://127\.0"):
        push(GrafanaClient(url, TOKEN, timeout_s=0.2), build(), WALL, lambda _: None)
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
    assert state.requests == [("POST", "/api/folders")]  # followed nowhere


def test_the_url_must_be_http(grafana: tuple[FakeGrafana, str]) -> None:
    with pytest.raises(GrafanaError, match="must be http"):
        GrafanaClient("grafana.local:3000", TOKEN)

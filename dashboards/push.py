"""Bring an existing Grafana in line with one dashboards build, idempotently.

For every built dashboard file (``dashboards.build.DashboardFile``), in build order:

- **folders**: created with the build's uid and title, renamed when the title differs;
- **dashboards**: saved into their folder (``overwrite``) unless Grafana already holds the
  same model in the same folder, compared without Grafana's own ``id`` and ``version``;
- **teams**: one per delegation, ``leadloom-<cluster_id>``, created when missing (members
  are the admin's to add; an existing team is never changed);
- **permissions**: a delegation's folder is viewable by its team only: the entry list is
  replaced by that one Viewer grant, which drops the default Viewer/Editor grants. An
  ``Admin`` role entry that Grafana keeps is ignored (org admins manage every folder
  anyway). The organizers' and ops folders are left to the admin: who watches the wall
  and the pipeline differs per fair, and a push must not undo what the admin granted;
- **playlists**: the wall playlist (``leadloom-wall``: the wall dashboard by uid, every
  ``PLAYLIST_INTERVAL``), created or updated.

Every change is read before it is written, so a second push of the same build sends no
write at all. Grafana's refusals come back as :class:`dashboards.grafana_http.GrafanaError`
(one line); a dashboard that file provisioning owns and that differs from the build is
refused here with the reason, since Grafana would not let the API save it.

This module does not call the builder: the command hands it the build, so it can push any
list of files that look like ``DashboardFile`` (:class:`PushedFile`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from dashboards.grafana_http import GrafanaClient, GrafanaError

KINDS = ("folders", "dashboards", "teams", "permissions", "playlists")
Outcome = Literal["created", "updated", "unchanged"]
PLAYLIST_NAME = "leadloom-wall"  # identity of the playlist: found by this exact name
PLAYLIST_INTERVAL = "1m"
VIEWER = 1  # Grafana's permission level: 1 View, 2 Edit, 4 Admin
_GRAFANA_OWNED = ("id", "version")  # fields Grafana sets on every save


class PushedFile(Protocol):
    """What a push needs of ``dashboards.build.DashboardFile`` (the same attribute names)."""

    @property
    def audience(self) -> str: ...
    @property
    def folder_uid(self) -> str: ...
    @property
    def folder_title(self) -> str: ...
    @property
    def cluster_id(self) -> str | None: ...
    @property
    def uid(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def model(self) -> dict[str, Any]: ...


@dataclass
class PushReport:
    """What a push changed: per kind, the names created, updated and left unchanged."""

    changes: dict[str, dict[Outcome, list[str]]] = field(
        default_factory=lambda: {k: {"created": [], "updated": [], "unchanged": []}
                                 for k in KINDS})

    def add(self, kind: str, outcome: Outcome, name: str) -> None:
        self.changes[kind][outcome].append(name)

    @property
    def changed(self) -> int:
        return sum(len(o["created"]) + len(o["updated"]) for o in self.changes.values())

    def summary_line(self, kind: str) -> str:
        o = self.changes[kind]
        return (f"{kind}: {len(o['created'])} created, {len(o['updated'])} updated,"
                f" {len(o['unchanged'])} unchanged")

    def as_dict(self) -> dict[str, Any]:
        return {kind: {k: list(v) for k, v in o.items()} for kind, o in self.changes.items()}


def team_name(cluster_id: str) -> str:
    return f"leadloom-{cluster_id}"


def push(client: GrafanaClient, files: Sequence[PushedFile], wall_uid: str,
         progress: Callable[[str], None]) -> PushReport:
    """Apply ``files`` to the Grafana behind ``client``; see the module docstring.

    Raises :class:`GrafanaError` on the first request Grafana refuses (what was applied
    before it stays applied; pushing again continues from there), ``ValueError`` when
    ``files`` hold no dashboard ``wall_uid``."""
    report = PushReport()

    def done(kind: str, outcome: Outcome, name: str) -> None:
        report.add(kind, outcome, name)
        if outcome != "unchanged":
            progress(f"{kind[:-1]} {name}: {outcome}")

    folders_seen: set[str] = set()
    for f in files:
        if f.folder_uid not in folders_seen:
            folders_seen.add(f.folder_uid)
            done("folders", _push_folder(client, f.folder_uid, f.folder_title), f.folder_uid)
        done("dashboards", _push_dashboard(client, f), f.uid)
    teams_seen: set[str] = set()
    for f in files:
        if f.cluster_id is None or f.folder_uid in teams_seen:
            continue
        teams_seen.add(f.folder_uid)
        outcome, team_id = _push_team(client, team_name(f.cluster_id))
        done("teams", outcome, team_name(f.cluster_id))
        done("permissions", _push_viewer_only(client, f.folder_uid, team_id), f.folder_uid)
    walls = [f for f in files if f.uid == wall_uid]
    if not walls:
        raise ValueError(f"the build has no wall dashboard {wall_uid}: nothing to play")
    done("playlists", _push_playlist(client, walls[0]), PLAYLIST_NAME)
    for kind in KINDS:
        progress(report.summary_line(kind))
    return report


def _push_folder(client: GrafanaClient, uid: str, title: str) -> Outcome:
    found = client.get_folder(uid)
    if found is None:
        client.create_folder(uid, title)
        return "created"
    if found.title != title:
        client.rename_folder(uid, title)
        return "updated"
    return "unchanged"


def comparable(model: dict[str, Any]) -> dict[str, Any]:
    """A dashboard model without the fields Grafana sets on each save."""
    return {k: v for k, v in model.items() if k not in _GRAFANA_OWNED}


def _push_dashboard(client: GrafanaClient, f: PushedFile) -> Outcome:
    ours = comparable(f.model)
    found = client.get_dashboard(f.uid)
    if found is not None and comparable(found.model) == ours and found.folder_uid == f.folder_uid:
        return "unchanged"
    if found is not None and found.provisioned:
        raise GrafanaError("POST", "/api/dashboards/db",
                           f"dashboard {f.uid} is provisioned from files in this Grafana and"
                           " differs from this build: update the mounted files"
                           " ('leadloom dashboards build') instead of pushing")
    # id None: Grafana matches the dashboard by uid, whatever id it has there
    client.save_dashboard({**ours, "id": None}, f.folder_uid, message="leadloom dashboards push")
    return "created" if found is None else "updated"


def _push_team(client: GrafanaClient, name: str) -> tuple[Outcome, int]:
    found = client.find_team(name)
    if found is not None:
        return "unchanged", found.id
    return "created", client.create_team(name).id


def _grant_key(item: dict[str, Any]) -> tuple[int, int, str, int]:
    return (int(item.get("teamId") or 0), int(item.get("userId") or 0),
            str(item.get("role") or ""), int(item.get("permission") or 0))


def _push_viewer_only(client: GrafanaClient, folder_uid: str, team_id: int) -> Outcome:
    wanted = {(team_id, 0, "", VIEWER)}
    current = {_grant_key(i) for i in client.folder_permissions(folder_uid)
               if not i.get("inherited") and i.get("role") != "Admin"}
    if current == wanted:
        return "unchanged"
    client.set_folder_permissions(folder_uid, [{"teamId": team_id, "permission": VIEWER}])
    # a folder Grafana just created carries its default grants: replacing them is the
    # normal first step, so report it as created when no team grant was there before
    return "updated" if any(k[0] for k in current) else "created"


def _push_playlist(client: GrafanaClient, wall: PushedFile) -> Outcome:
    items = [{"type": "dashboard_by_uid", "value": wall.uid, "order": 1, "title": wall.title}]
    body = {"name": PLAYLIST_NAME, "interval": PLAYLIST_INTERVAL, "items": items}
    found = client.find_playlist(PLAYLIST_NAME)
    if found is None:
        client.create_playlist(body)
        return "created"
    if found.interval == PLAYLIST_INTERVAL and found.items == (("dashboard_by_uid", wall.uid),):
        return "unchanged"
    client.update_playlist(found.uid, body)
    return "updated"

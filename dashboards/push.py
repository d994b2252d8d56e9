"""Bring an existing Grafana in line with one dashboards build, idempotently, one org per
audience (``dashboards.orgs``: organizers, ops, each delegation).

For every org target (:class:`OrgTarget`), in build order:

- **orgs** (server admin only): found by exact name, created when missing (Grafana makes
  the creating admin its Admin member); an existing org that the admin is not an Admin
  member of gets the admin added (or promoted), since ``X-Grafana-Org-Id`` only works for
  members. Each org's id is checked against the provisioning tree's (``check_ids``) before
  anything is written into it: a shifted id would make the mounted files provision one
  delegation's data source, with its password, into another delegation's org. With a
  token (one org, the token's) the token's org must be the target's, by name and id;
- **datasources**: the org's one data source (fixed uid, the org's ClickHouse user and
  password) created, or updated when a setting differs or no password is stored
  (``set_passwords`` sends the password even when nothing differs, after a rotation). The
  password is sent, never read back, printed or put in an error. One that file
  provisioning owns and that differs is refused with the reason;
- **folders**: created with the build's uid and title, renamed when the title differs;
- **dashboards**: saved into their folder (``overwrite``) unless Grafana already holds the
  same model in the same folder, compared without Grafana's own ``id`` and ``version``;
  one owned by file provisioning that differs is refused with the reason;
- **playlists**: in the org holding the wall, the wall playlist (``leadloom-wall``: the
  wall by uid, every ``PLAYLIST_INTERVAL``), created or updated.

No teams and no folder permissions: inside one org they are not a data boundary (any member
can query any data source of the org); the org is. Who belongs to which org is the
admin's business (Grafana users, or its auth provider's org mapping).

Every change is read before it is written, so a second push of the same build sends no
write request. Grafana's refusals come back as :class:`dashboards.grafana_http.GrafanaError`
(one line); what was applied before stays, and pushing again continues from there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from dashboards.grafana_http import DataSource, GrafanaClient, GrafanaError
from dashboards.orgs import ORGANIZERS_KEY, GrafanaOrg

KINDS = ("orgs", "datasources", "folders", "dashboards", "playlists")
Outcome = Literal["created", "updated", "unchanged"]
PLAYLIST_NAME = "leadloom-wall"  # identity of the playlist: found by this exact name
PLAYLIST_INTERVAL = "1m"
ADMIN_ROLE = "Admin"
_GRAFANA_OWNED = ("id", "version")  # fields Grafana sets on every save


class PushedFile(Protocol):
    """What a push needs of ``dashboards.build.DashboardFile`` (the same attribute names)."""

    @property
    def folder_uid(self) -> str: ...
    @property
    def folder_title(self) -> str: ...
    @property
    def uid(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def model(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class OrgTarget:
    """What one org gets: its data source (``dashboards.build.datasource_json``, without
    the password), the password, and its dashboards in build order."""

    org: GrafanaOrg
    datasource: dict[str, Any]
    password: str = field(repr=False)
    files: Sequence[PushedFile]


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


def push(client: GrafanaClient, targets: Sequence[OrgTarget], wall_uid: str,
         progress: Callable[[str], None], *, admin_login: str = "", check_ids: bool = True,
         set_passwords: bool = False) -> PushReport:
    """Apply ``targets`` to the Grafana behind ``client``; see the module docstring.

    ``client`` in admin mode (basic auth) reaches every org, ``admin_login`` being its
    user; in token mode exactly one target is allowed (the token's org). Raises
    :class:`GrafanaError` on the first request Grafana refuses or on an org that is not
    where the build expects it, ``ValueError`` on targets that cannot be pushed (several
    with a token; the organizers' org without the wall ``wall_uid``)."""
    if not client.is_admin and len(targets) != 1:
        raise ValueError("a service account token reaches one org: push one org (--org)"
                         " or give a server admin's user and password")
    for target in targets:
        if target.org.key == ORGANIZERS_KEY and not any(f.uid == wall_uid
                                                        for f in target.files):
            raise ValueError(f"the build has no wall dashboard {wall_uid}: nothing to play")
    report = PushReport()

    def done(kind: str, outcome: Outcome, name: str) -> None:
        report.add(kind, outcome, name)
        if outcome != "unchanged":
            progress(f"{kind[:-1]} {name}: {outcome}")

    org_ids = _push_orgs(client, targets, admin_login, check_ids, done)
    for target in targets:
        if client.is_admin:
            client.use_org(org_ids[target.org.key])
        done("datasources", _push_datasource(client, target, set_passwords), target.org.name)
        folders_seen: set[str] = set()
        for f in target.files:
            if f.folder_uid not in folders_seen:
                folders_seen.add(f.folder_uid)
                done("folders", _push_folder(client, f.folder_uid, f.folder_title),
                     f.folder_uid)
            done("dashboards", _push_dashboard(client, f), f.uid)
        walls = [f for f in target.files if f.uid == wall_uid]
        if walls:
            done("playlists", _push_playlist(client, walls[0]), PLAYLIST_NAME)
    client.use_org(None)
    for kind in KINDS:
        progress(report.summary_line(kind))
    return report


def _push_orgs(client: GrafanaClient, targets: Sequence[OrgTarget], admin_login: str,
               check_ids: bool, done: Callable[[str, Outcome, str], None]) -> dict[str, int]:
    """Every target's org found (or created, admin mode) and checked; key -> org id."""
    if not client.is_admin:
        (target,) = targets
        current = client.current_org()
        if current.name != target.org.name:
            raise GrafanaError("GET", "/api/org", f"the token belongs to org {current.name!r}"
                               f" (id {current.id}), not {target.org.name!r}: use a token of"
                               " a service account in that org, or a server admin")
        _check_id(target.org, current.id, check_ids)
        done("orgs", "unchanged", target.org.name)
        return {target.org.key: current.id}
    ids: dict[str, int] = {}
    for target in targets:  # every existing org checked before any is created
        found = client.find_org(target.org.name)
        if found is not None:
            _check_id(target.org, found.id, check_ids)
            ids[target.org.key] = found.id
    for target in targets:
        org = target.org
        if org.key not in ids:
            created = client.create_org(org.name)
            _check_id(org, created.id, check_ids, just_created=True)
            ids[org.key] = created.id
            done("orgs", "created", org.name)
            continue
        done("orgs", _ensure_admin_member(client, ids[org.key], admin_login), org.name)
    return ids


def _check_id(org: GrafanaOrg, found_id: int, check_ids: bool,
              just_created: bool = False) -> None:
    if not check_ids or found_id == org.org_id:
        return
    how = "was created with" if just_created else "has"
    raise GrafanaError("-", "/api/orgs", f"org {org.name!r} {how} id {found_id}, the"
                       f" provisioning tree gives it orgId {org.org_id}: the mounted files"
                       " would provision its data source into another org. Push into a"
                       " fresh Grafana, or pass --not-provisioned if this Grafana does not"
                       " mount infra/grafana/provisioning")


def _ensure_admin_member(client: GrafanaClient, org_id: int, login: str) -> Outcome:
    """The pushing admin an Admin member of ``org_id`` (needed for X-Grafana-Org-Id)."""
    for user in client.org_users(org_id):
        if user.login == login:
            if user.role == ADMIN_ROLE:
                return "unchanged"
            client.set_org_user_role(org_id, user.user_id, ADMIN_ROLE)
            return "updated"
    client.add_org_user(org_id, login, ADMIN_ROLE)
    return "updated"


def _datasource_matches(found: DataSource, wanted: dict[str, Any]) -> bool:
    body = found.body
    stored_json = body.get("jsonData") or {}
    return (all(body.get(k) == wanted[k] for k in ("name", "type", "access"))
            and bool(body.get("isDefault")) == bool(wanted["isDefault"])
            and all(stored_json.get(k) == v for k, v in wanted["jsonData"].items())
            and "password" in found.secure_fields)


def _push_datasource(client: GrafanaClient, target: OrgTarget, set_passwords: bool) -> Outcome:
    wanted = target.datasource
    found = client.get_datasource(wanted["uid"])
    matches = found is not None and _datasource_matches(found, wanted)
    if found is not None and matches and not set_passwords:
        return "unchanged"
    if found is not None and found.read_only:
        if matches:  # provisioned from files: its password is the files' business
            return "unchanged"
        raise GrafanaError("PUT", f"/api/datasources/uid/{wanted['uid']}",
                           f"the data source of org {target.org.name!r} is provisioned from"
                           " files in this Grafana and differs from this build: update the"
                           " mounted files ('leadloom dashboards build') instead of pushing")
    body = {**wanted, "secureJsonData": {"password": target.password}}
    if found is None:
        client.create_datasource(body)
        return "created"
    client.update_datasource(wanted["uid"], body)
    return "updated"


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

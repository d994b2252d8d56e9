"""Every LeadLoom dashboard, built from settings, and the Grafana provisioning tree.

:func:`build_dashboards` is the one build: the file tree ``leadloom dashboards build``
writes and what ``leadloom dashboards push`` sends are both its output. 20 dashboards in 20
folders: the organizers' wall, the ops view, one per delegation (``CLUSTERS``, 18), in that
order. Deterministic: the same settings give the same models (stable uids and panel ids);
files are written with sorted keys.

The tree (:func:`write_tree`, default ``infra/grafana``)::

    provisioning/datasources/clickhouse.yaml   a data source per org (``dashboards.orgs``):
                                               fixed uid, the org's user, password from env
    provisioning/dashboards/leadloom.yaml      a file provider per folder (fixed folder uid),
                                               in its audience's org
    dashboards/<folder uid>/<dashboard uid>.json

One file provider per folder, each with its folder's fixed uid and title, rather than one
provider with ``foldersFromFilesStructure``: that option names folders after directories
and gives them generated uids, so a later ``dashboards push`` (which finds folders by the
build's uids) would meet the same dashboards in other folders and be refused, since Grafana
does not let the API move a provisioned dashboard.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.cog.encoder import JSONEncoder

from core.settings import Settings
from dashboards import rules
from dashboards.delegation import delegation
from dashboards.ops import OPS_UID, ops
from dashboards.orgs import GrafanaOrg, grafana_orgs, org_key
from dashboards.query import DATASOURCE_TYPE, DATASOURCE_UID, register
from dashboards.style import DashboardSpec, label, render
from dashboards.wall import WALL_UID, wall
from schemas.reference import CLUSTERS

__all__ = ["DATASOURCE_TYPE", "DATASOURCE_UID", "OPS_UID", "WALL_UID", "DashboardFile",
           "build_dashboards", "write_tree"]

ORGANIZERS, OPS, DELEGATION = "organizers", "ops", "delegation"
# where the compose recipe mounts dashboards/ in the Grafana container
GRAFANA_DASHBOARDS_PATH = "/var/lib/grafana-dashboards/leadloom"
# where each org's data source reads: the ClickHouse HTTP interface `leadloom run` serves
# (LEADLOOM_HTTP_PORT), which listens on loopback only (LEADLOOM_HTTP_HOST), so Grafana runs
# beside it: the compose recipe puts Grafana in the `leadloom` service's network namespace.
# `dashboards push --datasource-host/--datasource-port` point elsewhere (a ClickHouse server)
DATASOURCE_HOST = "127.0.0.1"
DATASOURCE_PORT = 18123
DATASOURCE_NAME = "LeadLoom"
LEGACY_DATASOURCE_NAME = "LeadLoom ClickHouse"  # the earlier tree's one data source, org 1


@dataclass(frozen=True)
class DashboardFile:
    """One built dashboard and its folder (the contract ``dashboards.push`` reads)."""

    audience: str  # "organizers" | "ops" | "delegation"
    folder_uid: str  # "leadloom-organizers" | "leadloom-ops" | "leadloom-delegation-<id>"
    folder_title: str  # in the configured language
    cluster_id: str | None  # the delegation's cluster, else None
    uid: str  # the dashboard's uid, stable
    title: str
    model: dict[str, Any]  # the dashboard JSON object exactly as written to its file

    @property
    def path(self) -> str:
        """Its file under the tree's ``dashboards/`` directory."""
        return f"{self.folder_uid}/{self.uid}.json"


@dataclass(frozen=True)
class BuiltDashboard:
    """A dashboard's spec (panels with their expected columns) beside its file."""

    spec: DashboardSpec
    file: DashboardFile


def build_all(settings: Settings) -> list[BuiltDashboard]:
    """Every dashboard with its spec, in build order; each checked against the rules
    (:class:`dashboards.rules.DashboardRuleError` if one breaks any)."""
    register()
    language = settings.dashboard_language
    db = settings.clickhouse_database
    out = []
    for audience, folder_uid, folder_zh, folder_en, cluster_id, spec in _folders(db):
        model = _json(render(spec, language))
        rules.check(model, wall=spec.uid == WALL_UID)
        out.append(BuiltDashboard(spec, DashboardFile(
            audience, folder_uid, label(folder_zh, folder_en, language), cluster_id,
            spec.uid, str(model["title"]), model)))
    return out


def build_dashboards(settings: Settings) -> list[DashboardFile]:
    """Every dashboard in build order (wall, ops, delegations by cluster); deterministic."""
    return [built.file for built in build_all(settings)]


def _folders(db: str) -> Iterator[tuple[str, str, str, str, str | None, DashboardSpec]]:
    yield ORGANIZERS, "leadloom-organizers", "组委会", "Organizers", None, wall(db)
    yield OPS, "leadloom-ops", "运维", "Operations", None, ops(db)
    for cluster in CLUSTERS:
        yield (DELEGATION, f"leadloom-delegation-{cluster.id}", f"{cluster.name_zh}代表团",
               f"{cluster.name_en} delegation", cluster.id, delegation(db, cluster))


def _json(model: object) -> dict[str, Any]:
    """The SDK model as plain JSON data (the SDK's objects encode through ``to_json``)."""
    data: dict[str, Any] = json.loads(json.dumps(model, cls=JSONEncoder))
    return data


def dashboard_text(file: DashboardFile) -> str:
    """A dashboard file's content: sorted keys, two-space indent, UTF-8 text, newline."""
    return json.dumps(file.model, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def datasource_json(org: GrafanaOrg, settings: Settings, host: str = DATASOURCE_HOST,
                    port: int = DATASOURCE_PORT) -> dict[str, Any]:
    """The org's data source as Grafana's API and provisioning take it, without the
    password (``secureJsonData`` is added by whoever knows it): HTTP protocol to the
    ClickHouse-compatible endpoint at ``host:port`` as the org's ClickHouse user."""
    return {
        "name": DATASOURCE_NAME, "uid": DATASOURCE_UID, "type": DATASOURCE_TYPE,
        "access": "proxy", "isDefault": True,
        "jsonData": {"host": host, "port": port, "protocol": "http", "secure": False,
                     "username": org.ch_user,
                     "defaultDatabase": settings.clickhouse_database},
    }


def datasource_yaml(settings: Settings) -> str:
    """The data source provisioning file: one data source per org, each with the org's
    ClickHouse user; ``$VAR`` is expanded by Grafana from its own environment."""
    lines = [
        "# Generated by `leadloom dashboards build`: do not edit.",
        "# One data source per Grafana org, the same fixed uid in each (uids are per org), so",
        "# every dashboard reads through its own org's data source and that org's ClickHouse",
        "# user. Grafana cannot create orgs from files and refuses to start when an orgId is",
        "# missing: `leadloom dashboards push` creates them first (README, Production recipe).",
        "apiVersion: 1",
        "# the single data source of the earlier tree (Main Org., every cluster): removed",
        "deleteDatasources:",
        f"  - name: {LEGACY_DATASOURCE_NAME}",
        "    orgId: 1",
        "datasources:",
    ]
    for org in grafana_orgs():
        ds = datasource_json(org, settings)
        lines += [
            f"  - name: {ds['name']}",
            f"    orgId: {org.org_id}  # {org.name}",
            f"    uid: {ds['uid']}",
            f"    type: {ds['type']}",
            "    access: proxy",
            "    isDefault: true",
            "    editable: false",
            "    jsonData:",
            f"      host: {ds['jsonData']['host']}",
            f"      port: {ds['jsonData']['port']}",
            "      protocol: http",
            "      secure: false",
            f"      username: \"{org.ch_user}\"",
            f"      defaultDatabase: \"{settings.clickhouse_database}\"",
            "    secureJsonData:",
            f"      password: ${org.password_env}",
        ]
    return "\n".join(lines) + "\n"


def provider_yaml(files: list[DashboardFile]) -> str:
    """The dashboard providers file: one file provider per folder, fixed uid and title,
    in the org of the folder's audience."""
    orgs = {org.key: org for org in grafana_orgs()}
    lines = [
        "# Generated by `leadloom dashboards build`: do not edit.",
        "# One provider per folder so that each folder keeps the build's uid (the push finds",
        "# folders by uid), each in its audience's org (orgId; the orgs must exist first);",
        "# dashboards are read-only in Grafana, change them in dashboards/.",
        "apiVersion: 1",
        "providers:",
    ]
    seen: set[str] = set()
    for f in files:
        if f.folder_uid in seen:
            continue
        seen.add(f.folder_uid)
        org = orgs[org_key(f.audience, f.cluster_id)]
        lines += [
            f"  - name: {f.folder_uid}",
            f"    orgId: {org.org_id}  # {org.name}",
            "    type: file",
            f"    folder: {json.dumps(f.folder_title, ensure_ascii=False)}",
            f"    folderUid: {f.folder_uid}",
            "    disableDeletion: true",
            "    allowUiUpdates: false",
            "    updateIntervalSeconds: 30",
            "    options:",
            f"      path: {GRAFANA_DASHBOARDS_PATH}/{f.folder_uid}",
        ]
    return "\n".join(lines) + "\n"


def tree(settings: Settings) -> dict[str, str]:
    """Every file of the provisioning tree: relative path -> content."""
    files = build_dashboards(settings)
    out = {
        "provisioning/datasources/clickhouse.yaml": datasource_yaml(settings),
        "provisioning/dashboards/leadloom.yaml": provider_yaml(files),
    }
    out.update({f"dashboards/{f.path}": dashboard_text(f) for f in files})
    return out


def write_tree(settings: Settings, out: Path) -> dict[str, Any]:
    """Write the tree under ``out``: files created or changed, stale dashboard files of
    ours removed (a dashboard no longer built). Returns ``{"out", "files", "written",
    "removed", "dashboards", "panels"}``."""
    files = tree(settings)
    written = []
    for rel, text in sorted(files.items()):
        path = out / rel
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(rel)
    removed = []
    dash_dir = out / "dashboards"
    if dash_dir.is_dir():
        for path in sorted(dash_dir.glob("*/*.json")):
            rel = path.relative_to(out).as_posix()
            if rel not in files:
                path.unlink()
                removed.append(rel)
    dashboards = [json.loads(t) for r, t in files.items() if r.startswith("dashboards/")]
    return {"out": str(out), "files": len(files), "written": written, "removed": removed,
            "dashboards": len(dashboards),
            "panels": sum(len(d.get("panels", [])) for d in dashboards)}

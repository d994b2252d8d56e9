"""The dashboards build: the committed tree is what the build writes, the models round-trip
through the SDK, titles follow the language setting, every dashboard is provisioned in its
audience's org whose data source uses that audience's user, the files hold no secret."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from grafana_foundation_sdk.models.dashboard import Dashboard

from core.settings import Settings
from dashboards.build import (
    WALL_UID,
    DashboardFile,
    _json,
    build_dashboards,
    dashboard_text,
    tree,
)
from dashboards.orgs import grafana_orgs
from dashboards.query import DATASOURCE_TYPE, DATASOURCE_UID, ClickHouseQuery
from leadloom.cli import main
from schemas.reference import CLUSTERS

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "infra" / "grafana"
CJK = re.compile(r"[\u4e00-\u9fff]")
DEFAULTS = {"dashboard_language": "zh-en", "clickhouse_database": "leadloom"}


@pytest.fixture(scope="module")
def files() -> list[DashboardFile]:
    return build_dashboards(Settings(**DEFAULTS))  # type: ignore[arg-type]


def test_the_committed_tree_is_what_the_build_writes() -> None:
    built = tree(Settings(**DEFAULTS))  # type: ignore[arg-type]
    committed = {p.relative_to(COMMITTED).as_posix(): p.read_text(encoding="utf-8")
                 for p in sorted(COMMITTED.rglob("*")) if p.is_file()}
    assert sorted(committed) == sorted(built), "run: leadloom dashboards build"
    drifted = [rel for rel in built if committed[rel] != built[rel]]
    assert drifted == [], "run: leadloom dashboards build"


def test_the_build_is_deterministic(files: list[DashboardFile]) -> None:
    again = build_dashboards(Settings(**DEFAULTS))  # type: ignore[arg-type]
    assert [dashboard_text(f) for f in again] == [dashboard_text(f) for f in files]
    text = dashboard_text(files[0])
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2,
                              ensure_ascii=False) + "\n"


def test_every_model_round_trips_through_the_sdk(files: list[DashboardFile]) -> None:
    for f in files:
        parsed = Dashboard.from_json(f.model)
        targets = [t for p in parsed.panels or [] for t in getattr(p, "targets", None) or []]
        assert targets and all(isinstance(t, ClickHouseQuery) for t in targets)
        assert _json(parsed) == f.model


def test_twenty_folders_the_wall_ops_and_a_delegation_per_cluster(
        files: list[DashboardFile]) -> None:
    assert len(files) == len({f.folder_uid for f in files}) == 2 + len(CLUSTERS) == 20
    wall, ops, *delegations = files
    assert (wall.audience, wall.folder_uid, wall.uid, wall.cluster_id) == (
        "organizers", "leadloom-organizers", WALL_UID, None)
    assert (ops.audience, ops.folder_uid, ops.cluster_id) == ("ops", "leadloom-ops", None)
    assert [(d.audience, d.folder_uid, d.cluster_id) for d in delegations] == [
        ("delegation", f"leadloom-delegation-{c.id}", c.id) for c in CLUSTERS]
    for f in files:
        assert f.model["uid"] == f.uid and f.model["title"] == f.title


def test_a_delegations_cluster_is_a_hidden_constant(files: list[DashboardFile]) -> None:
    for f in files[2:]:
        variables = {v["name"]: v for v in f.model["templating"]["list"]}
        assert variables["cluster"]["type"] == "constant"
        assert variables["cluster"]["query"] == f.cluster_id
        assert variables["cluster"]["hide"] == 2
        for panel in f.model["panels"]:
            assert "${cluster:singlequote}" in panel["targets"][0]["rawSql"]


def test_no_panel_selects_contact_data(files: list[DashboardFile]) -> None:
    contact = re.compile(r"\b(email|phone|wechat)\w*", re.IGNORECASE)
    for f in files:
        for panel in f.model["panels"]:
            assert not contact.search(panel["targets"][0]["rawSql"]), (f.uid, panel["id"])


def test_titles_follow_the_language_setting(files: list[DashboardFile]) -> None:
    english = build_dashboards(Settings(dashboard_language="en"))
    for zh_en, en in zip(files, english, strict=True):
        titles = [zh_en.title, zh_en.folder_title] + [p["title"] for p in zh_en.model["panels"]]
        assert all(CJK.match(t) and t.endswith(e) for t, e in zip(titles, [
            en.title, en.folder_title] + [p["title"] for p in en.model["panels"]], strict=True))
        assert not any(CJK.search(t) for t in [en.title, en.folder_title]
                       + [p["title"] for p in en.model["panels"]])
    assert files[0].title == "展会大屏 Fair wall" and english[0].title == "Fair wall"
    with pytest.raises(ValueError):
        Settings(dashboard_language="zh")  # type: ignore[arg-type]


def test_panels_read_the_configured_database(files: list[DashboardFile]) -> None:
    other = build_dashboards(Settings(clickhouse_database="fair_2027"))
    sql = [p["targets"][0]["rawSql"] for f in other for p in f.model["panels"]]
    assert all(" fair_2027." in s and " leadloom." not in s for s in sql)


def test_every_dashboard_is_provisioned_in_its_own_org_with_its_own_user() -> None:
    """Each delegation's dashboard sits in an org whose one data source logs in as that
    delegation's ClickHouse user (and no other org's data source does); the wall in the
    organizers' org, ops in the ops org; the dashboards' data source uid resolves there."""
    files = tree(Settings(**DEFAULTS))  # type: ignore[arg-type]
    sources = yaml.safe_load(files["provisioning/datasources/clickhouse.yaml"])
    providers = yaml.safe_load(files["provisioning/dashboards/leadloom.yaml"])["providers"]
    by_org = {ds["orgId"]: ds for ds in sources["datasources"]}
    assert len(by_org) == len(sources["datasources"]) == 2 + len(CLUSTERS)  # one per org
    assert sorted(by_org) == list(range(2, 2 + 2 + len(CLUSTERS)))  # Main Org. (1) left out
    assert sources["deleteDatasources"] == [{"name": "LeadLoom ClickHouse", "orgId": 1}]
    for ds in by_org.values():
        assert (ds["uid"], ds["type"], ds["isDefault"], ds["editable"]) == (
            DATASOURCE_UID, DATASOURCE_TYPE, True, False)
        jd = ds["jsonData"]
        assert (jd["host"], jd["port"], jd["protocol"], jd["defaultDatabase"]) == (
            "127.0.0.1", 18123, "http", "leadloom")
        user = jd["username"]
        variable = f"$LEADLOOM_GRAFANA_CH_PASSWORD_{user.upper()}"
        assert ds["secureJsonData"] == {"password": variable}
    users = [ds["jsonData"]["username"] for ds in by_org.values()]
    assert len(set(users)) == len(users)
    org_of = {p["folderUid"]: p["orgId"] for p in providers}
    assert len(org_of) == len(providers) == 20
    for f in build_dashboards(Settings(**DEFAULTS)):  # type: ignore[arg-type]
        want = {"organizers": "organizer", "ops": "ops"}.get(
            f.audience, f"delegation_{f.cluster_id}")
        assert by_org[org_of[f.folder_uid]]["jsonData"]["username"] == want, f.uid
        targets = [t for p in f.model["panels"] for t in p["targets"]]
        assert {t["datasource"]["uid"] for t in targets} == {DATASOURCE_UID}
        assert f"dashboards/{f.path}" in files
    for p in providers:
        assert p["options"]["path"] == f"/var/lib/grafana-dashboards/leadloom/{p['folderUid']}"


def test_the_orgs_follow_the_clusters_and_name_their_password_variables() -> None:
    orgs = grafana_orgs()
    assert [o.key for o in orgs] == ["organizers", "ops"] + [c.id for c in CLUSTERS]
    assert [o.org_id for o in orgs] == list(range(2, 2 + len(orgs)))
    assert orgs[2].ch_user == f"delegation_{CLUSTERS[0].id}"
    assert orgs[2].password_env == ("LEADLOOM_GRAFANA_CH_PASSWORD_DELEGATION_"
                                    + CLUSTERS[0].id.upper())
    assert orgs[0].password_env == "LEADLOOM_GRAFANA_CH_PASSWORD_ORGANIZER"


def test_build_command_writes_the_tree_once(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "grafana"
    stale = out / "dashboards" / "leadloom-ops" / "gone.json"
    stale.parent.mkdir(parents=True)
    stale.write_text("{}")
    assert main(["dashboards", "build", "--out", str(out), "--json"]) == 0
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert first["dashboards"] == 20 and first["files"] == 22
    assert len(first["written"]) == 22 and first["removed"] == ["dashboards/leadloom-ops/gone.json"]
    assert (out / "dashboards" / "leadloom-organizers" / "leadloom-wall.json").is_file()
    assert main(["dashboards", "build", "--out", str(out), "--json"]) == 0
    second = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert second["written"] == [] and second["removed"] == []


def test_grafana_credentials_are_masked_and_not_handed_to_children() -> None:
    from core.settings import MASK, settings_env

    settings = Settings(grafana_token="glsa_secret", grafana_admin_user="admin",  # type: ignore[arg-type]
                        grafana_admin_password="admin_secret")
    assert settings.dump()["grafana_token"] == MASK
    assert settings.dump()["grafana_admin_password"] == MASK
    assert "_secret" not in json.dumps(settings.dump())
    env = settings_env(settings)
    assert not any(k.startswith("LEADLOOM_GRAFANA_") for k in env)

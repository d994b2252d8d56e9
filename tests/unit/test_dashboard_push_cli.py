"""``leadloom dashboards push``: the real build through the command into the loopback
Grafana of the push's own tests (which answers as Grafana's API does: orgs for a server
admin, one org for a token)."""

from __future__ import annotations

import json

import pytest

from dashboards.orgs import grafana_orgs
from leadloom.cli import main
from schemas.reference import CLUSTERS
from tests.unit.test_dashboards_push import (  # noqa: F401
    ADMIN,
    ADMIN_PASSWORD,
    DS_UID,
    TOKEN,
    FakeGrafana,
    grafana,
)


def _last_json(capsys: pytest.CaptureFixture[str]) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.fixture
def passwords(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Every org's data source password in the environment, no Grafana credentials."""
    for var in ("LEADLOOM_GRAFANA_TOKEN", "LEADLOOM_GRAFANA_ADMIN_USER",
                "LEADLOOM_GRAFANA_ADMIN_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    out = {org.password_env: f"secret-{org.ch_user}" for org in grafana_orgs()}
    for var, value in out.items():
        monkeypatch.setenv(var, value)
    return out


def test_push_makes_an_org_per_audience_once_then_changes_nothing(
        grafana: tuple[FakeGrafana, str],  # noqa: F811
        passwords: dict[str, str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    state, url = grafana
    monkeypatch.setenv("LEADLOOM_GRAFANA_ADMIN_USER", ADMIN)
    monkeypatch.setenv("LEADLOOM_GRAFANA_ADMIN_PASSWORD", ADMIN_PASSWORD)
    assert main(["dashboards", "push", "--url", url, "--json"]) == 0
    out = capsys.readouterr()
    first = json.loads(out.out.strip().splitlines()[-1])
    assert first["mode"] == "admin"
    assert len(first["orgs"]["created"]) == len(first["datasources"]["created"]) == 20
    assert len(first["dashboards"]["created"]) == 2 + len(CLUSTERS)
    for org in grafana_orgs():  # as the provisioning tree numbers them
        assert state.orgs[org.org_id] == org.name
        held = state.data[org.org_id]
        assert held.datasources[DS_UID]["jsonData"]["username"] == org.ch_user
        assert held.secrets[DS_UID] == {"password": passwords[org.password_env]}
        if org.cluster_id:
            assert list(held.dashboards) == [f"leadloom-delegation-{org.cluster_id}"]
    assert state.data[2].dashboards["leadloom-wall"]["model"]["refresh"] == "10s"
    assert not any(p in out.out + out.err for p in passwords.values())
    writes = len(state.writes)
    assert main(["dashboards", "push", "--url", url, "--json"]) == 0
    second = _last_json(capsys)
    assert second["changed"] == 0 and second["writes"] == 0 and len(state.writes) == writes


def test_a_token_pushes_the_org_it_names(
        grafana: tuple[FakeGrafana, str],  # noqa: F811
        passwords: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    state, url = grafana
    state.add_org("LeadLoom organizers")
    ops = state.add_org("LeadLoom ops")
    state.tokens[TOKEN] = ops
    assert main(["dashboards", "push", "--url", url, "--token", TOKEN, "--org", "ops",
                 "--json"]) == 0
    result = _last_json(capsys)
    assert (result["mode"], result["orgs_pushed"]) == ("token", ["LeadLoom ops"])
    assert list(state.data[ops].dashboards) == ["leadloom-ops"]
    assert state.data[ops].datasources[DS_UID]["jsonData"]["username"] == "ops"


@pytest.mark.parametrize(("args", "reason"), [
    ([], "no credentials: set LEADLOOM_GRAFANA_ADMIN_USER and LEADLOOM_GRAFANA_ADMIN_PASSWORD"
         " (every org), or LEADLOOM_GRAFANA_TOKEN with --org (one org)"),
    (["--token", TOKEN], "a service account token reaches one org: pass --org (organizers,"
                         " ops or a cluster id), or use a server admin's user and password"),
    (["--token", TOKEN, "--org", "atlantis"], "no org 'atlantis': one of organizers, ops, "),
    (["--admin-user", ADMIN], "an admin user needs its password and a password its user"),
])
def test_missing_or_wrong_arguments_fail_with_one_line(
        passwords: dict[str, str], capsys: pytest.CaptureFixture[str], args: list[str],
        reason: str) -> None:
    assert main(["dashboards", "push", "--url", "http://127.0.0.1:9", *args]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"leadloom: error: {reason}")


def test_a_missing_data_source_password_stops_the_push_before_any_request(
        grafana: tuple[FakeGrafana, str],  # noqa: F811
        passwords: dict[str, str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    state, url = grafana
    monkeypatch.delenv("LEADLOOM_GRAFANA_CH_PASSWORD_DELEGATION_KEQIAO")
    assert main(["dashboards", "push", "--url", url, "--admin-user", ADMIN,
                 "--admin-password", ADMIN_PASSWORD]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        "leadloom: error: no data source password: set"
        " LEADLOOM_GRAFANA_CH_PASSWORD_DELEGATION_KEQIAO"]
    assert state.requests == []


def test_a_refusing_grafana_is_a_one_line_error_and_exit_1(
        grafana: tuple[FakeGrafana, str],  # noqa: F811
        passwords: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    state, url = grafana
    assert main(["dashboards", "push", "--url", url, "--admin-user", ADMIN,
                 "--admin-password", "wrong"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == ("leadloom: error: Grafana GET /api/orgs/name/LeadLoom%20organizers:"
                       " HTTP 401 Invalid username or password")
    assert not state.writes
    state.fail[("POST", "/api/dashboards/db")] = 500
    assert main(["dashboards", "push", "--url", url, "--admin-user", ADMIN,
                 "--admin-password", ADMIN_PASSWORD]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("leadloom: error: Grafana POST /api/dashboards/db: HTTP 500")

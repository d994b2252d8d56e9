"""``leadloom dashboards push``: the real build through the command into the loopback
Grafana of the push's own tests (which answers as Grafana's API does, with Bearer auth)."""

from __future__ import annotations

import json

import pytest

from leadloom.cli import main
from schemas.reference import CLUSTERS
from tests.unit.test_dashboards_push import TOKEN, FakeGrafana, grafana  # noqa: F401


def _last_json(capsys: pytest.CaptureFixture[str]) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_push_sends_the_build_once_then_changes_nothing(
        grafana: tuple[FakeGrafana, str],  # noqa: F811
        capsys: pytest.CaptureFixture[str]) -> None:
    state, url = grafana
    assert main(["dashboards", "push", "--url", url, "--token", TOKEN, "--json"]) == 0
    first = _last_json(capsys)
    assert len(first["dashboards"]["created"]) == 2 + len(CLUSTERS)
    assert len(first["teams"]["created"]) == len(CLUSTERS)
    assert state.dashboards["leadloom-wall"]["folderUid"] == "leadloom-organizers"
    assert state.dashboards["leadloom-wall"]["model"]["refresh"] == "10s"
    writes = len(state.writes)
    assert main(["dashboards", "push", "--url", url, "--token", TOKEN, "--json"]) == 0
    second = _last_json(capsys)
    assert second["changed"] == 0 and second["writes"] == 0 and len(state.writes) == writes


def test_push_without_a_token_fails_with_one_line(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("LEADLOOM_GRAFANA_TOKEN", raising=False)
    assert main(["dashboards", "push", "--url", "http://127.0.0.1:9"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["leadloom: error: no token: set LEADLOOM_GRAFANA_TOKEN or pass --token"]


def test_a_refusing_grafana_is_a_one_line_error_and_exit_1(
        grafana: tuple[FakeGrafana, str],  # noqa: F811
        capsys: pytest.CaptureFixture[str]) -> None:
    state, url = grafana
    assert main(["dashboards", "push", "--url", url, "--token", "glsa_wrong"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == ("leadloom: error: Grafana GET /api/folders/leadloom-organizers:"
                       " HTTP 401 invalid API key")
    assert not state.writes
    state.fail[("POST", "/api/dashboards/db")] = 500
    assert main(["dashboards", "push", "--url", url, "--token", TOKEN]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("leadloom: error: Grafana POST /api/dashboards/db: HTTP 500")

"""The project's dashboard rules: every built dashboard keeps them, and each rule catches
the mistake it is for."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from core.settings import Settings
from dashboards import rules
from dashboards.build import DashboardFile, build_dashboards

Model = dict[str, Any]


@pytest.fixture(scope="module")
def files() -> list[DashboardFile]:
    return build_dashboards(Settings(dashboard_language="zh-en", clickhouse_database="leadloom"))


@pytest.fixture
def wall(files: list[DashboardFile]) -> Model:
    return copy.deepcopy(files[0].model)


@pytest.fixture
def delegation(files: list[DashboardFile]) -> Model:
    return copy.deepcopy(files[2].model)


def test_every_built_dashboard_keeps_every_rule(files: list[DashboardFile]) -> None:
    assert {f.uid: rules.problems(f.model, wall=f.uid == "leadloom-wall") for f in files} == {
        f.uid: [] for f in files}


def test_the_wall_fits_one_screen_and_refreshes_within_10_s(wall: Model) -> None:
    bottom = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in wall["panels"])
    assert 27 <= bottom <= rules.WALL_ROWS
    assert wall["refresh"] == "10s"


def _panel(model: Model, pid: int) -> Model:
    return next(p for p in model["panels"] if p["id"] == pid)


def _sql(model: Model, pid: int, sql: str) -> None:
    _panel(model, pid)["targets"][0]["rawSql"] = sql


MUTATIONS: dict[str, tuple[Callable[[Model], None], str]] = {
    "duplicate id": (lambda m: _panel(m, 2).update(id=1), "panel id 1 is used 2 times"),
    "no id": (lambda m: _panel(m, 2).pop("id"), "has no integer id"),
    "past column 24": (lambda m: _panel(m, 5)["gridPos"].update(w=5),
                       "panel 5 gridPos (20, 0, 5, 4) is outside the 24 columns"),
    "negative x": (lambda m: _panel(m, 1)["gridPos"].update(x=-1), "is outside the 24 columns"),
    "overlap": (lambda m: _panel(m, 2)["gridPos"].update(x=2), "panels 1 and 2 overlap"),
    "taller than a screen": (lambda m: _panel(m, 13)["gridPos"].update(h=11),
                             "the wall is 31 rows high, over one screen (30)"),
    "slow refresh": (lambda m: m.update(refresh="30s"), "the wall refreshes every '30s'"),
    "no refresh": (lambda m: m.update(refresh=""), "the wall refreshes every ''"),
    "duplicate refId": (lambda m: _panel(m, 1)["targets"].append(
        copy.deepcopy(_panel(m, 1)["targets"][0])), "panel 1: refId A is used 2 times"),
    "unknown macro": (lambda m: _sql(m, 6, "SELECT $__timeGroup(minute, 1m) AS time"),
                      "panel 6: unknown macro $__timeGroup"),
    "undefined variable": (lambda m: _sql(m, 1, "SELECT 1 WHERE x = ${hall:singlequote}"),
                           "panel 1: variable ${hall} is not defined"),
    "unquoted variable": (lambda m: _sql(m, 1, "SELECT 1 WHERE fair_id = ${fair}"),
                          "panel 1: variable ${fair} is not quoted"),
    "bare variable": (lambda m: _sql(m, 1, "SELECT 1 WHERE fair_id = $fair"),
                      "panel 1: bare variable $fair"),
    "time series as a table": (lambda m: _panel(m, 6)["targets"][0].update(format=1),
                               "panel 6 (timeseries): target A has format 1, expected 0"),
    "table as a time series": (lambda m: _panel(m, 9)["targets"][0].update(format=0),
                               "panel 9 (table): target A has format 0, expected 1"),
    "other data source": (lambda m: _panel(m, 3)["targets"][0]["datasource"].update(
        uid="other"), "panel 3: target A is not on data source leadloom-clickhouse"),
    "builder target": (lambda m: _panel(m, 3)["targets"][0].update(editorType="builder"),
                       "panel 3: target A is not a SQL target"),
}


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_each_rule_catches_its_mistake(name: str, wall: Model) -> None:
    mutate, expected = MUTATIONS[name]
    mutate(wall)
    found = rules.problems(wall, wall=True)
    assert any(expected in p for p in found), found
    with pytest.raises(rules.DashboardRuleError, match="leadloom-wall"):
        rules.check(wall, wall=True)


def test_a_non_wall_may_be_taller_and_slower(delegation: Model) -> None:
    delegation["refresh"] = "1m"
    delegation["panels"][-1]["gridPos"]["h"] = 20
    assert rules.problems(delegation) == []
    assert rules.problems(delegation, wall=True) != []


def test_a_variables_own_query_is_checked(delegation: Model) -> None:
    fair = delegation["templating"]["list"][0]
    fair["query"] = "SELECT fair_id FROM t WHERE $__timeGroup(x)"
    assert rules.problems(delegation) == ["variable fair: unknown macro $__timeGroup"]

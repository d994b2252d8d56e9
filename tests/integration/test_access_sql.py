"""``leadloom access sql`` on the real engine: every statement it prints parses
(``formatQuery``), one row policy per (delegation, delegation table) whose condition runs on
the migrated table, the profile is read-only, and passwords are never printed."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

import pytest
from clickhouse_connect.driver.client import Client

from core.settings import Settings
from core.store import Store
from leadloom.cli import main
from leadloom.commands.access_sql import PROFILE, build, password_env
from schemas.reference import CLUSTERS
from schemas.scope import DELEGATION_TABLES
from tests.factories.stores import open_store

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    store = open_store(Settings(data_dir=tmp_path_factory.mktemp("access"), namespace="access"))
    yield store
    store.close()


def _formatted(client: Client, sql: str) -> str:
    return str(client.query("SELECT formatQuerySingleLine({sql:String})",
                            parameters={"sql": sql}).result_rows[0][0])


def test_every_statement_parses_and_every_delegation_table_has_its_policy(
        store: Store) -> None:
    db = store.database
    model = build(db, environ={})
    formatted = [_formatted(store.client, s) for s in model.statements]
    assert len(formatted) == len(model.statements)
    profile = [f for f in formatted if f.startswith("CREATE SETTINGS PROFILE")]
    assert len(profile) == 1 and "readonly = 1" in profile[0]
    assert "max_execution_time = 30" in profile[0]
    users = [f for f in formatted if f.startswith("CREATE USER")]
    assert len(users) == 2 + len(CLUSTERS)
    assert all(f"SETTINGS PROFILE `{PROFILE}`" in u for u in users)
    assert all("sha256_hash" in u and "NOT IDENTIFIED" not in u for u in users)

    policies: dict[tuple[str, str], str] = {}
    for statement in formatted:
        if not statement.startswith("CREATE ROW POLICY"):
            continue
        head, _, to = statement.partition(" TO ")
        table = head.split(" ON ")[1].split(" ")[0]
        using = head.split(" USING ")[1]
        assert (table, to) not in policies, (table, to)
        policies[(table, to)] = using
    expected = {(f"{db}.{t}", f"delegation_{c.id}") for t in DELEGATION_TABLES for c in CLUSTERS}
    delegation_policies = {k for k in policies if k[1].startswith("delegation_")}
    assert delegation_policies == expected and model.row_policies == len(expected)
    for table in DELEGATION_TABLES:
        assert policies[(f"{db}.{table}", "organizer, ops")] == "1"
        # the condition runs on the migrated table: its column exists
        cluster = CLUSTERS[0].id
        using = policies[(f"{db}.{table}", f"delegation_{cluster}")]
        assert using == f"cluster_id = '{cluster}'"
        store.client.query(f"SELECT count() FROM {db}.{table} WHERE {using}")
    grants = [f for f in formatted if f.startswith("GRANT SELECT ON")]
    assert f"GRANT SELECT ON {db}.* TO organizer, ops" in grants
    assert not [g for g in grants if g.startswith(f"GRANT SELECT ON {db}.inquiries")]


def test_odd_database_name_is_quoted(store: Store) -> None:
    for statement in build("lead-loom", environ={}).statements:
        assert "`lead-loom`" in _formatted(store.client, statement) or "lead-loom" not in \
            statement


def test_a_given_password_is_hashed_as_the_server_does_and_never_printed() -> None:
    password = "Grafana-organizer-pw-1"
    model = build("leadloom", environ={password_env("organizer"): password})
    statement = next(s for s in model.statements if s.startswith("CREATE USER IF NOT EXISTS"
                                                                  " organizer "))
    assert password not in "\n".join(model.statements)
    digest = statement.split("BY '")[1].split("'")[0]
    salt = statement.split("SALT '")[1].split("'")[0]
    assert digest == hashlib.sha256((password + salt).encode()).hexdigest()
    users = {u["name"]: u["password"] for u in model.users}
    assert users["organizer"] == "from LEADLOOM_GRAFANA_CH_PASSWORD_ORGANIZER"
    assert users["ops"] == "locked"
    # a locked user's hash is of random bytes: two builds differ
    again = build("leadloom", environ={})
    assert [s for s in again.statements if " ops " in s] != [
        s for s in model.statements if " ops " in s]


def test_the_command(monkeypatch: pytest.MonkeyPatch,
                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(password_env("ops"), "ops-secret-pw")
    assert main(["access", "sql", "--database", "fair_db"]) == 0
    captured = capsys.readouterr()
    assert "ops-secret-pw" not in captured.out + captured.err
    lines = captured.out.splitlines()
    assert lines[0].startswith("-- ") and lines[-1].endswith(";")
    assert "row policies" in captured.err
    assert main(["access", "sql", "--database", "fair_db", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert payload["database"] == "fair_db" and payload["row_policies"] == len(
        DELEGATION_TABLES) * len(CLUSTERS)
    assert {u["name"] for u in payload["users"]} >= {"organizer", "ops",
                                                     f"delegation_{CLUSTERS[0].id}"}

"""A delegation member against the HTTP interface, as they would try it: clickhouse-connect's
``http://`` client and raw requests as ``delegation_keqiao``, on the real engine with a
simulated day stored (every cluster's rows). Each attempt is refused with the engine's or
the interface's error code, or answers the keqiao cluster's rows only, counted against the
stored rows read directly by the owner."""

from __future__ import annotations

import base64
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import clickhouse_connect
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from core.owner import QueryServer
from core.settings import Settings
from core.store import Store
from core.users import Users
from schemas.scope import DELEGATION_TABLES, delegation_scope
from tests.factories.rows import fair_day_rows
from tests.factories.stores import open_store

pytestmark = pytest.mark.integration

CLUSTER, OTHER = "keqiao", "dongguan"
USER, PASSWORD = f"delegation_{CLUSTER}", "member-pw"
READONLY, ACCESS_DENIED, SYNTAX_ERROR = 164, 497, 62


@pytest.fixture(scope="module")
def owner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, int, Path]]:
    data = tmp_path_factory.mktemp("isolation")
    settings = Settings(data_dir=data, namespace="isolation", http_port=0)
    store = open_store(settings)
    for table, rows in fair_day_rows(events=2000).rows.items():
        store.insert_json_rows(table, rows)
    store.refresh_snapshots()
    # another database on the same engine, with rows of both clusters
    store.client.command("CREATE DATABASE other")
    store.client.command("CREATE TABLE other.scans (cluster_id String, n UInt8)"
                         " ENGINE = MergeTree ORDER BY n")
    store.client.command(f"INSERT INTO other.scans VALUES ('{CLUSTER}', 1), ('{OTHER}', 2),"
                         f" ('{OTHER}', 3)")
    Users().add(USER, delegation_scope(CLUSTER), PASSWORD).save(data / "users.json")
    server = QueryServer(store, settings)
    server.start()
    assert server.interface is not None
    yield store, server.interface.port, data
    server.stop()
    store.close()


@pytest.fixture(scope="module")
def member(owner: tuple[Store, int, Path]):  # type: ignore[no-untyped-def]
    return clickhouse_connect.get_client(host="127.0.0.1", port=owner[1], username=USER,
                                         password=PASSWORD, database="leadloom")


def stored(store: Store, sql: str) -> Any:
    """The owner's direct read (no scope): what is really stored."""
    return store.query(sql).rows[0][0]


def scans_of(store: Store, cluster: str) -> int:
    return int(stored(store, f"SELECT count() FROM leadloom.scans FINAL"
                             f" WHERE cluster_id = '{cluster}'"))


def refused(member, sql: str, **kwargs: Any) -> int:  # type: ignore[no-untyped-def]
    with pytest.raises(DatabaseError) as failed:
        member.query(sql, **kwargs)
    return int(failed.value.code)


def raw(owner: tuple[Store, int, Path], sql: str, params: dict[str, str] | None = None
        ) -> tuple[int, str, str]:
    """(status, exception code header, body) of one request as the member."""
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{owner[1]}/?" + urlencode({"database": "leadloom", **(params or {})}),
        data=sql.encode(), method="POST", headers={"Authorization": f"Basic {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, resp.headers.get("X-ClickHouse-Exception-Code", ""), \
                resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("X-ClickHouse-Exception-Code", ""), \
            exc.read().decode()


def test_the_day_has_rows_of_both_clusters(owner: tuple[Store, int, Path]) -> None:
    store = owner[0]
    assert scans_of(store, CLUSTER) > 0 and scans_of(store, OTHER) > 0


def test_every_delegation_table_answers_its_cluster_only(owner: tuple[Store, int, Path],
                                                         member) -> None:  # type: ignore[no-untyped-def]
    store = owner[0]
    for table in DELEGATION_TABLES:
        mine = stored(store, f"SELECT count() FROM leadloom.{table} WHERE cluster_id = '{CLUSTER}'")
        got = member.query(f"SELECT count(), groupUniqArray(cluster_id) FROM {table}").result_rows
        assert got[0][0] == mine, table
        assert set(got[0][1]) <= {CLUSTER}, table
    total = stored(store, "SELECT count() FROM leadloom.scans")
    assert 0 < member.query("SELECT count() FROM scans").result_rows[0][0] < total


# Attempts to reach other clusters' rows through a readable table: each answers keqiao's
# count (or none of the others').
MINE = {
    "other cluster in WHERE": "SELECT count() FROM scans FINAL WHERE cluster_id = '{o}'",
    "negated WHERE": "SELECT count() FROM scans FINAL WHERE cluster_id != '{c}'",
    "subquery": "SELECT count() FROM (SELECT * FROM scans FINAL WHERE cluster_id = '{o}')",
    "IN subquery": "SELECT count() FROM scans FINAL WHERE event_id IN"
                   " (SELECT event_id FROM scans WHERE cluster_id = '{o}')",
    "CTE": "WITH x AS (SELECT * FROM scans FINAL WHERE cluster_id = '{o}') SELECT count() FROM x",
    "scalar subquery": "SELECT (SELECT count() FROM scans FINAL WHERE cluster_id = '{o}')",
    "JOIN to another table": "SELECT count() FROM scans AS a FINAL JOIN procurement_steps AS b"
                             " ON a.cluster_id != b.cluster_id",
    "view": "SELECT count() FROM leads_per_cluster_minute WHERE cluster_id = '{o}'",
    "qualified name": "SELECT count() FROM `leadloom`.`scans` FINAL WHERE cluster_id = '{o}'",
    "system.columns of buyers": "SELECT count() FROM system.columns WHERE table = 'buyers'",
    "system.tables of others": "SELECT count() FROM system.tables WHERE name = 'buyers'",
    "other database listed": "SELECT count() FROM system.databases WHERE name = 'other'",
}


@pytest.mark.parametrize("name", list(MINE))
def test_other_clusters_rows_never_come_back(owner: tuple[Store, int, Path], member,  # type: ignore[no-untyped-def]
                                             name: str) -> None:
    sql = MINE[name].format(c=CLUSTER, o=OTHER)
    assert member.query(sql).result_rows == [(0,)], name


def test_everything_of_the_cluster_comes_back_however_asked(owner: tuple[Store, int, Path],
                                                            member) -> None:  # type: ignore[no-untyped-def]
    mine = scans_of(owner[0], CLUSTER)
    for sql in ("SELECT count() FROM scans FINAL",
                "SELECT count() FROM (SELECT * FROM scans FINAL UNION ALL"
                " SELECT * FROM scans FINAL WHERE 0)",
                "WITH x AS (SELECT * FROM scans FINAL) SELECT count() FROM x",
                f"SELECT count() FROM scans FINAL WHERE cluster_id = '{OTHER}' OR 1",
                f"SELECT count() FROM (SELECT event_id FROM scans FINAL WHERE cluster_id ="
                f" '{CLUSTER}' UNION ALL SELECT event_id FROM scans FINAL WHERE cluster_id ="
                f" '{OTHER}')",
                "SELECT count() FROM scans FINAL WHERE cluster_id = {c:String}",
                "SELECT countIf(n = 1) FROM scans FINAL ARRAY JOIN [1, 2] AS n"):
        got = member.query(sql, parameters={"c": CLUSTER}).result_rows
        assert got == [(mine,)], sql


REFUSED = {
    # tables a delegation may not read at all
    "buyers": ("SELECT count() FROM buyers", ACCESS_DENIED),
    "registrations": ("SELECT count() FROM registrations", ACCESS_DENIED),
    "inquiries (contact hashes)": ("SELECT count() FROM inquiries", ACCESS_DENIED),
    "a _live view": ("SELECT count() FROM lead_scores_cluster_live", ACCESS_DENIED),
    "buyers in a subquery": ("SELECT count() FROM scans WHERE fair_id IN"
                             " (SELECT fair_id FROM buyers)", ACCESS_DENIED),
    "buyers in a scalar subquery": ("SELECT (SELECT count() FROM buyers)", ACCESS_DENIED),
    "buyers joined": ("SELECT count() FROM scans JOIN buyers USING (fair_id)", ACCESS_DENIED),
    "buyers array-joined": ("SELECT count() FROM buyers ARRAY JOIN [1, 2] AS n", ACCESS_DENIED),
    "describe buyers": ("DESCRIBE TABLE buyers", ACCESS_DENIED),
    "show create buyers": ("SHOW CREATE TABLE buyers", ACCESS_DENIED),
    "system.parts": ("SELECT sum(rows) FROM system.parts", ACCESS_DENIED),
    "system.processes": ("SELECT count() FROM system.processes", ACCESS_DENIED),
    "information_schema": ("SELECT count() FROM information_schema.tables", ACCESS_DENIED),
    "another database": ("SELECT count() FROM other.scans", ACCESS_DENIED),
    # table functions that read past the filters, or files and the network
    "merge()": ("SELECT count() FROM merge('leadloom', '^scans$')", READONLY),
    "merge() in a subquery": ("SELECT count() FROM scans WHERE event_id IN"
                              " (SELECT event_id FROM merge('leadloom', '^scans$'))", READONLY),
    "mergeTreeIndex()": ("SELECT * FROM mergeTreeIndex('leadloom', 'scans')", READONLY),
    "view()": ("SELECT count() FROM view(SELECT * FROM buyers)", READONLY),
    "file()": ("SELECT * FROM file('/etc/passwd', 'LineAsString')", READONLY),
    "scalar file()": ("SELECT file('/etc/passwd')", READONLY),
    "url()": ("SELECT * FROM url('http://127.0.0.1:1/x', 'LineAsString')", READONLY),
    "remote()": ("SELECT * FROM remote('127.0.0.1:1', system.one)", READONLY),
    "cluster()": ("SELECT * FROM cluster('default', system.one)", READONLY),
    # settings the session fixed
    "SETTINGS filters": ("SELECT count() FROM scans SETTINGS additional_table_filters ="
                         " {'leadloom.scans': '1'}", READONLY),
    "SETTINGS readonly=0": ("SELECT count() FROM scans SETTINGS readonly = 0", READONLY),
    "SETTINGS readonly=2": ("SELECT count() FROM scans SETTINGS readonly = 2", READONLY),
    # not a read
    "SET": ("SET readonly = 0", READONLY),
    "KILL QUERY": ("KILL QUERY WHERE 1", READONLY),
    "INSERT": ("INSERT INTO scans SELECT * FROM scans", READONLY),
    "CREATE": ("CREATE TABLE leadloom.x (a UInt8) ENGINE = Memory", READONLY),
    "ALTER": ("ALTER TABLE scans DELETE WHERE 1", READONLY),
    "DROP": ("DROP TABLE scans", READONLY),
    "EXPLAIN": ("EXPLAIN SELECT * FROM buyers", READONLY),
    "multi-statement": ("SELECT 1; SELECT count() FROM buyers", SYNTAX_ERROR),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_refused_with_the_engines_code(owner: tuple[Store, int, Path], name: str) -> None:
    sql, code = REFUSED[name]
    status, header, body = raw(owner, sql)
    assert header == str(code), (name, status, body)
    assert status in (400, 403, 404) and body.startswith(f"Code: {code}. DB::Exception: ")
    assert body.count("\n") == 1  # one line


def test_refused_through_clickhouse_connect_too(member) -> None:  # type: ignore[no-untyped-def]
    assert refused(member, "SELECT count() FROM buyers") == ACCESS_DENIED
    assert refused(member, "SELECT count() FROM merge('leadloom', '^scans$')") == READONLY


def test_into_outfile_writes_nothing(owner: tuple[Store, int, Path], tmp_path: Path) -> None:
    out = tmp_path / "leak.tsv"
    status, header, _ = raw(owner, f"SELECT * FROM scans INTO OUTFILE '{out}'")
    assert header == str(READONLY) and not out.exists()
    status, header, _ = raw(owner, f"SELECT * FROM scans INTO OUTFILE '{out}' FORMAT CSV")
    assert header == str(READONLY) and not out.exists()


def test_settings_as_url_parameters_are_refused(owner: tuple[Store, int, Path]) -> None:
    for params in ({"additional_table_filters": "{'leadloom.scans':'1'}"}, {"readonly": "0"},
                   {"readonly": "2"}, {"max_threads": "64"}):
        status, header, body = raw(owner, "SELECT count() FROM scans", params)
        assert (status, header) == (403, str(READONLY)), (params, body)
    # a client's own timeout (clickhouse-go sends it on every request) is taken, not applied
    status, _, body = raw(owner, "SELECT getSetting('max_execution_time')",
                          {"max_execution_time": "1000"})
    assert (status, body) == (200, "30\n")


def test_query_parameters_are_values_not_sql(owner: tuple[Store, int, Path], member) -> None:  # type: ignore[no-untyped-def]
    smuggled = f"{CLUSTER}' OR 1 OR cluster_id = '"
    got = member.query("SELECT count() FROM scans FINAL WHERE cluster_id = {c:String}",
                       parameters={"c": smuggled}).result_rows
    assert got == [(0,)]
    status, header, _ = raw(owner, "SELECT count() FROM {t:Identifier}", {"param_t": "buyers"})
    assert header == str(ACCESS_DENIED)
    status, header, _ = raw(owner, "SELECT count() FROM {t:Identifier}",
                            {"param_t": "merge('leadloom', '^scans$')"})
    assert status != 200
    status, _, body = raw(owner, "SELECT count() FROM scans WHERE cluster_id = {c:String}",
                          {"param_c": f"{OTHER}"})
    assert (status, body) == (200, "0\n")


def test_another_database_answers_the_cluster_only(owner: tuple[Store, int, Path]) -> None:
    # the filters of a session on another database are that database's
    status, _, body = raw(owner, "SELECT count(), groupUniqArray(cluster_id) FROM scans",
                          {"database": "other"})
    assert (status, body) == (200, f"1\t['{CLUSTER}']\n")
    for database in ("system", "information_schema"):
        status, header, _ = raw(owner, "SELECT count() FROM tables", {"database": database})
        assert header == str(ACCESS_DENIED)


def test_show_tables_lists_the_delegation_tables_only(member) -> None:  # type: ignore[no-untyped-def]
    listed = {r[0] for r in member.query("SHOW TABLES").result_rows}
    assert listed == set(DELEGATION_TABLES)

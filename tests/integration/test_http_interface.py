"""ClickHouse's HTTP interface of the store owner, on the real engine and the real server
thread: clickhouse-connect's ``http://`` client, raw requests as curl sends them (several
formats, Native parsed back, re-framed for protocol-aware clients), credentials, settings
as parameters, and ``leadloom sql`` through it."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import clickhouse_connect
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from core.owner import QueryServer, read_query
from core.reads import StoreError
from core.settings import Settings
from core.store import Store
from core.users import Users
from schemas.scope import ORGANIZER_SCOPE, delegation_scope
from tests.factories.rows import DayRows, fair_day_rows
from tests.factories.stores import open_store

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PASSWORDS = {"organizer": "org-pw", "delegation_keqiao": "kq-pw"}


@pytest.fixture(scope="module")
def day() -> DayRows:
    return fair_day_rows(events=1500)


@pytest.fixture(scope="module")
def owner(day: DayRows, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[Store, QueryServer]]:
    data = tmp_path_factory.mktemp("chhttp")
    settings = Settings(data_dir=data, namespace="chhttp", http_port=0)
    store = open_store(settings)
    for table, rows in day.rows.items():
        store.insert_json_rows(table, rows)
    store.refresh_snapshots()
    (Users().add("organizer", ORGANIZER_SCOPE, PASSWORDS["organizer"])
     .add("delegation_keqiao", delegation_scope("keqiao"), PASSWORDS["delegation_keqiao"])
     .save(data / "users.json"))
    server = QueryServer(store, settings)
    server.start()
    yield store, server
    server.stop()
    store.close()


def port_of(owner: tuple[Store, QueryServer]) -> int:
    assert owner[1].interface is not None
    return owner[1].interface.port


def client(owner: tuple[Store, QueryServer], user: str = "organizer",
           password: str | None = None):  # type: ignore[no-untyped-def]
    return clickhouse_connect.get_client(
        host="127.0.0.1", port=port_of(owner), username=user,
        password=PASSWORDS.get(user, "") if password is None else password,
        database="leadloom")


def raw(owner: tuple[Store, QueryServer], sql: str | None, params: dict[str, str] | None = None,
        user: str = "organizer", headers: dict[str, str] | None = None, method: str = "POST",
        auth: bool = True) -> tuple[int, dict[str, str], bytes]:
    """One request as curl sends it: (status, headers, body); errors are answers too."""
    url = f"http://127.0.0.1:{port_of(owner)}/?" + urlencode(params or {})
    sent = dict(headers or {})
    if auth:
        token = base64.b64encode(f"{user}:{PASSWORDS[user]}".encode()).decode()
        sent["Authorization"] = f"Basic {token}"
    request = urllib.request.Request(url, data=None if sql is None else sql.encode(),
                                     method=method, headers=sent)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def native_columns(data: bytes, revision: int = 0) -> dict[str, list]:
    """A minimal Native reader (UInt8/UInt64/String columns), as a client decodes blocks:
    with BlockInfo and the custom-serialization byte when it announced a revision."""
    pos = 0

    def varint() -> int:
        nonlocal pos
        shift = value = 0
        while True:
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7

    def string() -> bytes:
        nonlocal pos
        n = varint()
        pos += n
        return data[pos - n:pos]

    columns: dict[str, list] = {}
    while pos < len(data):
        if revision > 0:
            assert data[pos:pos + 8] == b"\x01\x00\x02\xff\xff\xff\xff\x00"  # BlockInfo
            pos += 8
        ncols, nrows = varint(), varint()
        for _ in range(ncols):
            name, kind = string().decode(), string().decode()
            if revision >= 54454:
                assert data[pos] == 0  # no custom serialization
                pos += 1
            values = columns.setdefault(name, [])
            for _ in range(nrows):
                if kind == "String":
                    values.append(string().decode())
                else:
                    width = {"UInt8": 1, "UInt64": 8}[kind]
                    values.append(int.from_bytes(data[pos:pos + width], "little"))
                    pos += width
    return columns


def test_ping_and_root_answer_ok_without_credentials(owner: tuple[Store, QueryServer]) -> None:
    for path in ("/ping", "/"):
        with urllib.request.urlopen(f"http://127.0.0.1:{port_of(owner)}{path}") as resp:
            assert resp.status == 200 and resp.read() == b"Ok.\n"


def test_clickhouse_connect_reads_as_from_a_server(owner: tuple[Store, QueryServer]) -> None:
    store = owner[0]
    cl = client(owner)
    direct = store.query("SELECT cluster_id, count() FROM leadloom.scans FINAL"
                         " GROUP BY cluster_id ORDER BY cluster_id").rows
    assert cl.server_version == store.query("SELECT version()").rows[0][0]
    # it found the blocks framed as a server frames them: every read below is re-framed
    assert cl.protocol_version == 54405
    got = cl.query("SELECT cluster_id, count() FROM scans FINAL GROUP BY cluster_id"
                   " ORDER BY cluster_id").result_rows
    assert [list(r) for r in got] == direct and len(direct) > 1
    bound = cl.query("SELECT count() FROM scans FINAL WHERE cluster_id = {c:String}",
                     parameters={"c": direct[0][0]}).result_rows
    assert bound == [(direct[0][1],)]
    frame = cl.query_df("SELECT cluster_id, event_id FROM scans FINAL")
    assert frame.shape == (sum(n for _, n in direct), 2)
    assert cl.command("SELECT count() FROM scans FINAL") == sum(n for _, n in direct)
    assert cl.ping()
    with pytest.raises(DatabaseError) as failed:
        cl.query("SELECT no_such_column FROM scans")
    assert failed.value.code == 47 and "UNKNOWN_IDENTIFIER" in str(failed.value)


def test_raw_requests_in_several_formats(owner: tuple[Store, QueryServer]) -> None:
    sql = "SELECT cluster_id, count() AS n FROM scans FINAL GROUP BY cluster_id ORDER BY cluster_id"
    direct = owner[0].query(sql.replace("FROM scans", "FROM leadloom.scans")).rows
    params = {"database": "leadloom", "query_id": "q-1"}

    status, headers, body = raw(owner, sql, params)  # no format: TabSeparated
    assert status == 200 and headers["X-ClickHouse-Format"] == "TabSeparated"
    assert [line.split("\t") for line in body.decode().splitlines()] == [
        [c, str(n)] for c, n in direct]
    assert headers["X-ClickHouse-Query-Id"] == "q-1"
    assert headers["X-ClickHouse-Timezone"] and headers["X-ClickHouse-Server-Display-Name"]
    assert int(json.loads(headers["X-ClickHouse-Summary"])["read_rows"]) > 0

    status, headers, body = raw(owner, sql + " FORMAT JSONEachRow", params)
    assert status == 200 and headers["X-ClickHouse-Format"] == "JSONEachRow"
    assert [json.loads(line) for line in body.decode().splitlines()] == [
        {"cluster_id": c, "n": n} for c, n in direct]

    status, headers, body = raw(owner, sql, {**params, "default_format": "CSVWithNames"})
    assert body.decode().splitlines() == ['"cluster_id","n"'] + [f'"{c}",{n}' for c, n in direct]

    sql = sql.replace("SELECT cluster_id", "SELECT CAST(cluster_id AS String) AS cluster_id")
    status, headers, body = raw(owner, sql + " FORMAT Native", params)
    assert status == 200 and native_columns(body) == {
        "cluster_id": [c for c, _ in direct], "n": [n for _, n in direct]}

    # a client announcing a protocol revision (clickhouse-go) gets server-framed blocks
    status, headers, body = raw(owner, sql, {**params, "default_format": "Native",
                                             "client_protocol_version": "54460"})
    assert status == 200 and native_columns(body, revision=54460) == {
        "cluster_id": [c for c, _ in direct], "n": [n for _, n in direct]}

    # GET with query=, the body appended after a newline; bound parameters as param_<name>
    status, _, body = raw(owner, None, {**params, "query": "SELECT {x:UInt8} + 1",
                                        "param_x": "41"}, method="GET")
    assert (status, body) == (200, b"42\n")
    status, _, body = raw(owner, "FROM scans FINAL", {**params, "query": "SELECT count()"})
    assert (status, body) == (200, f"{sum(n for _, n in direct)}\n".encode())


def test_credentials_every_way_and_refused_when_wrong(owner: tuple[Store, QueryServer]) -> None:
    headers = {"X-ClickHouse-User": "delegation_keqiao",
               "X-ClickHouse-Key": PASSWORDS["delegation_keqiao"]}
    status, _, body = raw(owner, "SELECT 1", headers=headers, auth=False)
    assert (status, body) == (200, b"1\n")
    status, _, body = raw(owner, "SELECT 1", {"user": "organizer", "password": "org-pw"},
                          auth=False)
    assert (status, body) == (200, b"1\n")
    for wrong in ({"X-ClickHouse-User": "organizer", "X-ClickHouse-Key": "nope"},
                  {"X-ClickHouse-User": "nobody", "X-ClickHouse-Key": "org-pw"}, {}):
        status, headers_back, body = raw(owner, "SELECT 1", headers=wrong, auth=False)
        assert status == 401 and headers_back["X-ClickHouse-Exception-Code"] == "516"
        assert body.decode().startswith("Code: 516. DB::Exception: ")
        assert body.decode().rstrip().endswith("(AUTHENTICATION_FAILED)")
    with pytest.raises(DatabaseError) as failed:
        client(owner, "organizer", password="wrong")
    assert failed.value.code == 516
    # the scope header is the owner's local key's: a configured user's own scope holds
    status, _, body = raw(owner, "SELECT count() FROM leadloom.buyers", user="delegation_keqiao",
                          headers={"X-LeadLoom-Scope": "organizer"})
    assert status == 403 and b"(ACCESS_DENIED)" in body
    key = json.loads((owner[0].settings.data_dir / "store.endpoint").read_text())["key"]
    local = {"user": "leadloom_local", "password": key}
    keqiao = owner[0].query("SELECT count() FROM leadloom.scans"
                            " WHERE cluster_id = 'keqiao'").rows[0][0]
    status, _, body = raw(owner, "SELECT count() FROM leadloom.scans", local, auth=False,
                          headers={"X-LeadLoom-Scope": "delegation:keqiao"})
    assert (status, body) == (200, f"{keqiao}\n".encode())
    # the owner's local user takes the owner's key only
    status, _, _ = raw(owner, "SELECT 1", {"user": "leadloom_local", "password": "guess"},
                       auth=False)
    assert status == 401


def test_settings_as_parameters_only_at_the_sessions_value(
        owner: tuple[Store, QueryServer]) -> None:
    assert raw(owner, "SELECT 1", {"readonly": "1"})[0] == 200  # what it already is
    status, headers, body = raw(owner, "SELECT 1", {"max_threads": "1"})
    assert status == 403 and headers["X-ClickHouse-Exception-Code"] == "164"
    assert b"Cannot modify 'max_threads' setting in readonly mode. (READONLY)" in body
    status, headers, _ = raw(owner, "SELECT 1", {"no_such_setting": "1"})
    assert headers["X-ClickHouse-Exception-Code"] == "115"
    assert raw(owner, "SELECT 1", {"database": "no_such_db"})[1][
        "X-ClickHouse-Exception-Code"] == "81"
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"http://127.0.0.1:{port_of(owner)}/nothing/here", timeout=10)
    assert missing.value.code == 404


def test_a_table_created_later_is_served_after_the_sessions_reopen(
        owner: tuple[Store, QueryServer]) -> None:
    store = owner[0]
    cl = client(owner)
    assert cl.query("SELECT count() FROM scans FINAL").result_rows  # sessions now open
    store.client.command("CREATE TABLE leadloom.later (cluster_id String, n UInt8)"
                         " ENGINE = MergeTree ORDER BY n")
    try:
        store.client.command("INSERT INTO leadloom.later VALUES ('keqiao', 1), ('humen', 2)")
        assert cl.query("SELECT count() FROM later").result_rows == [(2,)]
        member = client(owner, "delegation_keqiao")
        with pytest.raises(DatabaseError) as denied:  # no delegation table: never readable
            member.query("SELECT count() FROM later")
        assert denied.value.code == 497
    finally:
        store.client.command("DROP TABLE leadloom.later")


def test_read_query_and_leadloom_sql_go_through_the_interface(
        owner: tuple[Store, QueryServer]) -> None:
    store, server = owner
    settings = store.settings
    endpoint = settings.data_dir / "store.endpoint"
    assert endpoint.stat().st_mode & 0o777 == 0o600
    assert json.loads(endpoint.read_text())["port"] == port_of(owner)
    total = store.query("SELECT count() FROM leadloom.scans FINAL").rows[0][0]
    keqiao = store.query("SELECT count() FROM leadloom.scans FINAL"
                         " WHERE cluster_id = 'keqiao'").rows[0][0]
    assert 0 < keqiao < total
    sql = "SELECT count() FROM leadloom.scans FINAL"
    assert read_query(settings, sql).rows == [[total]]
    assert read_query(settings, sql, scope=delegation_scope("keqiao")).rows == [[keqiao]]

    # the owner's own reads (no scope) reach every database, as a demo's is read
    store.client.command("CREATE DATABASE IF NOT EXISTS demo_like")
    store.client.command("CREATE TABLE demo_like.t (n UInt8) ENGINE = MergeTree ORDER BY n")
    try:
        store.client.command("INSERT INTO demo_like.t VALUES (1), (2)")
        assert read_query(settings, "SELECT count() FROM demo_like.t").rows == [[2]]
        assert ["demo_like"] in read_query(settings, "SHOW DATABASES").rows
        with pytest.raises(StoreError, match="ACCESS_DENIED"):  # a scope keeps its database
            read_query(settings, "SELECT count() FROM demo_like.t", scope=ORGANIZER_SCOPE)
    finally:
        store.client.command("DROP DATABASE demo_like")

    env = {**os.environ, "LEADLOOM_DATA_DIR": str(settings.data_dir),
           "LEADLOOM_NAMESPACE": settings.namespace}
    cli = [sys.executable, "-m", "leadloom.cli", "sql", sql, "--json"]
    done = subprocess.run(cli, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1])["rows"] == [[total]]
    member = {**env, "LEADLOOM_PASSWORD": PASSWORDS["delegation_keqiao"]}
    done = subprocess.run([*cli, "--user", "delegation_keqiao"], cwd=REPO, env=member,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1])["rows"] == [[keqiao]]
    done = subprocess.run(cli[:-2] + ["SELECT count() FROM leadloom.buyers", "--user",
                                      "delegation_keqiao"],
                          cwd=REPO, env=member, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "ACCESS_DENIED" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


COLUMNS = {  # one column of each kind the re-framing measures, five rows
    "lc": "toLowCardinality(toString(number % 2))",
    "lcn": "toLowCardinality(if(number = 1, NULL, toString(number)))",
    "nul": "if(number = 2, NULL, number)",
    "arr": "arrayMap(x -> toString(x), range(number))",
    "map": "map(toString(number), number)",
    "tup": "tuple(number, toString(number))",
    "dec": "toDecimal64(number / 3, 4)",
    "dt64": "toDateTime64('2026-03-26 02:15:00', 3) + number",
    "fixed": "toFixedString(toString(number), 3)",
    "enum": "CAST(number % 2 AS Enum8('a' = 0, 'b' = 1))",
    "uuid": "toUUID(concat('00000000-0000-0000-0000-00000000000', toString(number)))",
    "str": "repeat('x', number)",
}


def test_native_reframing_copies_every_column_kind_whole(
        owner: tuple[Store, QueryServer]) -> None:
    # What a server sends a revision-54460 client (clickhouse-go) is chdb's block with a
    # BlockInfo prefix and a 0x00 after each column's type: built here from each column
    # read alone, so the check does not rest on the interface's own column sizes.
    def native(sql: str, revision: int = 0) -> bytes:
        params = {"default_format": "Native"}
        if revision:
            params["client_protocol_version"] = str(revision)
        status, _, body = raw(owner, sql, params)
        assert status == 200, body
        return body

    expected = bytearray(b"\x01\x00\x02\xff\xff\xff\xff\x00" + bytes([len(COLUMNS), 5]))
    for name, expr in COLUMNS.items():
        alone = native(f"SELECT {expr} AS {name} FROM numbers(5)")
        assert alone[:2] == bytes([1, 5])  # one column, five rows, one block
        header_end = 2 + 1 + len(name)
        header_end += 1 + alone[header_end]  # the type's name
        expected += alone[2:header_end] + b"\x00" + alone[header_end:]
    every = ", ".join(f"{expr} AS {name}" for name, expr in COLUMNS.items())
    assert native(f"SELECT {every} FROM numbers(5)", revision=54460) == bytes(expected)

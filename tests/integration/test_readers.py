"""A reader that may only read (readonly=1) connects to an existing store and reads it;
connecting and reading create no database (the migrations do). Real embedded engine.

Each test opens its own data path: the embedded engine serves one path per process at a
time, so these cannot share a process-wide store with other tests of one module.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from core import queries as q
from core.owner import read_query
from core.reads import READ_TIME_LIMIT_S, StoreError, open_reader, run_read
from core.settings import Settings
from core.store import connect
from tests.factories.rows import fair_day_rows
from tests.factories.stores import open_store

pytestmark = pytest.mark.integration

_READONLY = 164  # the engine's code for a write refused under readonly=1


def databases(settings: Settings) -> set[str]:
    client = connect(settings)
    try:
        return {r[0] for r in client.query("SELECT name FROM system.databases").result_rows}
    finally:
        client.close()


def test_connecting_and_reading_create_no_database(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, namespace="fresh",
                        clickhouse_database="never_created")
    assert "never_created" not in databases(settings)
    with pytest.raises(StoreError, match="never_created"):
        read_query(settings, "SELECT count() FROM never_created.scans")
    reader = open_reader(settings, READ_TIME_LIMIT_S)
    reader.close()
    assert "never_created" not in databases(settings)


def test_a_readonly_reader_connects_to_an_existing_store_and_may_only_read(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path, namespace="reader")
    day = fair_day_rows()
    owner = open_store(settings)
    owner.insert_json_rows("scans", day.rows["scans"])
    expected = len({r["event_id"] for r in day.decoded("scans")})
    db = owner.database
    owner.close()  # the store exists; no owner runs

    reader = open_reader(settings, READ_TIME_LIMIT_S)
    try:
        assert str(reader.query("SELECT getSetting('readonly')").result_rows[0][0]) == "1"
        scans = q.run(q.EVENTS_STORED, lambda sql: run_read(reader, sql, READ_TIME_LIMIT_S),
                      db)["scans"]
        assert scans == expected
        for write in (f"INSERT INTO {db}.scans (event_id) VALUES ('x')",
                      f"TRUNCATE TABLE {db}.scans", "CREATE DATABASE made_by_a_reader"):
            with pytest.raises(DatabaseError) as refused:
                reader.command(write)
            assert refused.value.code == _READONLY, write
    finally:
        reader.close()
    # And the way other processes read, with no owner running: it opens the store as is.
    assert q.run(q.EVENTS_STORED, lambda sql: read_query(settings, sql), db)["scans"] == scans
    assert "made_by_a_reader" not in databases(settings)

"""Every table's rows match its columns: what the row builders emit is what the table has.

Rows come from the project's own builders over a simulated fair day
(``tests.factories.rows``); columns from the registry, checked against the real engine's
tables. The store inserts with ``input_format_skip_unknown_fields`` off, so a key a table
lacks is refused by the engine (and dead-lettered by the sink), never silently dropped.
"""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from core.settings import Settings
from core.store import INSERT_SETTINGS, Store
from schemas.registry import (
    ALL_TABLES,
    CURRENCY_RATES,
    SCHEMA_MIGRATIONS,
    SEASON_BASELINE,
    TABLES_BY_NAME,
)
from streams.sink import ROW_REFUSALS, InsertFault, classify_insert_error
from tests.factories.rows import DayRows, fair_day_rows
from tests.factories.stores import open_store

pytestmark = pytest.mark.integration

# The tables the pipeline writes: every registry table but the views and the migrations
# record (written by core.migrations, not by a row builder).
# What the pipeline writes: not the migrations' record, not the operator's currency rates
# or previous season.
WRITTEN = tuple(t for t in ALL_TABLES
                if not t.is_view and t not in (SCHEMA_MIGRATIONS, CURRENCY_RATES,
                                               SEASON_BASELINE))
_INCORRECT_DATA = 117  # the engine's code for a JSON key without a column


@pytest.fixture(scope="module")
def day() -> DayRows:
    return fair_day_rows()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    store = open_store(Settings(data_dir=tmp_path_factory.mktemp("contract"),
                                namespace="contract"))
    yield store
    store.close()


def defaulted_columns(store: Store, table: str) -> set[str]:
    """Columns the engine fills itself (DEFAULT, MATERIALIZED, ...): no builder sends them."""
    rows = store.query(f"SELECT name FROM system.columns WHERE database = '{store.database}'"
                       f" AND table = '{table}' AND default_kind != ''").rows
    return {r[0] for r in rows}


def test_the_day_has_rows_for_every_table_the_pipeline_writes(day: DayRows) -> None:
    empty = [t.name for t in WRITTEN if not day.rows.get(t.name)]
    assert empty == [], f"the simulated day builds no rows for {empty}: pick another seed"
    assert set(day.rows) <= {t.name for t in WRITTEN}, "a builder writes a table not written"


@pytest.mark.parametrize("table", [t.name for t in WRITTEN])
def test_every_row_has_exactly_its_tables_columns(day: DayRows, store: Store,
                                                  table: str) -> None:
    spec = TABLES_BY_NAME[table]
    expected = set(spec.columns) - defaulted_columns(store, table) - set(spec.optional)
    assert expected, f"{table}: every column has a default?"
    wrong = {}
    for row in day.decoded(table):
        keys = set(row) - set(spec.optional)  # an optional column: only when it has a value
        if keys != expected:
            wrong[row.get("event_id") or row.get("buyer_id") or len(wrong)] = (
                sorted(keys - expected), sorted(expected - keys))
    sample = dict(list(wrong.items())[:3])
    assert not wrong, (f"{table}: {len(wrong)} rows whose keys differ from the columns"
                       f" (extra, missing), e.g. {sample}")


@pytest.mark.parametrize("table", [t.name for t in WRITTEN])
def test_every_row_is_stored_under_the_strict_insert(day: DayRows, store: Store,
                                                     table: str) -> None:
    assert INSERT_SETTINGS["input_format_skip_unknown_fields"] == 0
    rows = day.rows[table]
    store.insert_json_rows(table, rows)
    # Rows with one sorting key collapse into one (ReplacingMergeTree, already on insert):
    # one row per distinct key is stored, none is dropped.
    key = sorting_key(store, table)
    # an optional key column a row leaves out is stored as its default (a line: 0)
    optional = TABLES_BY_NAME[table].optional
    expected = len({tuple(str(row[k] if k in row or k not in optional else 0) for k in key)
                    for row in day.decoded(table)})
    stored = store.query(f"SELECT count() FROM {store.database}.{table} FINAL").rows[0][0]
    assert stored == expected, (table, key, stored, expected)


def sorting_key(store: Store, table: str) -> list[str]:
    text = store.query(f"SELECT sorting_key FROM system.tables WHERE database ="
                       f" '{store.database}' AND name = '{table}'").rows[0][0]
    key = [part.strip() for part in text.split(",")]
    assert set(key) <= set(TABLES_BY_NAME[table].columns), (table, key)
    return key


def test_a_key_its_table_lacks_is_refused_as_a_row_the_sink_dead_letters(
    day: DayRows, store: Store,
) -> None:
    for table in (t.name for t in WRITTEN):
        row = orjson.loads(day.rows[table][0])
        row["no_such_column"] = "x"
        with pytest.raises(DatabaseError) as refused:
            store.insert_json_rows(table, [orjson.dumps(row)])
        assert refused.value.code == _INCORRECT_DATA, (table, str(refused.value)[:200])
        assert "no_such_column" in str(refused.value)
        assert _INCORRECT_DATA in ROW_REFUSALS
        assert classify_insert_error(refused.value) is InsertFault.REFUSED_ROWS

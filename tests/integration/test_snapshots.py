"""Lead intelligence snapshots on the real embedded engine: a refresh stores exactly what
the live views compute, a change is seen only after the next refresh, a killed refresh
leaves no trace, and the signature tells a change from none."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import orjson
import pytest

from core.settings import Settings
from core.snapshots import NEXT_SUFFIX, SNAPSHOT_VIEWS, live_name, refresh
from core.store import Store
from schemas.registry import BUYER_EVENTS_TABLE, INTELLIGENCE_VIEWS, SCANS
from tests.factories.rows import DayRows, fair_day_rows
from tests.factories.stores import open_store


@pytest.fixture(scope="module")
def day() -> DayRows:
    return fair_day_rows(events=2000, seed=5, namespace="snapshots")


@pytest.fixture(scope="module")
def store(day: DayRows, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    store = open_store(Settings(data_dir=tmp_path_factory.mktemp("snapshots"),
                                namespace="snapshots"))
    for table, rows in day.rows.items():
        store.insert_json_rows(table, rows)
    yield store
    store.close()


def _rows(store: Store, name: str) -> Counter[tuple]:
    result = store.client.query(f"SELECT * FROM {store.database}.{name}")
    return Counter(tuple(str(v) for v in row) for row in result.result_rows)


def _late_scan(day: DayRows) -> tuple[bytes, bytes]:
    """One more scan of the day's first scanning buyer, a new event: changes the views."""
    scan = orjson.loads(day.rows[SCANS.name][0])
    event = next(orjson.loads(r) for r in day.rows[BUYER_EVENTS_TABLE.name]
                 if orjson.loads(r)["event_id"] == scan["event_id"])
    scan["event_id"] = event["event_id"] = "snapshot-test-late-scan"
    return orjson.dumps(scan), orjson.dumps(event)


def test_the_migration_keeps_every_view_name_as_a_table_beside_its_live_view(
        store: Store) -> None:
    engines = dict(store.client.query(
        f"SELECT name, engine FROM system.tables WHERE database = '{store.database}'"
    ).result_rows)
    for view in INTELLIGENCE_VIEWS:
        assert engines[view.name] == "MergeTree", view.name
        assert engines[live_name(view.name)] == "View", view.name
        assert engines[view.name + NEXT_SUFFIX] == "MergeTree", view.name
        columns = store.client.query(
            f"SELECT * FROM {store.database}.{view.name} LIMIT 0").column_names
        assert tuple(columns) == view.columns, view.name


def test_a_refresh_stores_what_the_live_views_compute_and_a_change_waits_for_the_next(
        store: Store, day: DayRows) -> None:
    before = store.snapshot_inputs_signature()
    took = store.refresh_snapshots()
    assert list(took) == list(SNAPSHOT_VIEWS)
    assert store.snapshot_inputs_signature() == before  # a refresh writes no input table
    for name in SNAPSHOT_VIEWS:
        live = _rows(store, live_name(name))
        assert live, name
        assert _rows(store, name) == live, name
        assert not _rows(store, name + NEXT_SUFFIX), name  # the twin is emptied

    scan, event = _late_scan(day)
    store.insert_json_rows(SCANS.name, [scan])
    store.insert_json_rows(BUYER_EVENTS_TABLE.name, [event])
    assert store.snapshot_inputs_signature() != before
    funnel = "funnel_by_cluster"
    assert _rows(store, funnel) != _rows(store, live_name(funnel))  # stale until refreshed
    store.refresh_snapshots()
    for name in SNAPSHOT_VIEWS:
        assert _rows(store, name) == _rows(store, live_name(name)), name


def test_a_refresh_killed_midway_leaves_a_whole_snapshot_and_the_next_one_is_exact(
        store: Store) -> None:
    store.refresh_snapshots()
    name = "momentum_ranking"
    good = _rows(store, name)
    # A refresh killed after filling the twin, before the exchange: the twin holds rows
    # (here, a wrong copy) that readers must never see and the next refresh must not keep.
    db = store.database
    store.client.command(f"INSERT INTO {db}.{name}{NEXT_SUFFIX} SELECT * FROM {db}.{name}")
    assert _rows(store, name) == good
    refresh(store.maintenance_client(), db, [name])
    assert _rows(store, name) == good == _rows(store, live_name(name))


def test_a_refresh_on_one_engine_thread_asks_the_engine_for_one_and_stores_the_same(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    # What the stream's owner does beside the stream (threads_beside_the_stream on two
    # CPUs): the engine is told, per view query, and the snapshots are the same.
    store.refresh_snapshots()
    everywhere = {name: _rows(store, name) for name in SNAPSHOT_VIEWS}
    client = store.maintenance_client()
    real_command = client.command
    asked: list[dict | None] = []

    def command(sql: str, *args: object, settings: dict | None = None, **kw: object) -> object:
        if sql.startswith("INSERT INTO"):
            asked.append(settings)
        return real_command(sql, *args, settings=settings, **kw)

    monkeypatch.setattr(client, "command", command)
    store.refresh_snapshots(max_threads=1)
    assert asked == [{"max_threads": 1}] * len(SNAPSHOT_VIEWS)
    for name in SNAPSHOT_VIEWS:
        assert _rows(store, name) == everywhere[name] == _rows(store, live_name(name)), name


def test_refresh_refuses_a_name_that_is_not_a_snapshot(store: Store) -> None:
    with pytest.raises(ValueError, match="not a snapshot view: scans"):
        refresh(store.maintenance_client(), store.database, ["scans"])

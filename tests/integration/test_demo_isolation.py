"""A demo-like session on the real broker and engine writes only into a database of its own.

The configured database (with rows of a real fair) is left exactly as it was, and the only
databases the session drops, and the only topics it deletes, are earlier runs' of its kind.
"""

from __future__ import annotations

import re

import orjson
import pytest
from kafka.admin import NewTopic

from core import queries as q
from core.kafka import admin
from core.settings import Settings
from core.store import Store
from leadloom.commands.session import pipeline_session, run_database
from leadloom.commands.simulate import simulate_and_publish
from schemas.registry import ALL_TABLES
from streams.rows import SourceRef, event_row
from streams.validate import Accepted, validate
from tests.factories import events as f
from tests.factories.stores import open_store

pytestmark = pytest.mark.integration


def _configured_rows(store: Store) -> dict[str, list[tuple]]:
    db = store.database
    return {t.name: sorted(tuple(map(str, r)) for r in store.client.query(
        f"SELECT * FROM {db}.{t.name}").result_rows) for t in ALL_TABLES}


def _fill_configured(store: Store) -> None:
    rows = []
    for n in range(30):
        outcome = validate(f.encode(f.scan(badge_id=f"B-{n}")), "booth_scan", 65536)
        assert isinstance(outcome, Accepted)
        rows.append(orjson.dumps(event_row(outcome.event, outcome.enrichment,
                                           SourceRef("configured.raw.scans", 0, n))))
    store.insert_json_rows("scans", rows)


def test_a_demo_session_stores_only_into_its_own_database(pipeline_settings: Settings) -> None:
    settings = pipeline_settings
    earlier = run_database(f"{settings.namespace}-demo-20000101000000")
    later = run_database(f"{settings.namespace}-demo-29991231235959")  # not this run's to drop
    lookalikes = [run_database(f"{settings.namespace}-demo-notes"),
                  run_database(f"{settings.namespace}-bench-20000101000000"), "unrelated"]
    store = open_store(settings)
    try:
        _fill_configured(store)
        for name in (earlier, later, *lookalikes):
            store.client.command(f"CREATE DATABASE IF NOT EXISTS {name}")
        before = _configured_rows(store)
    finally:
        store.close()
    assert len(before["scans"]) == 30
    earlier_topics = {f"{settings.namespace}-demo-20000101000000.raw.scans",
                      f"{settings.namespace}-demo-20000101000000-streams-leads-changelog"}
    other_topics = {f"{settings.namespace}-demo-notes.raw.scans",
                    f"{settings.namespace}-bench-20000101000000.raw.scans",
                    f"{settings.namespace}-demo-29991231235959x.raw.scans",
                    f"{settings.namespace}-demo-29991231235959.raw.scans"}  # a later run's
    client = admin(settings)
    try:
        client.create_topics([NewTopic(t, 1, 1) for t in earlier_topics | other_topics])
    finally:
        client.close()

    progress: list[str] = []
    with pipeline_session(settings, "demo", 1, progress.append) as pipe:
        run_db = pipe.settings.clickhouse_database
        assert re.fullmatch(rf"{run_database(settings.namespace)}_demo_\d{{14}}", run_db)
        assert run_db == run_database(pipe.settings.namespace)
        sim = simulate_and_publish(pipe.settings, 300, seed=11)
        assert pipe.wait_idle(300)
        assert pipe.store is not None
        stored = sum(q.run(q.EVENTS_STORED, pipe.store.query, run_db).values())
        assert stored == sim["expected_valid_events"]
    assert any(run_db in line for line in progress)  # the user is told where to look
    client = admin(settings)
    try:
        topics = set(client.list_topics())
    finally:
        client.close()
    assert not earlier_topics & topics
    assert other_topics <= topics
    assert any(t.startswith(f"{pipe.settings.namespace}.") for t in topics)  # its own stay

    store = Store(settings, migrations=())
    try:
        assert _configured_rows(store) == before  # not one row added, changed or removed
        names = {r[0] for r in store.client.query("SELECT name FROM system.databases")
                 .result_rows}
        assert earlier not in names
        assert {later, *lookalikes, settings.clickhouse_database, run_db} <= names
        # the run's database stays for `leadloom sql`
        kept = sum(q.run(q.EVENTS_STORED, store.query, run_db).values())
        assert kept == sim["expected_valid_events"]
    finally:
        store.close()

"""``delegation_buyers`` on the real engine over a simulated day: per cluster, exactly the
resolved buyers (merges applied) with a scan or an inquiry there, their counts and first and
last activity, their masked profile, and no hash, badge or raw contact column."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from core.settings import Settings
from core.snapshots import SNAPSHOT_VIEWS, live_name
from core.store import Store
from schemas.registry import DELEGATION_BUYERS, INQUIRIES, REGISTRATIONS, SCANS
from schemas.scope import DELEGATION_TABLES, delegation_scope, filters_literal
from tests.factories.rows import DayRows, fair_day_rows
from tests.factories.stores import open_store

pytestmark = pytest.mark.integration

Key = tuple[str, str, str]  # (fair, cluster, buyer)


@pytest.fixture(scope="module")
def day() -> DayRows:
    return fair_day_rows()


@pytest.fixture(scope="module")
def store(day: DayRows, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    store = open_store(Settings(data_dir=tmp_path_factory.mktemp("dbuyers"),
                                namespace="dbuyers"))
    for _ in range(2):  # a redelivery: counts must not see the second copy
        for table, rows in day.rows.items():
            store.insert_json_rows(table, rows)
    store.refresh_snapshots()
    yield store
    store.close()


def _utc(value: object) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _resolved(day: DayRows) -> tuple[dict[str, str], int]:
    """event id -> its buyer now (its record's newest alias row, else its buyer at
    resolution), and how many events a merge moved to another buyer."""
    newest: dict[str, tuple[int, str]] = {}
    for row in day.decoded("buyer_aliases"):
        if row["alias"] not in newest or row["version"] >= newest[row["alias"]][0]:
            newest[row["alias"]] = (row["version"], row["buyer_id"])
    buyer_of, moved = {}, 0
    for event in day.decoded("buyer_events"):
        now = newest.get(event["alias"], (0, event["buyer_id"]))[1]
        buyer_of[event["event_id"]] = now
        moved += now != event["buyer_id"]
    return buyer_of, moved


def _expected(day: DayRows) -> dict[Key, dict[str, object]]:
    buyer_of, _ = _resolved(day)
    out: dict[Key, dict[str, object]] = defaultdict(
        lambda: {"scans": 0, "inquiries": 0, "times": []})
    for table, counter in ((SCANS.name, "scans"), (INQUIRIES.name, "inquiries")):
        seen = set()
        for row in day.decoded(table):
            if not row["cluster_id"] or row["event_id"] in seen:
                continue
            seen.add(row["event_id"])
            if row["event_id"] not in buyer_of:
                continue  # no identity record stored: not a resolved buyer
            entry = out[(row["fair_id"], row["cluster_id"], buyer_of[row["event_id"]])]
            entry[counter] += 1  # type: ignore[operator]
            entry["times"].append(_utc(row["occurred_at"]))  # type: ignore[attr-defined]
    return dict(out)


def _stored(store: Store, table: str, sql_filter: str = "") -> dict[Key, dict[str, object]]:
    result = store.client.query(
        f"SELECT * FROM {store.database}.{table} {sql_filter}")
    return {(r["fair_id"], r["cluster_id"], r["buyer_id"]): r for r in
            (dict(zip(result.column_names, row, strict=True)) for row in result.result_rows)}


def test_rows_are_the_resolved_buyers_of_each_cluster(store: Store, day: DayRows) -> None:
    _, moved = _resolved(day)
    assert moved > 0  # the day has merges: resolving matters
    expected = _expected(day)
    stored = _stored(store, DELEGATION_BUYERS.name)
    assert set(stored) == set(expected)
    assert len({k[1] for k in stored}) > 1
    for key, want in expected.items():
        got = stored[key]
        assert (got["scans"], got["inquiries"]) == (want["scans"], want["inquiries"]), key
        times = want["times"]
        assert isinstance(times, list)
        assert _utc(got["first_activity"]) == min(times), key
        assert _utc(got["last_activity"]) == max(times), key


def test_profile_is_masked_and_only_with_consent(store: Store, day: DayRows) -> None:
    assert DELEGATION_BUYERS.columns == tuple(store.client.query(
        f"SELECT * FROM {store.database}.{DELEGATION_BUYERS.name} LIMIT 0").column_names)
    raw_contact = {"email_hash", "phone_hash", "wechat_hash", "email_hashes", "phone_hashes",
                   "wechat_hashes", "badges", "badge_id", "alias", "province"}
    assert not raw_contact & set(DELEGATION_BUYERS.columns)
    assert not [c for c in DELEGATION_BUYERS.columns if "hash" in c]
    newest: dict[tuple[str, str], dict] = {}
    for row in day.decoded("buyers"):
        key = (row["fair_id"], row["buyer_id"])
        if key not in newest or row["version"] >= newest[key]["version"]:
            newest[key] = row
    buyer_of, _ = _resolved(day)
    buyer_type: dict[tuple[str, str], tuple[datetime, str]] = {}
    for row in day.decoded(REGISTRATIONS.name):
        key = (row["fair_id"], buyer_of.get(row["event_id"], ""))
        at = _utc(row["occurred_at"])
        if key[1] and (key not in buyer_type or at >= buyer_type[key][0]):
            buyer_type[key] = (at, row["buyer_type"])
    consented = 0
    for (fair, _cluster, buyer), got in _stored(store, DELEGATION_BUYERS.name).items():
        profile = newest[(fair, buyer)]
        consented += bool(profile["consent"])
        for field in ("name_masked", "company", "city"):
            assert got[field] == (profile[field] if profile["consent"] else ""), field
        assert got["country"] == profile["country"]
        assert got["buyer_type"] == buyer_type.get((fair, buyer), (None, ""))[1]
    assert consented > 0
    names = [r[0] for r in store.client.query(
        f"SELECT name_masked FROM {store.database}.{DELEGATION_BUYERS.name}"
        " WHERE name_masked != ''").result_rows]
    # masked: the first character of each word, the rest stars
    assert names and all(set(w[1:]) <= {"*"} for n in names for w in n.split())


def test_a_snapshot_refreshed_with_the_others_and_read_by_a_delegation(
        store: Store) -> None:
    assert DELEGATION_BUYERS.name in SNAPSHOT_VIEWS and DELEGATION_BUYERS.name in \
        DELEGATION_TABLES
    assert _stored(store, DELEGATION_BUYERS.name) == _stored(
        store, live_name(DELEGATION_BUYERS.name))
    everything = _stored(store, DELEGATION_BUYERS.name)
    cluster = sorted({k[1] for k in everything})[0]
    scope = delegation_scope(cluster)
    tables = [(r[0], r[1]) for r in store.client.query(
        "SELECT database, name FROM system.tables").result_rows]
    filters = filters_literal(scope.table_filters(store.database, tables))
    seen = _stored(store, DELEGATION_BUYERS.name,
                   f"SETTINGS additional_table_filters = {filters}")
    assert seen == {k: v for k, v in everything.items() if k[1] == cluster}

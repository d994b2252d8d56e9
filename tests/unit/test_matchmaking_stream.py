"""The matchmaking stream's state machine: profiles build the fair's index, each inquiry is
matched once and keeps its result, state survives a new worker (rebuilt from the table)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson

from streams.matchmaking import Matchmaker, MatchOutput, result_key, version_key

FAIR = "CIFW-2026-AW"
T0 = datetime(2026, 3, 26, 0, 30, tzinfo=UTC)


def profile(exhibitor: str, minutes: int = 0, capacity: int = 1_500, **extra: object) -> bytes:
    payload: dict[str, object] = {
        "exhibitor_id": exhibitor, "cluster_id": "foshan", "categories": ["childrenswear"],
        "crafts": [], "monthly_capacity": capacity, "moq": 100, "lead_time_days": 20,
        "certifications": [],
    }
    payload.update(extra)
    at = (T0 + timedelta(minutes=minutes)).isoformat(timespec="milliseconds")
    return orjson.dumps({"kind": "profile", "event_id": f"p-{exhibitor}-{minutes}",
                         "fair_id": FAIR, "occurred_at": at, "payload": payload})


def inquiry(event_id: str, minutes: int = 60, quantity: int = 1000) -> bytes:
    at = (T0 + timedelta(minutes=minutes)).isoformat(timespec="milliseconds")
    payload = {"cluster_id": "foshan", "categories": ["childrenswear"], "quantity": quantity,
               "lead_time_days": 30, "channel": "web", "currency": "CNY", "language": "zh",
               "consent": False}
    return orjson.dumps({"kind": "inquiry", "event_id": event_id, "fair_id": FAIR,
                         "occurred_at": at, "payload": payload})


class Table(dict):
    """The Faust table as the agent uses it: get, items, and writes applied in order."""

    def apply(self, out: MatchOutput) -> MatchOutput:
        for key, value in out.writes:
            self[key] = value
        return out


def run(matchmaker: Matchmaker, table: Table, *lines: bytes) -> MatchOutput:
    return table.apply(matchmaker.apply_block(b"\n".join(lines), table.get, table.items))


def rows(out: MatchOutput) -> list[dict]:
    return [orjson.loads(r) for r in out.rows]


def test_an_inquiry_gets_the_top_three_with_reasons() -> None:
    table = Table()
    out = run(Matchmaker(), table, *(profile(f"E{i}", capacity=1000 + 500 * i) for i in range(5)),
              inquiry("q1"))
    got = rows(out)
    assert [r["rank"] for r in got] == [1, 2, 3]
    assert [r["exhibitor_id"] for r in got] == ["E4", "E3", "E2"]  # most headroom first
    assert all(r["inquiry_event_id"] == "q1" and r["fair_id"] == FAIR for r in got)
    assert got[0]["matched_at"] == (T0 + timedelta(hours=1)).isoformat(timespec="milliseconds")
    reasons = orjson.loads(got[0]["explanation"])
    assert reasons["matched_categories"] == ["childrenswear"] and reasons["cluster_id"] == "foshan"
    assert got[0]["profile_event_id"] == "p-E4-0"
    assert out.matched == 1 and table[version_key(FAIR)] == 5


def test_a_reread_inquiry_resends_its_first_result() -> None:
    """A restart re-reads an inquiry after profiles that came later in the log: the rows
    must be those of the uninterrupted run, not a new match."""
    table, matchmaker = Table(), Matchmaker()
    first = rows(run(matchmaker, table, profile("E1"), profile("E2"), inquiry("q1")))
    run(matchmaker, table, profile("E9", capacity=900_000))  # a better supplier, later
    again = run(matchmaker, table, inquiry("q1"))
    assert rows(again) == first and again.matched == 0
    fresh = rows(run(matchmaker, table, inquiry("q2")))
    assert fresh[0]["exhibitor_id"] == "E9"  # a new inquiry sees the new supplier


def test_the_newest_profile_by_event_time_wins_whatever_the_order() -> None:
    table = Table()
    out = run(Matchmaker(), table, profile("E1", minutes=10, moq=5000), profile("E1", minutes=0),
              inquiry("q1"))
    assert rows(out) == []  # the 10-minute profile (MOQ 5000 > 1000) holds, not the older one
    assert table[version_key(FAIR)] == 1


def test_a_new_worker_rebuilds_the_index_from_the_table() -> None:
    table = Table()
    run(Matchmaker(), table, profile("E1"), profile("E2", capacity=50_000))
    out = run(Matchmaker(), table, inquiry("q1"))  # a fresh worker: empty cache
    assert [r["exhibitor_id"] for r in rows(out)] == ["E2", "E1"]


def test_a_stale_cache_is_rebuilt() -> None:
    """Another worker applied profiles (a rebalance): the version tells the cache is stale."""
    table, mine = Table(), Matchmaker()
    run(mine, table, profile("E1"), inquiry("q0"))
    run(Matchmaker(), table, profile("E2", capacity=50_000))  # written by another worker
    out = run(mine, table, inquiry("q1"))
    assert rows(out)[0]["exhibitor_id"] == "E2"


def test_profiles_and_inquiries_in_one_block_see_each_other() -> None:
    table, matchmaker = Table(), Matchmaker()
    run(matchmaker, table, profile("E1"), inquiry("q0"))
    out = run(matchmaker, table, profile("E2", capacity=50_000), inquiry("q1"))
    assert rows(out)[0]["exhibitor_id"] == "E2"
    assert table[result_key(FAIR, "q1")] == rows(out)


def test_a_bad_line_fails_alone() -> None:
    out = run(Matchmaker(), Table(), profile("E1"), b"{not json", inquiry("q1"))
    assert len(out.failed) == 1 and out.failed[0][0] == b"{not json"
    assert [r["exhibitor_id"] for r in rows(out)] == ["E1"]

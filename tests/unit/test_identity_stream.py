"""The stream's identity engine: outputs per event, the log, recovery and re-sent outputs;
the order in which the agent may apply a partition's messages."""

from __future__ import annotations

import orjson
import pytest

from schemas.deadletter import Reason
from schemas.identity import IdentityRecord
from streams.identity.ordering import Action, Decision, decide, needs_log_start
from streams.identity.stream import FairIdentity, IdentityStreams, Outputs, log_key

FAIR = "CIFW-2026-AW"


def ident_doc(event_id: str, event_type: str = "booth_scan", badge: str = "", contact=None,
              at: str = "2026-03-26T02:15:30.000+00:00", cluster: str = "keqiao",
              consent: bool = True) -> dict:
    return {"event_id": event_id, "event_type": event_type, "fair_id": FAIR,
            "occurred_at": at, "cluster_id": cluster, "exhibitor_id": "", "booth_id": "",
            "badge_id": badge, "consent": consent, "contact": contact}


def ident(event_id: str, event_type: str = "booth_scan", badge: str = "", contact=None,
          consent: bool = True) -> IdentityRecord:
    return IdentityRecord.model_validate(
        ident_doc(event_id, event_type, badge, contact, consent=consent))


def rows(blocks: list[bytes]) -> list[dict]:
    return [orjson.loads(b) for b in blocks]


def test_a_scan_before_its_registration_becomes_that_buyer() -> None:
    engine, out = FairIdentity(FAIR), Outputs()
    engine.apply(ident("s1", badge="B1"), out)
    engine.apply(ident("r1", "buyer_registration", badge="B1",
                       contact={"full_name": "陈静", "email": "chen.jing@example.com"}), out)
    engine.apply(ident("s2", badge="B1"), out)
    events = rows(out.events)
    assert [e["alias"] for e in events] == ["badge:B1", "r1", "badge:B1"]
    assert {e["buyer_id"] for e in events} == {"buyer:badge:B1"}
    assert [key for key, _ in out.logged] == [log_key(FAIR, 0), log_key(FAIR, 1)]
    profile = rows(out.buyers)[-1]
    assert profile["badges"] == ["B1"] and profile["records"] == 2
    assert profile["name_masked"] == "陈*" and len(profile["email_hashes"]) == 1
    assert "chen" not in orjson.dumps(rows(out.buyers)).decode()


def test_a_linking_inquiry_merges_two_buyers_and_moves_every_alias() -> None:
    engine, out = FairIdentity(FAIR), Outputs()
    engine.apply(ident("rx", "buyer_registration", badge="BX",
                       contact={"full_name": "陈静", "email": "chen.jing@example.com"}), out)
    engine.apply(ident("ry", "buyer_registration", badge="BY",
                       contact={"full_name": "Chen Jing", "phone": "13912345678"}), out)
    engine.apply(ident("sy", badge="BY"), out)
    assert engine.buyer_of("rx") != engine.buyer_of("ry")
    out = Outputs()
    linking = {"full_name": "陈静", "email": "Chen.Jing@example.com",
               "phone": "+86 139 1234 5678"}
    engine.apply(ident("q1", "online_inquiry", contact=linking), out)
    merge, = rows(out.merges)
    assert (merge["survivor"], merge["absorbed"], merge["record_id"]) == (
        "buyer:rx", "buyer:ry", "q1")
    assert {a["alias"]: a["buyer_id"] for a in rows(out.aliases)} == {
        "rx": "buyer:rx", "ry": "buyer:rx", "q1": "buyer:rx"}
    absorbed = [b for b in rows(out.buyers) if b["merged_into"]]
    assert [(b["buyer_id"], b["merged_into"]) for b in absorbed] == [("buyer:ry", "buyer:rx")]
    survivor = next(b for b in rows(out.buyers) if not b["merged_into"])
    assert survivor["badges"] == ["BX", "BY"] and survivor["records"] == 3


def test_personal_data_stays_out_of_profiles_without_consent() -> None:
    engine, out = FairIdentity(FAIR), Outputs()
    record = ident("r1", "buyer_registration", badge="B1",
                   contact={"full_name": "Li Na", "email": "li.na@example.com"}, consent=False)
    engine.apply(record, out)
    profile, = rows(out.buyers)
    assert (profile["consent"], profile["name_masked"], profile["email_hashes"]) == (
        False, "", [])


def _day() -> list[IdentityRecord]:
    contacts = [
        ("r1", "B1", {"full_name": "陈静", "email": "chen.jing@example.com"}),
        ("r2", "B2", {"full_name": "Chen Jing", "phone": "13912345678"}),
        ("r3", "B3", {"full_name": "王伟", "wechat": "wangwei88"}),
    ]
    day = [ident("s0", badge="B2")]
    day += [ident(i, "buyer_registration", badge=b, contact=c) for i, b, c in contacts]
    day += [ident("s1", badge="B3"), ident("q1", "online_inquiry", contact={
        "full_name": "陈静", "email": "chen.jing@example.com", "phone": "13912345678"})]
    return day


def test_replaying_the_log_rebuilds_the_same_buyers_and_resends_lost_outputs() -> None:
    day = _day()
    first, log = FairIdentity(FAIR), {}
    out = Outputs()
    for record in day:
        first.apply(record, out)
    log.update(out.logged)
    # another worker takes over: it rebuilds from the log, then the uncommitted tail
    # (the last two events) is delivered again
    second = FairIdentity(FAIR)
    assert second.catch_up(log.get) == len(first.log)
    assert second.resolver.merges == first.resolver.merges
    again = Outputs()
    for record in day[-2:]:
        second.apply(record, again)
    assert not again.logged, "known records are not applied twice"
    assert rows(again.merges) and {m["record_id"] for m in rows(again.merges)} == {"q1"}
    assert {a["alias"] for a in rows(again.aliases)} >= {"r1", "r2", "q1", "badge:B2"}
    assert {e["buyer_id"] for e in rows(again.events)} == {
        first.buyer_of("r3"), first.buyer_of("q1")}
    # delivered a third time: nothing is lost any more, so only the event rows go out
    third = Outputs()
    for record in day[-2:]:
        second.apply(record, third)
    assert (len(third.events), third.aliases, third.merges) == (2, [], [])


def test_a_resolver_ahead_of_the_log_starts_again_from_the_log() -> None:
    day = _day()
    engine, log = FairIdentity(FAIR), {}
    out = Outputs()
    for record in day[:3]:
        engine.apply(record, out)
    log.update(out.logged[:2])  # the third record never became durable
    engine.catch_up(log.get)
    assert len(engine.log) == 2
    assert [r["id"] for r in engine.log] == [r["id"] for _, r in out.logged[:2]]


def block_of(records: list[IdentityRecord], fair: str = FAIR) -> bytes:
    return b"\n".join(orjson.dumps({**r.model_dump(mode="json"), "fair_id": fair})
                      for r in records)


def test_a_message_is_one_log_entry_per_fair_and_the_next_follows_on() -> None:
    day, other = _day(), "CIFW-2026-SS"
    streams, log = IdentityStreams(), {}
    out = Outputs()
    streams.resolve_block(block_of(day[:2]) + b"\n" + block_of(day[:2], other), log.get, out)
    assert [key for key, _ in out.logged] == [log_key(FAIR, 0), log_key(other, 0)]
    run, other_run = (entry for _, entry in out.logged)
    assert [r["id"] for r in run] == [r["id"] for r in other_run] == ["badge:B2", "r1"]
    log.update(out.logged)
    out = Outputs()
    streams.resolve_block(block_of(day[2:3]), log.get, out)  # a run of one: the record
    (key, entry), = out.logged
    assert key == log_key(FAIR, 2) and entry["id"] == "r2"
    log.update(out.logged)
    out = Outputs()
    streams.resolve_block(block_of(day[3:]), log.get, out)  # r3, s1 (r3's badge), q1
    (key, entry), = out.logged
    assert key == log_key(FAIR, 3) and [r["id"] for r in entry] == ["r3", "q1"]
    log.update(out.logged)
    # another worker rebuilds the fair from the entries, runs and runs of one alike
    again = IdentityStreams()
    again.resolve_block(block_of(day[-1:]), log.get, Outputs())
    assert again.fairs[FAIR].log == streams.fairs[FAIR].log
    assert again.fairs[FAIR].resolver.merges == streams.fairs[FAIR].resolver.merges
    assert again.fairs[FAIR].last_entry == 3


def test_records_logged_one_an_entry_replay_as_runs_do() -> None:
    day = _day()
    engine, out = FairIdentity(FAIR), Outputs()
    for record in day:
        engine.apply(record, out)
    per_record = dict(out.logged)
    assert all(isinstance(entry, dict) for entry in per_record.values())
    rebuilt = FairIdentity(FAIR)
    assert rebuilt.catch_up(per_record.get) == len(engine.log)
    assert rebuilt.log == engine.log and rebuilt.last_entry == len(engine.log) - 1


def test_a_resolver_whose_last_run_differs_from_the_logs_starts_again_from_the_log() -> None:
    day = _day()
    streams, log = IdentityStreams(), {}
    out = Outputs()
    streams.resolve_block(block_of(day[:2]), log.get, out)
    log.update(out.logged)
    out = Outputs()
    streams.resolve_block(block_of(day[2:4]), log.get, out)
    engine = streams.fairs[FAIR]
    # meanwhile another worker logged a longer run at the same position
    log.update(out.logged)
    stranger = {**log[log_key(FAIR, 0)][0], "id": "badge:B9", "badge_id": "B9"}
    log[log_key(FAIR, 2)] = [*log[log_key(FAIR, 2)], stranger]
    assert engine.catch_up(log.get) == 5  # from empty: the log's five records
    assert [r["id"] for r in engine.log] == [
        r["id"] for r in [*log[log_key(FAIR, 0)], *log[log_key(FAIR, 2)]]]


def test_a_bad_line_is_rejected_with_its_reason_and_the_rest_of_the_block_resolved() -> None:
    streams, out = IdentityStreams(), Outputs()
    unknown_field = orjson.dumps({**ident_doc("s3", badge="B3"), "extra": 1})
    nobody = orjson.dumps(ident_doc("s4"))  # neither contact nor badge
    block = b"\n".join([orjson.dumps(ident_doc("s1", badge="B1")), b"{not json",
                        orjson.dumps({"fair_id": FAIR}), b"\xff\xfe", unknown_field, nobody,
                        orjson.dumps(ident_doc("s2", badge="B2"))])
    streams.resolve_block(block, {}.get, out)
    assert len(out.events) == 2
    assert [(reason, line) for reason, line, _ in out.rejected] == [
        (Reason.IDENTITY_BAD_JSON, b"{not json"),
        (Reason.IDENTITY_INVALID, b'{"fair_id":"CIFW-2026-AW"}'),
        (Reason.IDENTITY_BAD_JSON, b"\xff\xfe"),
        (Reason.IDENTITY_INVALID, unknown_field),
        (Reason.IDENTITY_INVALID, nobody),
    ]
    assert "extra" in out.rejected[3][2] and "badge_id" in out.rejected[4][2]
    assert not out.failed


def test_an_engine_fault_fails_one_record_and_rebuilds_the_fair_from_its_log(
        monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from streams.identity.resolver import Resolver

    real_add = Resolver.add

    def add(self, record):  # type: ignore[no-untyped-def]
        result = real_add(self, record)  # half-applied: the resolver changed, then failed
        if record.get("badge_id") == "POISON":
            raise RecursionError("an engine fault")
        return result

    monkeypatch.setattr(Resolver, "add", add)
    streams, out = IdentityStreams(), Outputs()
    lines = [orjson.dumps(ident_doc(f"s{n}", badge=f"B{n}")) for n in range(3)]
    lines.insert(1, orjson.dumps(ident_doc("bad", badge="POISON")))
    streams.resolve_block(b"\n".join(lines), {}.get, out)
    assert [line for line, _ in out.failed] == [lines[1]] and not out.rejected
    engine = streams.fairs[FAIR]
    # the state is exactly the log's: the failed record left nothing behind
    assert [r["id"] for r in engine.log] == ["badge:B0", "badge:B1", "badge:B2"]
    assert "badge:POISON" not in engine.resolver.members
    # one entry for the message: the three records it applied, from position 0
    (key, run), = out.logged
    assert key == log_key(FAIR, 0) and [r["id"] for r in run] == [r["id"] for r in engine.log]
    assert len(out.events) == 3


# -- the order the agent applies a partition's messages in ------------------------------
# decide(offset, logged_next, committed, log_start): logged_next is the partition's next
# offset to apply as the log table says; committed, whether progress was ever committed.

def test_the_first_message_ever_is_applied_and_starts_the_count() -> None:
    assert decide(0, None, committed=False) == Decision(Action.APPLY, next_offset=1)
    # a topic truncated by retention starts later: still the first the resolver sees
    assert decide(40, None, committed=False) == Decision(Action.APPLY, next_offset=41)


def test_the_expected_message_is_applied_and_moves_the_count() -> None:
    assert decide(17, 17, committed=True) == Decision(Action.APPLY, next_offset=18)


def test_a_duplicate_re_read_below_the_count_is_applied_again_without_moving_it() -> None:
    # after a crash the uncommitted tail comes again: re-applying re-sends lost outputs
    assert decide(12, 17, committed=True) == Decision(Action.APPLY, next_offset=None)


def test_a_hole_above_the_count_applies_nothing_and_re_reads_from_the_count() -> None:
    assert decide(19, 17, committed=True) == Decision(Action.HOLE, reread_from=17)


def test_committed_progress_with_an_empty_log_replays_the_topic_from_its_start() -> None:
    assert needs_log_start(None, committed=True)
    assert not needs_log_start(None, committed=False) and not needs_log_start(5, True)
    assert decide(250, None, committed=True, log_start=0) == Decision(
        Action.REPLAY, reread_from=0)
    # the replay has come back to the start: apply from there
    assert decide(0, None, committed=True, log_start=0) == Decision(Action.APPLY, next_offset=1)
    with pytest.raises(ValueError):
        decide(250, None, committed=True)  # the caller must ask the broker first

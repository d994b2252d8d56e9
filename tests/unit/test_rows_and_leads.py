"""Table rows and the leads aggregate: idempotent, exact, private."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from schemas.deadletter import Reason
from schemas.registry import (
    DEAD_LETTER_TABLE,
    LEADS_MINUTE_PARTS,
    ORIGIN_HEADER,
    TABLE_BY_EVENT_TYPE,
)
from streams.leads import MinuteState, minute_of, part_row
from streams.rows import SourceRef, dead_letter_row, event_row, mask_name, origin_of
from streams.validate import Accepted, Rejected, validate
from tests.factories import events as f

SOURCE = SourceRef("t.raw.scans", 3, 42)
NOW = datetime(2026, 3, 26, 3, 0, tzinfo=UTC)


def accept(doc: dict) -> Accepted:
    outcome = validate(f.encode(doc), doc["event_type"], 65536)
    assert isinstance(outcome, Accepted), outcome
    return outcome


def test_every_event_row_fills_exactly_its_tables_columns() -> None:
    for doc in (f.scan(), f.inquiry(), f.procurement(), f.registration()):
        accepted = accept(doc)
        row = event_row(accepted.event, accepted.enrichment, SOURCE)
        spec = TABLE_BY_EVENT_TYPE[doc["event_type"]]
        # optional columns (booth_scan v2's dwell_seconds) only when the event gives them
        columns = set(spec.columns) - {"ingested_at"} - set(spec.optional)
        assert set(row) == columns, doc["event_type"]
        assert row["source_topic"] == "t.raw.scans" and row["source_offset"] == 42


def test_personal_data_is_hashed_or_masked_and_only_with_consent() -> None:
    accepted = accept(f.registration())
    row = event_row(accepted.event, accepted.enrichment, SOURCE)
    assert row["name_masked"] == "L* N*"
    assert "Example" not in str(row) and "138" not in str(row)
    assert len(row["email_hash"]) == 32
    no_consent = accept(f.registration(consent=False))
    row = event_row(no_consent.event, no_consent.enrichment, SOURCE)
    assert row["email_hash"] == row["phone_hash"] == row["name_masked"] == ""


def test_names_are_masked_per_word() -> None:
    assert mask_name("王小明") == "王**"
    assert mask_name("Wang Xiao Ming") == "W*** X*** M***"
    assert mask_name(None) == ""


def test_dead_letter_row_keeps_raw_bytes_and_source() -> None:
    import base64

    raw = b"\xffnot json"
    row = dead_letter_row(Rejected(Reason.BAD_JSON, "bad"), SOURCE, raw, datetime.now(UTC))
    # the line columns (018) only for a batch's later lines: a single message's row is as
    # it was before them
    assert set(row) == set(DEAD_LETTER_TABLE.columns) - {"ingested_at"} - {
        "source_line", "origin_line"}
    assert base64.b64decode(row["raw_base64"]) == raw and row["raw_size"] == len(raw)


def _coordinates(row: dict, prefix: str) -> tuple[object, object, object]:
    return row[f"{prefix}_topic"], row[f"{prefix}_partition"], row[f"{prefix}_offset"]


def test_a_first_reading_is_its_own_origin() -> None:
    row = dead_letter_row(Rejected(Reason.BAD_JSON, "bad"), SOURCE, b"{", NOW)
    assert _coordinates(row, "origin") == _coordinates(row, "source") == ("t.raw.scans", 3, 42)


def test_a_replayed_message_keeps_the_origin_its_header_names() -> None:
    first = dead_letter_row(Rejected(Reason.BAD_JSON, "bad"), SOURCE, b"{", NOW)
    replay_at = SourceRef("t.raw.scans", 0, 9001)
    again = dead_letter_row(Rejected(Reason.INVALID_FIELD, "still bad"), replay_at, b"{", NOW,
                            headers={ORIGIN_HEADER: str(SOURCE).encode()})
    # dead_letters collapses on the origin: the re-failed replay replaces the first row
    assert _coordinates(again, "origin") == _coordinates(first, "origin")
    assert _coordinates(again, "source") == ("t.raw.scans", 0, 9001)
    assert again["reason"] == Reason.INVALID_FIELD.value


def test_an_origin_header_may_name_a_topic_with_brackets() -> None:
    ref = SourceRef("t.raw[odd]@name", 5, 2**40)
    assert origin_of({ORIGIN_HEADER: str(ref).encode()}, SOURCE) == ref


def test_a_bad_origin_header_leaves_the_message_its_own_origin() -> None:
    for value in (b"", b"\xff\xfe", b"t.raw.scans[3]", b"t[70000]@1", b"t[1]@-4",
                  b"t[1]@99999999999999999999", b"[1]@2", b"t[1]@2 trailing"):
        assert origin_of({ORIGIN_HEADER: value}, SOURCE) == SOURCE, value
        row = dead_letter_row(Rejected(Reason.BAD_JSON, "bad"), SOURCE, b"{", NOW,
                              headers={ORIGIN_HEADER: value})
        assert _coordinates(row, "origin") == ("t.raw.scans", 3, 42)
    assert origin_of({"other": b"x[1]@2"}, SOURCE) == SOURCE
    assert origin_of(None, SOURCE) == SOURCE


def test_adding_the_same_event_twice_counts_once() -> None:
    state = MinuteState()
    assert state.add("keqiao", "e1", "b1")
    assert not state.add("keqiao", "e1", "b1")
    state.add("keqiao", "e2", "b1")
    state.add("keqiao", "e3", "b2")
    state.add("humen", "e4", "b3")
    row = part_row("t.raw.scans", 3, "2026-03-26 02:15:00", "keqiao", "scans", state, NOW)
    assert (row["scans"], row["inquiries"], row["distinct_badges"]) == (3, 0, 2)
    assert set(row) == set(LEADS_MINUTE_PARTS.columns)


def test_state_survives_its_table_round_trip() -> None:
    state = MinuteState()
    for n, badge in enumerate(["a", "b", "a"]):
        state.add("keqiao", f"e{n}", badge)
    stored = orjson.loads(orjson.dumps(state.dump()))
    again = MinuteState.load(stored)
    assert again == state
    assert not again.add("keqiao", "e0", "a")


def test_versions_only_grow_as_events_arrive() -> None:
    state, versions = MinuteState(), []
    for n, badge in enumerate(["a", "a", "b", "c", "a"]):
        state.add("humen", f"e{n % 4}", badge)
        versions.append(part_row("t", 0, "m", "humen", "scans", state, NOW)["version"])
    assert versions == sorted(versions)


def test_late_events_count_in_their_event_time_minute() -> None:
    late = datetime(2026, 3, 26, 2, 15, 59, tzinfo=UTC)
    assert minute_of(late) == "2026-03-26 02:15:00"
    shanghai = datetime.fromisoformat("2026-03-26T10:15:59+08:00")
    assert minute_of(shanghai) == "2026-03-26 02:15:00"

"""The sink's pure parts: which insert errors are data refusals, and the dead letters of
refused rows. (The sink itself runs against the real broker and engine in
tests/integration/test_sink_faults.py.)"""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import orjson
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from schemas.deadletter import Reason
from streams.sink import (
    DETAIL_MAX_CHARS,
    InsertFault,
    Line,
    Refused,
    Row,
    classify_insert_error,
    flush_order,
    refusal_detail,
    refused_dead_letters,
    split_lines,
)

# Messages as the embedded engine (chdb via clickhouse-connect) raised them.
PARSE = ("Code: 27. DB::Exception: Code: 27. DB::Exception: Cannot parse input: expected '\"'"
         " before: 'lots\", \"source_offset\": 2}': (while reading the value of key"
         " source_partition): (at row 1)\n: (in file/uri /tmp/tmpm3s1xayh.raw): While executing"
         " JSONEachRowRowInputFormat. (CANNOT_PARSE_INPUT_ASSERTION_FAILED) (version 26.9.0)")
PARTITIONS = ("Code: 252. DB::Exception: Too many partitions for single INSERT block (more than"
              " 100). The limit is controlled by 'max_partitions_per_insert_block' setting."
              " (TOO_MANY_PARTS)")
PARTS = ("Code: 252. DB::Exception: Too many parts (3001 with average size of 1.2 KiB) in table"
         " 'leadloom.scans'. Merges are processing significantly slower than inserts."
         " (TOO_MANY_PARTS)")


@pytest.mark.parametrize(("exc", "fault"), [
    (DatabaseError(PARSE, code=27, name="CANNOT_PARSE_INPUT_ASSERTION_FAILED"),
     InsertFault.REFUSED_ROWS),
    (DatabaseError("Code: 72. DB::Exception: Unsigned type must not contain '-' symbol",
                   code=72, name="CANNOT_PARSE_NUMBER"), InsertFault.REFUSED_ROWS),
    (DatabaseError("Code: 41. Cannot read DateTime", code=41), InsertFault.REFUSED_ROWS),
    (DatabaseError(PARTITIONS, code=252, name="TOO_MANY_PARTS"), InsertFault.TOO_LARGE),
    (DatabaseError("Code: 241. Memory limit exceeded", code=241), InsertFault.TOO_LARGE),
    # the engine is short of something: nothing about the rows
    (DatabaseError(PARTS, code=252, name="TOO_MANY_PARTS"), InsertFault.INFRASTRUCTURE),
    (DatabaseError("Code: 60. Table leadloom.nosuch does not exist", code=60),
     InsertFault.INFRASTRUCTURE),
    (DatabaseError("Code: 243. Not enough space", code=243), InsertFault.INFRASTRUCTURE),
    (DatabaseError("Code: 33. Cannot read all data", code=33), InsertFault.INFRASTRUCTURE),
    (DatabaseError("The ClickHouse server returned an error"), InsertFault.INFRASTRUCTURE),
    # transport faults carry no engine code
    (OperationalError("Error HTTPConnectionPool: Connection refused executing HTTP request"),
     InsertFault.INFRASTRUCTURE),
    (ConnectionRefusedError(111, "Connection refused"), InsertFault.INFRASTRUCTURE),
    (TimeoutError("timed out"), InsertFault.INFRASTRUCTURE),
    (RuntimeError("anything else"), InsertFault.INFRASTRUCTURE),
])
def test_only_errors_the_engine_attributes_to_rows_or_size_are_not_retried_as_they_are(
    exc: BaseException, fault: InsertFault,
) -> None:
    assert classify_insert_error(exc) is fault


def test_a_wrapped_engine_error_classifies_as_the_engine_error() -> None:
    try:
        try:
            raise DatabaseError(PARSE, code=27, name="CANNOT_PARSE_INPUT_ASSERTION_FAILED")
        except DatabaseError as inner:
            raise RuntimeError("insert failed") from inner
    except RuntimeError as outer:
        assert classify_insert_error(outer) is InsertFault.REFUSED_ROWS
        assert refusal_detail(outer).startswith("CANNOT_PARSE_INPUT_ASSERTION_FAILED: ")


def test_an_http_status_is_not_an_engine_code() -> None:
    import urllib.error

    exc = urllib.error.HTTPError("http://x", 27, "odd", {}, None)  # type: ignore[arg-type]
    assert classify_insert_error(exc) is InsertFault.INFRASTRUCTURE


def test_the_refusal_detail_is_the_engines_first_line_named_and_short() -> None:
    detail = refusal_detail(
        DatabaseError(PARSE, code=27, name="CANNOT_PARSE_INPUT_ASSERTION_FAILED"))
    assert detail.startswith("CANNOT_PARSE_INPUT_ASSERTION_FAILED: Cannot parse input:")
    assert "\n" not in detail and "DB::Exception" not in detail
    assert "key source_partition" in detail
    long = refusal_detail(DatabaseError("Code: 6. " + "x" * 5000, code=6))
    assert len(long) == DETAIL_MAX_CHARS and long.startswith("code 6: ")


def test_records_split_into_their_lines_each_knowing_its_record() -> None:
    a = Row("ns.events.valid", 2, 40, b'{"a": 1}\n{"a": 2}\n')
    b = Row("ns.events.valid", 5, 7, b'{"b": 1}')
    assert split_lines([a, b]) == [
        Line(b'{"a": 1}', a), Line(b'{"a": 2}', a), Line(b'{"b": 1}', b),
    ]


def test_refused_rows_become_store_refused_dead_letters_one_per_record() -> None:
    a = Row("ns.events.valid", 2, 40, b"")
    b = Row("ns.events.valid", 5, 7, b"")
    refused = [
        Refused(Line(b'{"event_id": "e1", "n": "x"}', a), "CANNOT_PARSE_NUMBER: one"),
        Refused(Line(b"[1]", b), "CANNOT_PARSE_INPUT_ASSERTION_FAILED: two"),
        Refused(Line(b'"s"', a), "CANNOT_PARSE_INPUT_ASSERTION_FAILED: three"),
    ]
    at = datetime(2026, 3, 26, 2, 0, tzinfo=UTC)
    letters = refused_dead_letters(refused, at)
    assert [(r.topic, r.partition, r.offset) for r in letters] == [
        ("ns.events.valid", 2, 40), ("ns.events.valid", 5, 7)]
    first, second = (orjson.loads(r.value) for r in letters)
    assert first["reason"] == second["reason"] == Reason.STORE_REFUSED.value
    assert (first["source_topic"], first["source_partition"], first["source_offset"]) == (
        "ns.events.valid", 2, 40)
    assert base64.b64decode(first["raw_base64"]) == b'{"event_id": "e1", "n": "x"}\n"s"'
    assert first["detail"] == "2 rows refused; first: CANNOT_PARSE_NUMBER: one"
    assert first["event_id"] == "e1"
    assert base64.b64decode(second["raw_base64"]) == b"[1]"
    assert second["detail"] == "CANNOT_PARSE_INPUT_ASSERTION_FAILED: two"
    assert second["event_id"] == ""


def test_a_flush_stores_the_raw_event_tables_first_and_the_dead_letters_apart() -> None:
    arrived = ["raw_archive", "dead_letters", "buyer_events", "scans", "matches",
               "inquiries"]
    assert flush_order(arrived) == ["scans", "inquiries", "raw_archive", "buyer_events",
                                    "matches"]
    assert flush_order(["dead_letters"]) == []

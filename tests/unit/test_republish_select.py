"""The republish selection: arguments, headers, message decoding and its SQL (parsed by the
embedded engine, run on a small archive built here)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.settings import Settings
from leadloom.commands.republish_select import (
    Counts,
    Selection,
    SelectionError,
    SelectionSql,
    clustered_types,
    decode_message,
    parse_time,
    quote,
    with_origin,
)
from schemas.registry import ORIGIN_HEADER
from streams.rows import SourceRef, archive_row

SETTINGS = Settings(namespace="unit")


def test_times_need_a_zone_and_keep_it() -> None:
    assert parse_time("2026-05-04T10:00:00+08:00", "--from") == datetime(2026, 5, 4, 2,
                                                                          tzinfo=UTC)
    assert parse_time("2026-05-04T02:00:00Z", "--to").tzinfo is not None
    with pytest.raises(SelectionError, match="no zone"):
        parse_time("2026-05-04T10:00:00", "--from")
    with pytest.raises(SelectionError, match="not an ISO-8601"):
        parse_time("yesterday", "--to")


def test_a_selection_refuses_what_cannot_select_anything() -> None:
    with pytest.raises(SelectionError, match="not an event type"):
        Selection.parse(None, None, None, ["badge_scan"])
    with pytest.raises(SelectionError, match="before"):
        Selection.parse("2026-05-04T10:00:00Z", "2026-05-04T09:00:00Z", None, None)
    with pytest.raises(SelectionError, match="have none|has none|none"):
        Selection.parse(None, None, ["keqiao"], ["buyer_registration"])
    with pytest.raises(SelectionError, match="empty"):
        Selection.parse(None, None, [" "], None)


def test_a_cluster_leaves_out_event_types_without_one() -> None:
    assert "buyer_registration" not in clustered_types()
    assert set(clustered_types()) == {"booth_scan", "online_inquiry", "procurement_step",
                                      "supplier_profile"}
    chosen = Selection.parse(None, None, ["keqiao", "keqiao"],
                             ["buyer_registration", "booth_scan"])
    assert chosen.clusters == ("keqiao",)
    assert chosen.event_types() == ("booth_scan",)
    assert len(Selection().event_types()) == 5
    assert Selection.parse(None, None, None, None).params() == {
        "from": None, "to": None, "clusters": [], "types": []}


def test_the_origin_header_is_added_once_and_an_existing_one_kept() -> None:
    source = SourceRef("ns.raw.scans", 3, 42)
    added = with_origin([("trace", b"1"), ("trace", b"2")], source)
    assert added == [("trace", b"1"), ("trace", b"2"), (ORIGIN_HEADER, b"ns.raw.scans[3]@42")]
    kept = [(ORIGIN_HEADER, b"ns.raw.scans[0]@7")]
    assert with_origin(kept, source) == kept
    # a batch's line sent alone names its line; a first reading's header gains it
    line = SourceRef("ns.raw.scans", 3, 42, 5)
    assert with_origin([], line) == [(ORIGIN_HEADER, b"ns.raw.scans[3]@42#5")]
    assert with_origin(kept, line) == [(ORIGIN_HEADER, b"ns.raw.scans[0]@7#5")]
    named = [(ORIGIN_HEADER, b"ns.raw.scans[0]@7#2")]
    assert with_origin(named, line) == named


@pytest.mark.parametrize("value", [b'{"event_id": "e1"}', "扫码".encode(), b"\xff\xfe not utf-8",
                                   b""])
def test_an_archived_message_decodes_to_its_exact_bytes(value: bytes) -> None:
    row = archive_row("t", 0, 1, 0, b"\x00key", value, [("h", b"\x01"), ("h", b"")])
    headers = [[h["name"], h["value_base64"]] for h in row["headers"]]  # type: ignore[attr-defined]
    key, raw, kept = decode_message(row["key_base64"], row["value"], row["value_base64"],
                                    headers)
    assert (key, raw, kept) == (b"\x00key", value, [("h", b"\x01"), ("h", b"")])
    assert decode_message(None, "x", 0, [])[0] is None


def test_counts_add_topics_and_derive_duplicates() -> None:
    counts = Counts.of_rows([["a", 1, 2, 10, 8], ["b", 0, 1, 5, 5]])
    assert counts.events_by_topic == {"a": 8, "b": 5} and counts.selected == 13
    assert counts.skipped == {"not_an_event": 1, "not_stored": 3, "duplicate": 2}


def test_literals_are_quoted() -> None:
    assert quote("it's \\ here") == "'it\\'s \\\\ here'"
    sql = SelectionSql(Selection(clusters=("x' OR 1 --",)), SETTINGS).selected()
    assert "'x\\' OR 1 --'" in sql

"""Dead-letter triage's pure parts: filters, references, safe display, and what a retry does
with one dead letter given its stored bytes and archive row (``judge``)."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

import pytest

from core.settings import Settings
from leadloom.commands.deadletters import (
    DeadLetterError,
    make_filters,
    parse_ref,
    preview,
    quote,
    safe_text,
    where,
)
from leadloom.commands.deadletters_retry import judge
from schemas.registry import ORIGIN_HEADER, RetryOutcome
from streams.rows import DEAD_LETTER_RAW_PREFIX, SourceRef, archive_row
from tests.factories import events as f

S = Settings(namespace="u")
SCANS = S.topics.raw("booth_scan")


def test_filters_are_checked_and_topics_take_their_namespace() -> None:
    got = make_filters(S, ["oversized"], ["raw.scans", "other.topic"],
                       "2026-05-04T10:00:00+08:00", None, 5)
    assert got.topics == (SCANS, "other.topic") and got.limit == 5
    assert got.since == datetime(2026, 5, 4, 2, 0, tzinfo=UTC)
    sql = where(got)
    assert "reason IN ('oversized')" in sql and f"origin_topic IN ('{SCANS}'" in sql
    assert "failed_at >= toDateTime64('2026-05-04 02:00:00.000', 3, 'UTC')" in sql
    with pytest.raises(DeadLetterError, match="unknown reason"):
        make_filters(S, ["nope"], None, None, None, None)
    with pytest.raises(DeadLetterError, match="no zone"):
        make_filters(S, None, None, "2026-05-04T10:00:00", None, None)
    with pytest.raises(DeadLetterError, match="after --since"):
        make_filters(S, None, None, "2026-05-04T10:00:00Z", "2026-05-04T09:00:00Z", None)
    with pytest.raises(DeadLetterError, match="at least 1"):
        make_filters(S, None, None, None, None, 0)
    assert quote("a'b\\c") == "'a\\'b\\\\c'"


def test_references_parse_as_the_origin_header_does() -> None:
    assert parse_ref("u.raw.scans[3]@42") == SourceRef("u.raw.scans", 3, 42)
    assert parse_ref("we[ird][1]@0") == SourceRef("we[ird]", 1, 0)
    for bad in ("u.raw.scans@42", "u.raw.scans[70000]@1", "", "x[1]@-1"):
        with pytest.raises(DeadLetterError):
            parse_ref(bad)


def test_display_escapes_terminal_characters_and_shows_binary_as_hex() -> None:
    assert safe_text("a\x1b[2J\tb\nc\u202e\x00") == "a\\x1b[2J\tb\nc\\u202e\\x00"
    assert safe_text("王伟 ok") == "王伟 ok"
    assert preview(b"\xff\x00") == {"encoding": "binary", "hex": "ff 00", "truncated": False}
    long = preview(("x" * 5000).encode())
    assert long["encoding"] == "utf-8" and long["truncated"] and len(long["text"]) == 4096


def _letter(ref: SourceRef, raw: bytes, reason: str = "oversized") -> tuple[dict, tuple]:
    row = {"origin_topic": ref.topic, "origin_partition": ref.partition,
           "origin_offset": ref.offset, "raw_sha256": hashlib.sha256(raw).hexdigest(),
           "reason": reason, "raw_size": len(raw)}
    return row, (raw[:DEAD_LETTER_RAW_PREFIX], len(raw))


def _archived(ref: SourceRef, raw: bytes, key: bytes | None,
              headers: list[tuple[str, bytes | None]]) -> dict:
    # as the engine gives it back (headers: named tuples as objects)
    return archive_row(ref.topic, ref.partition, ref.offset, 0, key, raw, headers)


def test_a_valid_message_is_republished_with_its_archived_key_and_headers() -> None:
    ref = SourceRef(SCANS, 2, 9)
    raw = f.encode(f.scan(badge_id="B-9"))
    row, prefix = _letter(ref, raw)
    archived = _archived(ref, raw, b"archived-key", [("trace", b"t1"), (ORIGIN_HEADER, b"x")])
    d = judge(S, row, prefix, archived)
    assert d.outcome is RetryOutcome.REPUBLISHED and d.raw == raw
    assert d.archived_key and d.message_key == b"archived-key"
    assert d.headers == {"trace": b"t1", ORIGIN_HEADER: str(ref).encode()}
    assert d.event_type == "booth_scan"
    # no archive copy: the dead letter's whole bytes, the registry's key (not archived)
    d = judge(S, row, prefix, None)
    assert d.outcome is RetryOutcome.REPUBLISHED and not d.archived_key
    assert d.headers == {ORIGIN_HEADER: str(ref).encode()}


def test_an_archive_copy_of_other_bytes_is_not_used() -> None:
    ref = SourceRef(SCANS, 0, 1)
    raw = f.encode(f.scan())
    row, prefix = _letter(ref, raw)
    other = _archived(ref, f.encode(f.scan(booth_id="NOPE-1")), None, [])
    d = judge(S, row, prefix, other)
    assert d.outcome is RetryOutcome.REPUBLISHED and d.raw == raw and not d.archived_key
    truncated_row, truncated = _letter(ref, b"y" * (DEAD_LETTER_RAW_PREFIX + 1))
    d = judge(S, truncated_row, truncated, other)
    assert d.outcome is RetryOutcome.NOT_RETRYABLE and d.reason.startswith("truncated")


def test_what_is_not_retryable_or_still_invalid_says_why() -> None:
    raw = f.encode(f.scan(booth_id="NOPE-1"))
    row, prefix = _letter(SourceRef(SCANS, 0, 1), raw, "unknown_booth")
    d = judge(S, row, prefix, None)
    assert d.outcome is RetryOutcome.STILL_INVALID and d.reason.startswith("unknown_booth: ")
    row, prefix = _letter(SourceRef(S.topics.identity_records, 0, 1), b"{}",
                          "identity_invalid")
    d = judge(S, row, prefix, None)
    assert d.outcome is RetryOutcome.NOT_RETRYABLE and "derived stage identity.records" in \
        d.reason
    row, prefix = _letter(SourceRef("elsewhere.raw.scans", 0, 1), raw)
    d = judge(S, row, prefix, None)
    assert d.outcome is RetryOutcome.NOT_RETRYABLE and "not a raw topic of namespace u" in \
        d.reason
    row, prefix = _letter(SourceRef(SCANS, 0, 1), raw, "store_refused")
    assert judge(S, row, prefix, None).outcome is RetryOutcome.NOT_RETRYABLE
    binary = _archived(SourceRef(SCANS, 0, 2), b"\xff\xfe", None, [])
    assert binary["value_base64"] == 1
    row, prefix = _letter(SourceRef(SCANS, 0, 2), b"\xff\xfe", "bad_json")
    d = judge(S, row, (b"", 2), binary)  # whole only in the archive (base64 there)
    assert d.outcome is RetryOutcome.STILL_INVALID and d.reason.startswith("bad_json")
    assert base64.b64decode(binary["value"]) == b"\xff\xfe"


def test_a_bad_line_of_a_batch_is_retried_alone_under_its_origin_line() -> None:
    """Line 3 of a batched message (the archive holds the whole batch): the retry takes that
    line's bytes from the archive, re-sends it as a message of one event keyed by the
    registry's key_of (not the batch's key) and names its origin with the line."""
    fixed = f.encode(f.scan(badge_id="B-3"))  # what failed then (say, a limit) passes now
    lines = [f.encode(f.scan(badge_id=f"B-{i}")) for i in range(3)] + [fixed]
    whole = b"\n".join(lines)
    message = SourceRef(SCANS, 1, 40)
    origin = SourceRef(SCANS, 1, 40, 3)
    row, prefix = _letter(origin, fixed, "unknown_booth")
    row["origin_line"] = 3
    archived = _archived(message, whole, b"B-0", [("trace", b"t1")])
    d = judge(S, row, prefix, archived)
    assert d.outcome is RetryOutcome.REPUBLISHED and d.raw == fixed
    assert not d.archived_key and d.message_key is None  # Publisher keys it with key_of
    assert d.headers == {"trace": b"t1", ORIGIN_HEADER: b"u.raw.scans[1]@40#3"}
    assert parse_ref("u.raw.scans[1]@40#3") == origin
    # the line's bytes are the dead letter's own when the archive has no copy
    d = judge(S, row, prefix, None)
    assert d.outcome is RetryOutcome.REPUBLISHED and d.raw == fixed
    # a line whose bytes differ from the dead letter's is not taken from the archive
    other = _archived(message, b"\n".join(lines[:3] + [b"{}"]), None, [])
    d = judge(S, row, prefix, other)
    assert d.raw == fixed and d.headers == {ORIGIN_HEADER: b"u.raw.scans[1]@40#3"}

"""Decoding raw bytes: each kind of bad input gets exactly one, named reason."""

from __future__ import annotations

import pytest

from schemas.deadletter import Reason
from schemas.reference import booth_roster
from streams.validate import Accepted, Rejected, validate
from tests.factories import events as f

LIMIT = 64 * 1024


def check(raw: bytes | None, event_type: str) -> Accepted | Rejected:
    return validate(raw, event_type, LIMIT)


def test_a_valid_scan_is_enriched_from_its_booth() -> None:
    booth = booth_roster()[0]
    outcome = check(f.encode(f.scan()), "booth_scan")
    assert isinstance(outcome, Accepted)
    assert outcome.enrichment.cluster_id == booth.cluster_id
    assert outcome.enrichment.pavilion_id == booth.pavilion_id
    assert outcome.enrichment.exhibitor_id == booth.exhibitor_id


def test_an_inquiry_naming_only_an_exhibitor_gets_the_exhibitors_cluster() -> None:
    booth = booth_roster()[-1]
    doc = f.inquiry(cluster_id=None, exhibitor_id=booth.exhibitor_id)
    outcome = check(f.encode(doc), "online_inquiry")
    assert isinstance(outcome, Accepted)
    assert outcome.enrichment.cluster_id == booth.cluster_id


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, Reason.BAD_JSON),
        (b'{"event_id": "x", "event_', Reason.BAD_JSON),
        (b"\xff\xfe\x00garbage", Reason.BAD_JSON),
        (b"[1, 2, 3]", Reason.NOT_AN_OBJECT),
        (b'"just a string"', Reason.NOT_AN_OBJECT),
        (b"{}", Reason.MISSING_FIELD),  # event_type is required, never taken from the topic
    ],
)
def test_garbage_is_rejected_with_its_reason(raw: bytes | None, reason: Reason) -> None:
    outcome = check(raw, "booth_scan")
    assert isinstance(outcome, Rejected)
    assert outcome.reason is reason
    assert outcome.detail


def test_oversized_is_checked_before_parsing_and_keeps_the_event_id() -> None:
    doc = f.scan(note="x" * 400)
    doc["payload"]["note"] = "y" * (LIMIT + 10)
    outcome = check(f.encode(doc), "booth_scan")
    assert isinstance(outcome, Rejected) and outcome.reason is Reason.OVERSIZED
    assert outcome.event_id == doc["event_id"]


def test_an_event_on_the_wrong_topic_is_rejected() -> None:
    outcome = check(f.encode(f.inquiry()), "booth_scan")
    assert isinstance(outcome, Rejected) and outcome.reason is Reason.WRONG_TOPIC


def test_missing_and_invalid_fields_are_told_apart() -> None:
    doc = f.scan()
    del doc["payload"]["badge_id"]
    missing = check(f.encode(doc), "booth_scan")
    assert isinstance(missing, Rejected) and missing.reason is Reason.MISSING_FIELD
    assert "badge_id" in missing.detail
    wrong = check(f.encode(f.inquiry(quantity="lots")), "online_inquiry")
    assert isinstance(wrong, Rejected) and wrong.reason is Reason.INVALID_FIELD
    assert wrong.event_id is not None


def test_naive_timestamps_are_invalid() -> None:
    doc = f.scan()
    doc["occurred_at"] = "2026-03-26T10:00:00"
    outcome = check(f.encode(doc), "booth_scan")
    assert isinstance(outcome, Rejected) and outcome.reason is Reason.INVALID_FIELD


@pytest.mark.parametrize(
    ("doc", "event_type", "reason"),
    [
        (f.scan(booth_id="ZZ-NOPE-999"), "booth_scan", Reason.UNKNOWN_BOOTH),
        (f.inquiry(cluster_id="atlantis"), "online_inquiry", Reason.UNKNOWN_CLUSTER),
        (f.procurement(exhibitor_id="EX-NOPE-1"), "procurement_step", Reason.UNKNOWN_EXHIBITOR),
    ],
)
def test_unknown_reference_data_is_rejected(doc: dict, event_type: str, reason: Reason) -> None:
    outcome = check(f.encode(doc), event_type)
    assert isinstance(outcome, Rejected) and outcome.reason is reason


def test_an_inquiry_without_any_target_is_invalid() -> None:
    outcome = check(f.encode(f.inquiry(cluster_id=None)), "online_inquiry")
    assert isinstance(outcome, Rejected) and outcome.reason is Reason.INVALID_FIELD


@pytest.mark.parametrize(
    ("occurred_at", "received_at"),
    [
        ("9999-12-31T23:59:59-14:00", "2026-03-26T02:15:31+00:00"),  # year 10000 in UTC
        ("0001-01-01T00:00:00+14:00", "2026-03-26T02:15:31+00:00"),  # before year 1 in UTC
        ("1900-01-01T00:00:00+00:00", "1900-01-01T00:00:01+00:00"),  # both before 2000
        ("2300-01-01T00:00:00+00:00", "2300-01-01T00:00:01+00:00"),  # both after 2100
        ("2026-01-01T00:00:00+00:00", "2026-03-26T02:15:31+00:00"),  # 84 days late
        ("2026-03-28T02:15:30+00:00", "2026-03-26T02:15:31+00:00"),  # 2 days ahead
    ],
)
def test_times_outside_the_credible_window_are_invalid(occurred_at: str,
                                                       received_at: str) -> None:
    doc = f.scan()
    doc.update(occurred_at=occurred_at, received_at=received_at)
    outcome = check(f.encode(doc), "booth_scan")
    assert isinstance(outcome, Rejected) and outcome.reason is Reason.INVALID_FIELD
    assert "occurred_at" in outcome.detail or "received_at" in outcome.detail


def test_a_scanner_syncing_weeks_late_or_a_clock_hours_ahead_is_still_accepted() -> None:
    for occurred_at in ("2026-02-27T02:15:31+00:00", "2026-03-26T16:15:31+00:00"):
        doc = f.scan()
        doc.update(occurred_at=occurred_at, received_at="2026-03-26T02:15:31+00:00")
        assert isinstance(check(f.encode(doc), "booth_scan"), Accepted)


@pytest.mark.parametrize("quantity", [b"5000000000", b"1e20", b"1" + b"0" * 30])
def test_quantities_beyond_the_column_are_invalid(quantity: bytes) -> None:
    for doc, event_type in ((f.inquiry(quantity=777), "online_inquiry"),
                            (f.procurement(quantity=777), "procurement_step")):
        raw = f.encode(doc).replace(b'"quantity":777', b'"quantity":' + quantity)
        outcome = check(raw, event_type)
        assert isinstance(outcome, Rejected) and outcome.reason is Reason.INVALID_FIELD


def test_an_event_without_event_type_is_a_missing_field() -> None:
    doc = f.scan()
    del doc["event_type"]
    outcome = check(f.encode(doc), "booth_scan")
    assert isinstance(outcome, Rejected) and outcome.reason is Reason.MISSING_FIELD
    assert outcome.event_id == doc["event_id"]

"""booth_scan versions 1 and 2: what each accepts, refuses and stores (pure)."""

from __future__ import annotations

import pytest

from core.migrations import Migration, load_migrations
from infra.clickhouse import MIGRATIONS_DIR
from schemas.deadletter import Reason
from streams.rows import SourceRef, event_row
from streams.validate import Accepted, Rejected, validate
from tests.factories import events as f

SOURCE = SourceRef("t.raw.scans", 0, 1)


def scan(version: int, **payload: object) -> dict:
    doc = f.scan(**payload)
    doc["schema_version"] = version
    return doc


def check(doc: dict, event_type: str = "booth_scan") -> Accepted | Rejected:
    return validate(f.encode(doc), event_type, 65536)


def renamed(doc: dict) -> dict:
    doc["payload"]["scanner_id"] = doc["payload"].pop("scanner_device")
    return doc


@pytest.mark.parametrize("doc", [
    scan(1), scan(2), renamed(scan(2)), renamed(scan(1)), scan(2, scanner_id="SCN-1"),
    scan(2, dwell_seconds=0), scan(2, dwell_seconds=86_400),
])
def test_both_versions_and_both_scanner_names_are_accepted(doc: dict) -> None:
    outcome = check(doc)
    assert isinstance(outcome, Accepted), outcome
    row = event_row(outcome.event, outcome.enrichment, SOURCE)
    assert row["scanner_device"] == "SCN-1"  # the column keeps version 1's name
    assert row.get("dwell_seconds") == doc["payload"].get("dwell_seconds")
    assert ("dwell_seconds" in row) == ("dwell_seconds" in doc["payload"])


@pytest.mark.parametrize(("doc", "reason", "says"), [
    (scan(2, scanner_id="SCN-2"), Reason.INVALID_FIELD,
     "scanner_id 'SCN-2' and its old name scanner_device 'SCN-1' differ"),
    (scan(1, dwell_seconds=30), Reason.INVALID_FIELD, "dwell_seconds is a schema_version 2"),
    (scan(2, dwell_seconds=86_401), Reason.INVALID_FIELD, "less than or equal to 86400"),
    (scan(2, dwell_seconds=-1), Reason.INVALID_FIELD, "greater than or equal to 0"),
    (scan(2, dwell_seconds=12.0), Reason.INVALID_FIELD, "valid integer"),
    (scan(2, dwell_seconds="12"), Reason.INVALID_FIELD, "valid integer"),
    (scan(3), Reason.INVALID_FIELD, "schema_version"),
])
def test_what_each_version_refuses(doc: dict, reason: Reason, says: str) -> None:
    outcome = check(doc)
    assert isinstance(outcome, Rejected) and outcome.reason is reason, outcome
    assert says in outcome.detail


def test_no_scanner_at_all_is_a_missing_field_naming_both_names() -> None:
    for version in (1, 2):
        doc = scan(version)
        del doc["payload"]["scanner_device"]
        outcome = check(doc)
        assert isinstance(outcome, Rejected) and outcome.reason is Reason.MISSING_FIELD
        assert "scanner_id" in outcome.detail and "scanner_device" in outcome.detail


def test_other_event_types_stay_at_version_1() -> None:
    doc = f.inquiry()
    doc["schema_version"] = 2
    outcome = check(doc, "online_inquiry")
    assert isinstance(outcome, Rejected) and outcome.reason is Reason.INVALID_FIELD


def test_017_is_online_and_the_earlier_rewrites_are_not() -> None:
    by_version = {m.version: m for m in load_migrations(MIGRATIONS_DIR)}
    assert by_version[17].online
    assert not by_version[6].online  # rewrites and exchanges wait for a start
    assert Migration(99, "x", "-- online: a new table\nCREATE TABLE t (a UInt8)").online
    assert not Migration(99, "x", "CREATE TABLE t (a UInt8) -- online: no").online

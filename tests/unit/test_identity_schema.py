"""The identity record contract: exact for the stream's own lines, forgiving for a person's."""

from __future__ import annotations

import orjson
import pytest
from pydantic import ValidationError

from core.settings import Settings
from producers.simulator import simulate_fair
from schemas.deadletter import INPUT_REASONS, Reason
from schemas.identity import (
    BUYER_EVENT_TYPES,
    BuyerRecord,
    IdentityRecord,
    IdentityRejected,
    parse_identity,
)
from schemas.registry import LEAD_CONTRIBUTIONS, RAW_TOPICS
from streams.batch import RawMessage, process_batch

SCAN = {"event_id": "e1", "event_type": "booth_scan", "fair_id": "CIFW-2026-AW",
        "occurred_at": "2026-03-26T02:15:30.000+00:00", "cluster_id": "keqiao",
        "exhibitor_id": "", "booth_id": "KQ-A-001", "badge_id": "B1", "consent": False,
        "contact": None}
REGISTRATION = {**SCAN, "event_id": "r1", "event_type": "buyer_registration", "consent": True,
                "contact": {"full_name": "陈静", "company": None, "email": "cj@example.com",
                            "phone": "+86 139 1234 5678", "wechat": None, "country": "CN",
                            "province": None, "city": "杭州市", "address": None,
                            "postcode": "310076"}}


def rejected(doc: object) -> IdentityRejected:
    outcome = parse_identity(orjson.dumps(doc))
    assert isinstance(outcome, IdentityRejected), f"accepted: {doc!r}"
    return outcome


def test_every_record_the_workers_build_from_a_simulated_day_meets_the_schema() -> None:
    settings = Settings()
    topic_of = {settings.topics.name(spec): spec.value_schema for spec in RAW_TOPICS}
    sim = simulate_fair(3000, seed=11)
    messages = [RawMessage(settings.topics.raw(m.event_type), 0, n, m.value)
                for n, m in enumerate(sim.messages)]
    out = process_batch(messages, topic_of, settings.max_message_bytes,
                        LEAD_CONTRIBUTIONS.partitions)
    lines = [line for block in out.identity_by_fair.values() for line in block]
    parsed = [parse_identity(line) for line in lines]
    problems = [(line, p) for line, p in zip(lines, parsed, strict=True)
                if isinstance(p, IdentityRejected)]
    assert not problems, problems[:3]
    records = [p for p in parsed if isinstance(p, IdentityRecord)]
    assert {r.event_type for r in records} == BUYER_EVENT_TYPES  # every kind was checked
    assert any(r.contact is not None for r in records)
    # the workers' line and the schema's rendering of it agree byte for byte
    assert all(r.to_json() == line for r, line in zip(records, lines, strict=True))


def test_a_scan_and_a_registration_are_accepted_as_written() -> None:
    for doc in (SCAN, REGISTRATION):
        record = parse_identity(orjson.dumps(doc))
        assert isinstance(record, IdentityRecord)
        assert orjson.loads(record.to_json()) == doc


@pytest.mark.parametrize(
    ("doc", "complaint"),
    [
        ({**SCAN, "device": "x"}, "device"),  # unknown fields: writer and reader disagree
        ({**REGISTRATION, "contact": {**REGISTRATION["contact"], "wechat_id": "w"}},
         "wechat_id"),
        ({k: v for k, v in SCAN.items() if k != "contact"}, "contact"),
        ({k: v for k, v in SCAN.items() if k != "occurred_at"}, "occurred_at"),
        ({**SCAN, "event_id": ""}, "event_id"),
        ({**SCAN, "consent": "maybe"}, "consent"),
        ({**SCAN, "occurred_at": "2026-03-26T02:15:30"}, "UTC offset"),
        ({**SCAN, "occurred_at": "yesterday"}, "ISO 8601"),
        ({**SCAN, "event_type": "supplier_profile"}, "not an event about a buyer"),
        ({**SCAN, "badge_id": ""}, "needs a badge_id"),
        ({**REGISTRATION, "contact": {**REGISTRATION["contact"], "country": "China"}},
         "country"),
        ([SCAN], "object"),
    ],
)
def test_a_line_that_breaks_the_schema_is_identity_invalid(doc: object, complaint: str) -> None:
    outcome = rejected(doc)
    assert outcome.reason is Reason.IDENTITY_INVALID
    assert complaint in outcome.detail


@pytest.mark.parametrize("line", [b"{not json", b"\xff\xfe{}", b"", b'{"event_id": "e1",'])
def test_a_line_that_is_not_json_is_identity_bad_json(line: bytes) -> None:
    outcome = parse_identity(line)
    assert isinstance(outcome, IdentityRejected)
    assert outcome.reason is Reason.IDENTITY_BAD_JSON and outcome.detail


def test_identity_reasons_are_not_reasons_raw_input_can_be_rejected_for() -> None:
    # the simulator must produce every input reason; it never writes identity lines
    assert Reason.IDENTITY_BAD_JSON not in INPUT_REASONS
    assert Reason.IDENTITY_INVALID not in INPUT_REASONS


# -- leadloom resolve: a person's records --------------------------------------------------

def test_a_persons_record_needs_only_an_id_and_may_bring_columns_of_its_own() -> None:
    record = BuyerRecord.model_validate({"id": "r1", "crm_owner": "Anna", "full_name": "李娜"})
    assert record.id == "r1" and record.full_name == "李娜"
    assert "crm_owner" not in record.model_dump()


def test_numbers_from_a_spreadsheet_are_taken_as_the_text_typed() -> None:
    record = BuyerRecord.model_validate({"id": 42, "postcode": 310076, "phone": 13912345678})
    assert (record.id, record.postcode, record.phone) == ("42", "310076", "13912345678")


@pytest.mark.parametrize(
    "doc",
    [{"full_name": "no id"}, {"id": ""}, {"id": None}, {"id": "r1", "email": ["a@b.c"]},
     {"id": "r1", "phone": {"mobile": "1"}}, {"id": "r1", "company": True}],
)
def test_a_persons_record_without_an_id_or_with_a_non_text_field_is_refused(doc: dict) -> None:
    with pytest.raises(ValidationError):
        BuyerRecord.model_validate(doc)

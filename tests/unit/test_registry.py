"""The registry decides: event-type names, message keys and the limits' defaults."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.settings import Settings
from producers.simulator import SimulationParams
from schemas.events import EVENT_CLASSES, EVENT_TYPES, EventType
from schemas.registry import (
    ALL_TOPICS,
    DERIVED_TOPICS,
    KAFKA_WIRE_MAX_BYTES,
    LEAD_CONTRIBUTIONS,
    MAX_EVENT_BYTES,
    RAW_PARTITIONS,
    RAW_TOPIC_BY_EVENT_TYPE,
    RAW_TOPICS,
    TABLE_BY_EVENT_TYPE,
    KeyRule,
    crc32_partition,
    key_of,
)
from streams.leads import leads_partition
from tests.factories import events as f

# -- event types, spelled once -----------------------------------------------------------

def test_every_event_type_has_one_class_one_raw_topic_and_one_table() -> None:
    assert set(EVENT_TYPES) == set(EventType)
    assert set(EVENT_CLASSES) == set(RAW_TOPIC_BY_EVENT_TYPE) == set(TABLE_BY_EVENT_TYPE)
    assert set(EventType) == {t.event_type for t in RAW_TOPICS}
    for event_type, cls in EVENT_CLASSES.items():
        assert cls.model_fields["event_type"].annotation.__args__ == (event_type,)


def test_event_types_are_plain_strings_on_the_wire() -> None:
    assert EventType.BOOTH_SCAN == "booth_scan" and f"{EventType.BOOTH_SCAN}" == "booth_scan"
    event = EVENT_CLASSES["booth_scan"].model_validate(f.scan())
    assert event.model_dump(mode="json")["event_type"] == "booth_scan"


def test_a_wrong_event_type_is_reported_as_the_plain_name() -> None:
    with pytest.raises(ValidationError) as caught:
        EVENT_CLASSES["booth_scan"].model_validate(f.inquiry())
    assert "Input should be 'booth_scan'" in str(caught.value)


# -- keys -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("doc", "expected"), [
    (f.scan(badge_id="B-42"), b"B-42"),
    (f.registration(badge_id="B-43"), b"B-43"),
    (f.procurement(buyer_ref="B-44"), b"B-44"),
])
def test_raw_events_are_keyed_by_their_buyer(doc: dict, expected: bytes) -> None:
    assert key_of(doc) == expected


def test_inquiries_are_keyed_by_event_id_and_profiles_by_exhibitor() -> None:
    inquiry = f.inquiry()
    assert key_of(inquiry) == inquiry["event_id"].encode()
    profile = f.envelope(EventType.SUPPLIER_PROFILE.value, {"exhibitor_id": "EX-9"})
    assert key_of(profile) == b"EX-9"


def test_an_event_without_its_key_field_falls_back_to_its_event_id() -> None:
    scan = f.scan()
    del scan["payload"]["badge_id"]
    assert key_of(scan) == scan["event_id"].encode()
    scan["payload"]["badge_id"] = ""  # empty is missing too
    assert key_of(scan) == scan["event_id"].encode()
    scan["payload"]["badge_id"] = 1234  # an integer badge still keys (it dead-letters later)
    assert key_of(scan) == b"1234"


def test_malformed_events_never_raise() -> None:
    assert key_of({"event_type": "badge_scan", "event_id": "e-1"}) == b"e-1"  # unknown type
    assert key_of({"event_type": ["booth_scan"], "event_id": "e-2"}) == b"e-2"
    assert key_of({"event_type": "booth_scan", "payload": "not an object"}) is None
    assert key_of({}) is None


def test_derived_topics_declare_the_keys_the_workers_send_with() -> None:
    """The declaration, as ``tests/integration/test_topic_keys.py`` checks on the broker."""
    declared = {t.suffix: str(t.key) for t in DERIVED_TOPICS}
    assert declared == {
        "events.valid": "none",
        "leads.contributions": "crc32(badge_id, else event_id) % partitions",
        "leads.minute": "none",
        "deadletters": "none",
        "identity.records": "fair_id",
        "buyers.events": "none",
        "buyers.merges": "none",
        "buyers.state": "none",
        "matchmaking.requests": "fair_id",
        "matches": "none",
        "alerts.surges": "cluster_id",
        "metrics": "none",
        "ops": "none",
    }
    for spec in RAW_TOPICS:
        assert spec.key.rule is KeyRule.FIELD and spec.dead_letter is not None


def test_unkeyed_topics_give_no_key_and_no_partition() -> None:
    row = {"event_id": "e", "fair_id": "CIFW-2026-AW", "badge_id": "B-1"}
    for spec in ALL_TOPICS:
        if spec.key.rule is KeyRule.NONE:
            assert spec.key.key(row) is None and spec.key.partition(row, 6) is None


def test_contributions_partition_is_the_lead_aggregators() -> None:
    for badge, event_id in (("B-000001", "e-1"), (None, "e-2"), ("王伟-7", "e-3")):
        row = {"event_id": event_id, "badge_id": badge}
        expected = leads_partition(badge, event_id, RAW_PARTITIONS)
        assert LEAD_CONTRIBUTIONS.key.partition(row, RAW_PARTITIONS) == expected
        assert LEAD_CONTRIBUTIONS.key.key(row) is None
    assert crc32_partition("B-000001", 6) == leads_partition("B-000001", "x", 6)


# -- limits and partitions, from one place ----------------------------------------------------

def test_the_size_limits_have_one_default() -> None:
    settings = Settings()
    assert settings.max_message_bytes == MAX_EVENT_BYTES == SimulationParams().max_message_bytes
    assert settings.kafka_wire_max_bytes == KAFKA_WIRE_MAX_BYTES > MAX_EVENT_BYTES


def test_every_topic_has_the_registry_partition_count() -> None:
    assert {t.partitions for t in ALL_TOPICS} == {RAW_PARTITIONS}

"""The registry's key declarations are what the stream workers really send.

A small fair day runs through the real pipeline (broker, workers, sink); then every record
of every derived topic is read back and checked against its topic's ``MessageKey``:
unkeyed topics carry no key, a keyed topic's key is the declared field of every row in
the record, and an explicitly partitioned topic puts every row on the partition the
declared rule gives.
"""

from __future__ import annotations

import orjson
import pytest
from kafka import KafkaConsumer, TopicPartition

from core.kafka import bootstrap_list, fetch_sizes
from core.settings import Settings
from producers.simulator import simulate_fair
from producers.simulator.publish import publish
from schemas.registry import DERIVED_TOPICS, KeyRule, TopicSpec
from tests.conftest import running_pipeline

pytestmark = pytest.mark.integration

# Topics that a small day may leave empty: merges need two records of one buyer to meet;
# a day without a surge has no surge alert (tests/unit/test_surge_decider.py covers the key).
# (ops: rows of ops commands only, none in a pipeline run)
MAY_BE_EMPTY = {"buyers.merges", "alerts.surges", "ops"}


def read_all(settings: Settings, topic: str) -> list:  # list[ConsumerRecord]
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_list(settings),
                             enable_auto_commit=False, **fetch_sizes(settings))
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        ends = consumer.end_offsets(parts)
        records: list = []
        for _ in range(200):
            if all(consumer.position(tp) >= ends[tp] for tp in parts):
                return records
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
        raise AssertionError(f"could not read {topic} to its end")
    finally:
        consumer.close()


def rows_of(value: bytes) -> list[dict]:
    return [orjson.loads(line) for line in value.split(b"\n") if line]


def check(spec: TopicSpec, records: list) -> list[str]:
    """Every disagreement between ``spec.key`` and the records, as ``topic[p]@o: why``."""
    wrong = []
    for r in records:
        where = f"{r.topic}[{r.partition}]@{r.offset}"
        rows = rows_of(r.value)
        if spec.key.rule is KeyRule.FIELD:
            keys = {spec.key.key(row) for row in rows}
            if keys != {r.key}:
                wrong.append(f"{where}: key {r.key!r}, rows say {sorted(map(repr, keys))}")
        elif r.key is not None:
            wrong.append(f"{where}: declared {spec.key}, sent with key {r.key!r}")
        if spec.key.rule is KeyRule.PARTITION:
            parts = {spec.key.partition(row, spec.partitions) for row in rows}
            if parts != {r.partition}:
                wrong.append(f"{where}: rows belong on partitions {sorted(parts)}")
    return wrong


def test_every_derived_topic_is_keyed_as_the_registry_declares(
        pipeline_settings: Settings) -> None:
    day = simulate_fair(1500, seed=5)
    with running_pipeline(pipeline_settings, workers=1) as pipe:
        publish(day.messages, pipeline_settings)
        assert pipe.wait_idle(300), f"not idle: lag {pipe.lag()}"
    seen: dict[str, int] = {}
    wrong: list[str] = []
    for spec in DERIVED_TOPICS:
        records = read_all(pipeline_settings, pipeline_settings.topics.name(spec))
        seen[spec.suffix] = len(records)
        wrong += check(spec, records)
    assert wrong == []
    empty = {t for t, n in seen.items() if n == 0} - MAY_BE_EMPTY
    assert empty == set(), f"no records to check on {sorted(empty)} ({seen})"


def test_the_check_catches_a_wrong_declaration() -> None:
    """The check is not vacuous: records that break a declaration are reported."""
    from types import SimpleNamespace

    from schemas.registry import IDENTITY_RECORDS, LEAD_CONTRIBUTIONS, VALID_EVENTS

    row = orjson.dumps({"event_id": "e-1", "badge_id": "B-1", "fair_id": "CIFW-2026-AW"})
    record = SimpleNamespace(topic="t", partition=0, offset=7, key=b"B-1", value=row)
    assert check(VALID_EVENTS, [record])  # keyed, declared unkeyed
    assert check(IDENTITY_RECORDS, [record])  # keyed by badge, declared fair_id
    partition = LEAD_CONTRIBUTIONS.key.partition(orjson.loads(row), 6)
    misplaced = SimpleNamespace(topic="t", partition=(partition + 1) % 6, offset=8, key=None,
                                value=row)
    assert check(LEAD_CONTRIBUTIONS, [misplaced])

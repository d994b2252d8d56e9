"""The reusable publisher on the real broker: per-message deliveries, registry keys,
failures as results, topics ensured once."""

from __future__ import annotations

import orjson
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import MessageSizeTooLargeError
from kafka.partitioner.default import murmur2

import core.kafka
from core.kafka import bootstrap_list
from core.settings import Settings
from producers.publisher import Publisher, UnknownEventType
from schemas.registry import RAW_PARTITIONS, key_of
from tests.factories import events as f

pytestmark = pytest.mark.integration


def read_record(settings: Settings, topic: str, partition: int, offset: int) -> ConsumerRecord:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_list(settings),
                             enable_auto_commit=False, **core.kafka.fetch_sizes(settings))
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, offset)
        for _ in range(40):
            for record in consumer.poll(timeout_ms=500).get(tp, []):
                if record.offset == offset:
                    return record
        raise AssertionError(f"nothing at {topic}[{partition}]@{offset}")
    finally:
        consumer.close()


def murmur2_partition(key: bytes) -> int:
    """kafka-python's and the Java client's default partition of a keyed record."""
    return (murmur2(key) & 0x7FFFFFFF) % RAW_PARTITIONS


def test_each_send_reports_where_it_landed(pipeline_settings: Settings) -> None:
    scans = [f.scan(badge_id="B-PUB-1") for _ in range(3)]
    with Publisher(pipeline_settings) as publisher:
        deliveries = [publisher.publish(doc).result(timeout=30) for doc in scans]
        assert publisher.flush() == []
    assert all(d.ok for d in deliveries)
    topic = pipeline_settings.topics.raw("booth_scan")
    assert {d.topic for d in deliveries} == {topic}
    assert len({d.partition for d in deliveries}) == 1  # one badge, one partition, in order
    offsets = [d.offset for d in deliveries]
    assert offsets == sorted(offsets) and len(set(offsets)) == 3
    for doc, d in zip(scans, deliveries, strict=True):
        assert d.event_id == doc["event_id"] and d.where == f"{topic}[{d.partition}]@{d.offset}"
        record = read_record(pipeline_settings, d.topic, d.partition, d.offset)
        assert record.key == b"B-PUB-1" == key_of(doc)
        assert orjson.loads(record.value) == orjson.loads(f.encode(doc))


def test_a_key_lands_on_the_partition_murmur2_gives(pipeline_settings: Settings) -> None:
    docs = [f.scan(badge_id=f"B-M{n:05d}") for n in range(24)]
    docs += [f.procurement(buyer_ref=f"B-P{n:05d}") for n in range(6)]
    docs += [f.inquiry() for _ in range(6)]  # keyed by event id
    with Publisher(pipeline_settings) as publisher:
        sent = [publisher.publish(doc) for doc in docs]
        assert publisher.flush(timeout=30) == []
    landed = [s.result(timeout=0) for s in sent]
    for doc, d in zip(docs, landed, strict=True):
        key = key_of(doc)
        assert key is not None and d.partition == murmur2_partition(key), (doc, d)
    assert len({d.partition for d in landed}) > 1  # the keys spread over the partitions


def test_raw_bytes_go_as_sent_keyed_when_they_parse(pipeline_settings: Settings) -> None:
    doc = f.registration(badge_id="B-BYTES-1")
    with Publisher(pipeline_settings) as publisher:
        good = publisher.publish(f.encode(doc), "buyer_registration").result(timeout=30)
        broken = publisher.publish(b'{"event_id": "x", ', "booth_scan").result(timeout=30)
        with pytest.raises(UnknownEventType):
            publisher.publish(b"{}", "badge_scan")
    assert good.ok and broken.ok
    assert read_record(pipeline_settings, good.topic, good.partition, good.offset).key \
        == b"B-BYTES-1"
    stored = read_record(pipeline_settings, broken.topic, broken.partition, broken.offset)
    assert stored.key is None and stored.value == b'{"event_id": "x", '  # dead-letters later


def test_an_oversized_message_is_an_error_result_not_a_lost_message(
        pipeline_settings: Settings) -> None:
    scan = f.scan(badge_id="B-HUGE", note="n" * 400)
    huge = f.encode(scan).replace(b'"n', b'"' + b"n" * pipeline_settings.kafka_wire_max_bytes, 1)
    assert len(huge) > pipeline_settings.kafka_wire_max_bytes
    publisher = Publisher(pipeline_settings)
    try:
        sent = publisher.publish(huge, "booth_scan")
        failed = sent.result(timeout=30)
        after = publisher.publish(f.scan(badge_id="B-AFTER")).result(timeout=30)
        collected = publisher.flush()
    finally:
        leftover = publisher.close()
    assert not failed.ok and isinstance(failed.error, MessageSizeTooLargeError)
    assert failed.offset is None and failed.topic == pipeline_settings.topics.raw("booth_scan")
    assert collected == [failed] and leftover == []  # reported once, by flush
    assert after.ok  # the publisher goes on


def test_unflushed_failures_surface_when_the_publisher_closes(
        pipeline_settings: Settings) -> None:
    from producers.publisher import PublishFailed

    huge = b"x" * (pipeline_settings.kafka_wire_max_bytes + 1)
    with pytest.raises(PublishFailed, match="1 publish"), Publisher(pipeline_settings) as pub:
        pub.publish(huge, "booth_scan")


def test_topics_are_ensured_once(pipeline_settings: Settings,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = core.kafka.ensure_topics

    def counting(settings: Settings, *args: object, **kwargs: object) -> list[str]:
        calls.append(settings.namespace)
        return real(settings, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(core.kafka, "ensure_topics", counting)
    with Publisher(pipeline_settings) as publisher:
        for doc in (f.scan(), f.inquiry(), f.procurement(), f.registration(), f.scan()):
            assert publisher.publish(doc).result(timeout=30).ok
        publisher.start()  # idempotent
        assert publisher.topics_ensured == 1
    assert calls == [pipeline_settings.namespace]
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_list(pipeline_settings))
    try:
        existing = set(admin.list_topics())
    finally:
        admin.close()
    assert set(pipeline_settings.topics.all()) <= existing


def test_sends_to_a_topic_created_a_moment_ago_are_retried_until_its_leaders_serve(
    pipeline_settings: Settings,
) -> None:
    """Retries are bounded by time, not by a count: a new topic's partitions can answer
    NotLeaderForPartition for a while on a loaded broker (ten retries, about a second,
    once lost two records of a simulate in CI). No wait for metadata here, on purpose."""
    from kafka.admin import NewTopic

    producer = core.kafka.producer(pipeline_settings)
    assert producer.config["retries"] == float("inf")
    assert producer.config["delivery_timeout_ms"] == core.kafka.PRODUCER_DELIVERY_TIMEOUT_MS
    topic = f"{pipeline_settings.namespace}.fresh"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_list(pipeline_settings))
    try:
        admin.create_topics([NewTopic(topic, 12, 1)])
        futures = [producer.send(topic, value=b"x", partition=p % 12) for p in range(120)]
        producer.flush(60)
        landed = [future.get(timeout=1) for future in futures]
    finally:
        producer.close()
        admin.close()
    assert sorted(r.partition for r in landed) == sorted(p % 12 for p in range(120))

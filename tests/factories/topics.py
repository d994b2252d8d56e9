"""Reading a topic back whole, partition by partition, for tests that compare with a log."""

from __future__ import annotations

import time

from kafka import KafkaConsumer, TopicPartition

from core.kafka import bootstrap_list
from core.settings import Settings
from schemas.registry import RAW_PARTITIONS


def topic_log(settings: Settings, topic: str) -> dict[int, list[bytes]]:
    """Every message value of ``topic``, per partition, in log order."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_list(settings),
                             enable_auto_commit=False)
    parts = [TopicPartition(topic, p) for p in range(RAW_PARTITIONS)]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    ends = consumer.end_offsets(parts)
    values: dict[int, list[bytes]] = {p.partition: [] for p in parts}
    deadline = time.monotonic() + 60
    while any(consumer.position(p) < ends[p] for p in parts) and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            for r in records:
                values[r.partition].append(r.value)
    consumer.close()
    return values

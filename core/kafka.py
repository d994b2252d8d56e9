"""Kafka client factories (kafka-python) and topic provisioning from the registry."""

from __future__ import annotations

import time

from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from core.settings import Settings
from schemas.registry import FAUST_TABLES, RAW_PARTITIONS, changelog_topic

# Producers batch up to this much per partition (kafka-python's default is 16 KiB): one
# worker batch of small events fits in a few requests. Bulk publishing uses more
# (Settings.bulk_batch_bytes).
PRODUCER_BATCH_BYTES = 256 * 1024
# How long a send may be retried before it is reported failed (kafka-python's default
# retries are unbounded within this; its own default is 120 s). It must exceed linger
# plus the request timeout (30 s), and stays under the commands' 60 s flush waits.
PRODUCER_DELIVERY_TIMEOUT_MS = 45_000
# A consumer's fetch sizes, as multiples of the wire limit: a partition fetch holds two of
# the largest messages (8 MiB at the default 4 MiB), a whole fetch a full fetch of 8
# partitions (64 MiB), so a bare consumer is never slowed by small fetches.
_PARTITION_FETCH_MESSAGES = 2
_FETCH_PARTITIONS = 8


def fetch_sizes(settings: Settings) -> dict[str, int]:
    """kafka-python consumer fetch settings for reading anything the pipeline may write
    (``max_partition_fetch_bytes``, ``fetch_max_bytes``), derived from the wire limit."""
    partition = _PARTITION_FETCH_MESSAGES * settings.kafka_wire_max_bytes
    return {"max_partition_fetch_bytes": partition,
            "fetch_max_bytes": _FETCH_PARTITIONS * partition}


class KafkaUnavailable(RuntimeError):
    """The configured broker cannot be reached."""


def bootstrap_list(settings: Settings) -> list[str]:
    return [s.strip() for s in settings.kafka_bootstrap.split(",") if s.strip()]


def admin(settings: Settings, timeout_s: float = 10.0) -> KafkaAdminClient:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return KafkaAdminClient(
                bootstrap_servers=bootstrap_list(settings),
                client_id=f"{settings.namespace}-admin",
                request_timeout_ms=10_000,
            )
        except KafkaError as exc:
            if time.monotonic() > deadline:
                raise KafkaUnavailable(
                    f"no Kafka broker at {settings.kafka_bootstrap} ({exc.__class__.__name__});"
                    " start one with 'leadloom infra up'"
                ) from exc
            time.sleep(0.5)


def producer(settings: Settings, **overrides: object) -> KafkaProducer:
    """A producer for at-least-once delivery: acks from all in-sync replicas, retries.

    Linger is ``settings.producer_linger_ms`` (short: paced sends stay prompt); bulk
    publishers pass ``linger_ms``/``batch_size`` overrides from the bulk settings."""
    config: dict[str, object] = dict(
        bootstrap_servers=bootstrap_list(settings),
        client_id=f"{settings.namespace}-producer",
        acks="all",
        linger_ms=settings.producer_linger_ms,
        batch_size=PRODUCER_BATCH_BYTES,
        max_request_size=settings.kafka_wire_max_bytes,
        # Retries bounded by time, not count: right after a topic is created (or a leader
        # moves) a loaded broker can answer NotLeaderForPartition for over a second, and
        # ten retries at 100 ms backoff gave up on two records of a simulate in CI.
        delivery_timeout_ms=PRODUCER_DELIVERY_TIMEOUT_MS,
    )
    config.update(overrides)
    try:
        return KafkaProducer(**config)
    except KafkaError as exc:
        raise KafkaUnavailable(
            f"no Kafka broker at {settings.kafka_bootstrap}: start one with 'leadloom infra up'"
        ) from exc


def ensure_topics(settings: Settings, replication: int | None = None) -> list[str]:
    """Create every registry topic of the namespace that is missing; return those created.

    The Faust tables' changelog topics are created here too, before any worker starts:
    a worker that subscribes to a changelog while another is still creating it can miss
    it in its metadata ("Ignoring missing topic") and recover an empty table.
    """
    client = admin(settings)
    try:
        brokers = len(client.describe_cluster().get("brokers", [])) or 1
        rf = replication or min(3, brokers)
        existing = set(client.list_topics())
        wanted = settings.topics.all()
        new = [
            NewTopic(name, spec.partitions, rf)
            for name, spec in wanted.items()
            if name not in existing
        ]
        new += [
            NewTopic(name, RAW_PARTITIONS, rf, topic_configs={"cleanup.policy": "compact"})
            for name in (changelog_topic(settings.faust_app_id, t) for t in FAUST_TABLES)
            if name not in existing
        ]
        if new:
            try:
                client.create_topics(new)
            except TopicAlreadyExistsError:
                pass
            _wait_until_visible(settings, {t.name: t.num_partitions for t in new})
        return [t.name for t in new]
    finally:
        client.close()


def _wait_until_visible(settings: Settings, partitions: dict[str, int],
                        timeout_s: float = 30.0) -> None:
    """Return once a fresh client's metadata shows every new topic with its partitions.

    A consumer that joins its group while a topic it subscribes to is not in its metadata
    yet is assigned none of it ("No partition metadata for topic"); the sink then never
    read those topics (seen once in CI, on a fresh namespace).
    """
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=bootstrap_list(settings))
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            missing = [t for t, n in partitions.items()
                       if len(consumer.partitions_for_topic(t) or ()) < n]
            if not missing:
                return
            if time.monotonic() > deadline:
                raise KafkaUnavailable(f"topics not visible after {timeout_s:.0f}s: {missing}")
            time.sleep(0.2)
    finally:
        consumer.close()


class LagReader:
    """Consumer lag per partition, on clients kept open between readings (a sampler reads
    every few seconds; connecting each time would cost more than the reading).

    Raises the client's errors (an unreachable broker: ``KafkaUnavailable`` or a
    ``KafkaError``); after one, :meth:`close` it and make another.
    """

    def __init__(self, settings: Settings) -> None:
        from kafka import KafkaConsumer

        self._admin = admin(settings)
        try:
            self._consumer = KafkaConsumer(bootstrap_servers=bootstrap_list(settings),
                                           enable_auto_commit=False)
        except BaseException:
            self._admin.close()
            raise

    def partition_lags(self, group: str, topics: list[str]) -> dict[tuple[str, int], int]:
        """(topic, partition) -> messages not yet committed by ``group`` (a partition
        without a commit counts from its first offset), for every partition of ``topics``
        the broker's metadata shows."""
        from kafka import TopicPartition

        committed = self._admin.list_group_offsets(group).get(group, {})
        partitions = [
            TopicPartition(t, p)
            for t in topics
            for p in sorted(self._consumer.partitions_for_topic(t) or ())
        ]
        if not partitions:
            return {}
        ends = self._consumer.end_offsets(partitions)
        done = {tp: meta.offset for tp, meta in committed.items()
                if tp in ends and meta is not None and meta.offset >= 0}
        uncommitted = [tp for tp in partitions if tp not in done]
        if uncommitted:
            done.update(self._consumer.beginning_offsets(uncommitted))
        return {(tp.topic, tp.partition): max(0, ends[tp] - done[tp]) for tp in partitions}

    def close(self) -> None:
        self._consumer.close()
        self._admin.close()

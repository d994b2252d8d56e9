"""The sink: derived topics -> ClickHouse, in batches, offsets committed after the insert.

Reads the valid-events, leads, dead-letter and buyer topics with a kafka-python consumer
(auto commit off). Rows are already JSON in the table's columns, so a batch is passed
through to ``JSONEachRow`` inserts without parsing. A failed insert is retried (with
backoff) until it succeeds or the sink is stopped; offsets are committed only after
every table of the batch is written. Every table is idempotent on its key, so a retry
or a redelivery after a crash never double counts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
from kafka import KafkaConsumer
from kafka.errors import CommitFailedError

from leadloom.kafka import bootstrap_list
from leadloom.settings import Settings
from leadloom.store import Store
from schemas.deadletter import Reason
from schemas.registry import (
    BUYER_EVENTS_TABLE,
    BUYER_MERGES_TABLE,
    DEAD_LETTER_TABLE,
    LEADS_MINUTE_PARTS,
)
from streams.rows import SourceRef, dead_letter_row
from streams.validate import Rejected

log = logging.getLogger(__name__)


@dataclass
class SinkStats:
    messages_by_table: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    batches: int = 0
    insert_retries: int = 0
    last_flush_at: float = 0.0


class Sink:
    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        topics = settings.topics
        self._table_of_topic = {
            topics.leads_minute: LEADS_MINUTE_PARTS.name,
            topics.dead_letters: DEAD_LETTER_TABLE.name,
            topics.buyer_events: BUYER_EVENTS_TABLE.name,
            topics.buyer_merges: BUYER_MERGES_TABLE.name,
        }
        self.topics = topics.sink()
        self.stats = SinkStats()
        self._stop = threading.Event()
        self.consumer = KafkaConsumer(
            *self.topics,
            bootstrap_servers=bootstrap_list(settings),
            group_id=settings.sink_group,
            client_id=f"{settings.namespace}-sink",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=settings.sink_batch_max,
            fetch_max_bytes=64 * 1024 * 1024,
            max_partition_fetch_bytes=8 * 1024 * 1024,
            fetch_max_wait_ms=100,
        )

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        """Consume until :meth:`stop`; flush a batch when it is full or has lingered."""
        linger_s = self.settings.sink_linger_ms / 1000
        batch: dict[str, list[bytes]] = defaultdict(list)
        size = 0
        started = time.monotonic()
        try:
            while not self._stop.is_set():
                polled = self.consumer.poll(timeout_ms=100, max_records=self.settings.sink_batch_max)
                for records in polled.values():
                    for record in records:
                        table, row = self._route(record)
                        batch[table].append(row)
                    size += len(records)
                if size and (size >= self.settings.sink_batch_max
                             or time.monotonic() - started >= linger_s):
                    if not self._flush(batch):
                        return  # stopped while retrying: nothing committed, nothing lost
                    batch, size, started = defaultdict(list), 0, time.monotonic()
                elif not size:
                    started = time.monotonic()
        finally:
            self.consumer.close(autocommit=False)

    def _route(self, record) -> tuple[str, bytes]:  # type: ignore[no-untyped-def]
        """The table a derived record goes to; a record without one becomes a dead letter."""
        table = self._table_of_topic.get(record.topic)
        if table is None:
            table = next((v.decode() for k, v in record.headers or () if k == "table"), None)
        if table is not None:
            return table, record.value
        source = SourceRef(record.topic, record.partition, record.offset)
        log.error("%s carries no table header; dead-lettered", source)
        rejected = Rejected(Reason.WRONG_TOPIC, "derived record without a 'table' header")
        row = dead_letter_row(rejected, source, record.value, datetime.now(UTC))
        return DEAD_LETTER_TABLE.name, orjson.dumps(row)

    def _flush(self, batch: dict[str, list[bytes]]) -> bool:
        for table, rows in batch.items():
            delay = 0.2
            while True:
                try:
                    self.store.insert_json_rows(table, rows)
                    break
                except Exception as exc:  # infrastructure fault: retry where it happens
                    self.stats.insert_retries += 1
                    log.warning("insert of %d rows into %s failed (%s); retrying in %.1fs",
                                len(rows), table, exc, delay)
                    if self._stop.wait(delay):
                        return False
                    delay = min(delay * 2, 5.0)
            self.stats.messages_by_table[table] += len(rows)
        try:
            self.consumer.commit()
        except CommitFailedError as exc:
            # The group moved on while we retried; the rows are written and the
            # redelivered batch will collapse into them (idempotent tables).
            log.warning("offset commit refused after a slow insert: %s", exc)
        self.stats.batches += 1
        self.stats.last_flush_at = time.time()
        return True

"""The Faust app: validate, enrich and aggregate every raw topic.

One agent, ``validate-enrich-aggregate``, reads all raw topics as raw bytes (we decode
ourselves: Faust would log-and-skip a message it cannot deserialize). For each message:
- invalid -> a row on the dead-letter topic (reason, ``topic[partition]@offset``, raw bytes);
- valid   -> a row on the valid-events topic (header ``table`` names its ClickHouse table)
  and, for leads, an update of the changelog-backed ``leads_minute_state`` table plus the
  new snapshot of that entry on the leads topic.
Nothing in the loop raises for bad data: an agent that raises has its message acked
and lost. Outgoing sends are flushed before Faust commits the source offsets, so
delivery is at least once, and every downstream write is idempotent.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import faust
import orjson

from leadloom.settings import Settings
from schemas.registry import LEADS_STATE_TABLE, RAW_PARTITIONS, RAW_TOPICS
from streams.leads import LEAD_KIND_BY_EVENT_TYPE, PartKey, add, minute_of, part_row
from streams.rows import SourceRef, dead_letter_row, event_row, table_for
from streams.validate import Accepted, validate

log = logging.getLogger(__name__)

AGENT_NAME = "validate-enrich-aggregate"


def create_app(settings: Settings) -> faust.App:
    topics = settings.topics
    app = faust.App(
        settings.faust_app_id,
        broker=[f"kafka://{s}" for s in settings.kafka_bootstrap.split(",")],
        store=settings.worker_store,
        topic_partitions=RAW_PARTITIONS,
        topic_allow_declare=True,
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        broker_commit_every=5000,
        broker_commit_interval=0.5,
        stream_buffer_maxsize=8192,
        producer_linger_ms=5,
        producer_max_batch_size=512 * 1024,
        producer_max_request_size=4 * 1024 * 1024,
        consumer_max_fetch_size=8 * 1024 * 1024,
        table_standby_replicas=0,
        datadir=str(settings.data_dir / "faust"),
    )
    event_type_of = {topics.name(spec): spec.value_schema for spec in RAW_TOPICS}
    raw = app.topic(*event_type_of, key_type=bytes, value_type=bytes,
                    key_serializer="raw", value_serializer="raw")
    valid_out = app.topic(topics.valid_events, key_serializer="raw", value_serializer="raw")
    leads_out = app.topic(topics.leads_minute, key_serializer="raw", value_serializer="raw")
    dead_out = app.topic(topics.dead_letters, key_serializer="raw", value_serializer="raw")
    leads_state = app.Table(
        LEADS_STATE_TABLE, default=None, partitions=RAW_PARTITIONS, key_type=str
    )
    max_bytes = settings.max_message_bytes

    @app.agent(raw, name=AGENT_NAME)
    async def validate_enrich_aggregate(stream: faust.Stream) -> None:
        async for event in stream.events():
            message = event.message
            source = SourceRef(message.topic, message.partition, message.offset)
            outcome = validate(message.value, event_type_of[message.topic], max_bytes)
            if not isinstance(outcome, Accepted):
                log.info("dead letter %s: %s %s", source, outcome.reason, outcome.detail)
                row = dead_letter_row(outcome, source, message.value, datetime.now(UTC))
                await dead_out.send(key=message.topic.encode(), value=orjson.dumps(row))
                continue
            ev = outcome.event
            row = event_row(ev, outcome.enrichment, source)
            await valid_out.send(
                key=ev.event_id.encode(), value=orjson.dumps(row),
                headers={"table": table_for(ev).encode()},
            )
            kind = LEAD_KIND_BY_EVENT_TYPE.get(ev.event_type)
            cluster_id = outcome.enrichment.cluster_id
            if kind is None or cluster_id is None:
                continue
            key = PartKey(cluster_id, minute_of(ev.occurred_at), message.topic, message.partition)
            badge = getattr(ev.payload, "badge_id", None)
            state_key = key.encode()
            state, changed = add(leads_state.get(state_key), ev.event_id, badge)
            if changed:
                leads_state[state_key] = state
            # Re-send the snapshot even when nothing changed: after a crash the state may
            # have survived while its snapshot did not.
            snapshot = part_row(key, kind, state, datetime.now(UTC))
            await leads_out.send(key=state_key.encode(), value=orjson.dumps(snapshot))

    return app


def run_worker(settings: Settings, loglevel: str = "warn") -> None:
    """Run one stream worker in the foreground until SIGTERM/SIGINT."""
    app = create_app(settings)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()

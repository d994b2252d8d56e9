"""The Faust app: validate, enrich and aggregate every raw topic; resolve buyers.

``validate-enrich-aggregate`` reads all raw topics as raw bytes (we decode ourselves:
Faust would log-and-skip a message it cannot deserialize), in batches
(:mod:`streams.batch` does the work):
- invalid -> rows on the dead-letter topic (reason, ``topic[partition]@offset``, raw bytes);
- valid   -> rows on the valid-events topic (header ``table`` names the ClickHouse table)
  and, for leads, updates of the changelog-backed ``leads_minute_state`` table plus the
  new snapshots of the touched entries on the leads topic;
- buyer-bearing events -> identity records on the identity topic, keyed by fair.

``match-suppliers`` reads the matchmaking requests (one fair's supplier profiles and
inquiries in one partition, in order) and sends each inquiry's top suppliers as ``matches``
rows (:mod:`streams.matchmaking`; state in the changelog-backed ``matchmaking_state``).

``resolve-buyers`` reads the identity topic (one fair's records in one partition, in
order) and runs :mod:`streams.identity.stream`: the records it applies go to the
changelog-backed ``buyer_identity_log`` table, its rows to the buyer events, merges and
state topics.
Rows travel newline-joined, one Kafka message per table per batch, which is what makes
Python fast enough here: per-message sends dominated the cost. Batch size (in events: a
message counts its lines, :mod:`streams.faust_take`) and wait are
``LEADLOOM_WORKER_BATCH_MAX`` and ``LEADLOOM_WORKER_BATCH_WITHIN_MS``, the producer's linger
``LEADLOOM_WORKER_LINGER_MS``. Faust's private API is used only through
:mod:`streams.faust_seam` and :mod:`streams.faust_take`.
Every worker counts the messages it consumed per raw topic and its resolver's merges
(:class:`streams.metrics.Meter`) and sends them every ``metrics.INTERVAL_S`` as
``pipeline_metrics`` rows to ``<ns>.metrics`` (best effort: a failed send is logged, never
fatal). Its ``source`` is ``worker-<index>`` from :data:`WORKER_INDEX_ENV`, which the
supervisor sets (``worker-pid<pid>`` for a worker started by hand).
Nothing in the loop raises for bad data: an agent that raises has its message acked
and lost. Outgoing sends are flushed before Faust commits the source offsets, so
delivery is at least once, and every downstream write is idempotent.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import faust
import orjson
from faust.types import TP, EventT

from core.kafka import bootstrap_list, fetch_sizes
from core.settings import Settings
from schemas.deadletter import Reason
from schemas.registry import (
    BUYER_ALIASES,
    BUYERS,
    IDENTITY_LOG_TABLE,
    LEAD_CONTRIBUTIONS,
    LEADS_STATE_TABLE,
    MATCHMAKING_STATE_TABLE,
    RAW_PARTITIONS,
    RAW_TOPICS,
    Metric,
    worker_source,
)
from streams.batch import RawMessage, aggregate_leads, chunk_rows, process_batch
from streams.faust_seam import guarded_consumer, install_guarded_transport, set_in_partition_of
from streams.faust_take import take_weighted
from streams.identity.ordering import (
    Action,
    decide,
    needs_log_start,
    next_offset_key,
)
from streams.identity.stream import IdentityStreams, Outputs
from streams.matchmaking import Matchmaker
from streams.metrics import INTERVAL_S as METRICS_INTERVAL_S
from streams.metrics import WORKER_INDEX_ENV, Meter
from streams.offsets import Suspect, heal_stuck, learn_log_starts, rewind, scan_deliverable
from streams.rows import SourceRef, dead_letter_row
from streams.validate import Rejected

log = logging.getLogger(__name__)

AGENT_NAME = "validate-enrich-aggregate"
LEADS_AGENT_NAME = "aggregate-leads"
RESOLVE_AGENT_NAME = "resolve-buyers"
MATCH_AGENT_NAME = "match-suppliers"
HEAL_INTERVAL_S = 5.0
FAIL_STOP_EXIT_CODE = 70  # EX_SOFTWARE: the supervisor restarts the worker


def _raw_messages(events: list[EventT]) -> list[RawMessage]:
    return [RawMessage(e.message.topic, e.message.partition, e.message.offset, e.message.value,
                       dict(e.message.headers or ()))
            for e in events]


@asynccontextmanager
async def _fail_stop(agent: str) -> AsyncIterator[None]:
    """Stop the worker process at once if the I/O around a batch fails.

    Data never raises here (the pure core turns it into dead letters), so what does is an
    infrastructure fault, such as a send that cannot complete. An agent that raises has
    its batch acked by Faust and the commit moves past it: the batch would be lost. Exiting
    without a commit leaves the offsets where the last durable batch put them; the
    supervisor starts a new worker, which re-reads the batch (every write is idempotent).
    """
    try:
        yield
    except asyncio.CancelledError:
        raise  # shutdown: Faust stops the agent; nothing of this batch was acked
    except Exception:  # noqa: BLE001
        log.critical("agent %s: a batch's I/O failed; exiting uncommitted so that it is "
                     "re-read", agent, exc_info=True)
        logging.shutdown()
        os._exit(FAIL_STOP_EXIT_CODE)


def metrics_source() -> str:
    """This worker's ``pipeline_metrics.source``: ``worker-<index>`` as the supervisor set
    it, else ``worker-pid<pid>``."""
    index = os.environ.get(WORKER_INDEX_ENV, "")
    return worker_source(index if index.isdigit() else f"pid{os.getpid()}")


def create_app(settings: Settings, source: str | None = None) -> faust.App:
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
        broker_max_poll_records=4000,
        producer_linger=settings.worker_linger_ms / 1000,  # s (Faust's _ms form is deprecated)
        producer_max_batch_size=512 * 1024,
        producer_max_request_size=settings.kafka_wire_max_bytes,
        consumer_max_fetch_size=fetch_sizes(settings)["max_partition_fetch_bytes"],
        table_standby_replicas=0,
        # A crashed worker holds its partitions until its session expires: keep that short.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=2.0,
        datadir=str(settings.data_dir / "faust"),
    )
    install_guarded_transport(app)
    event_type_of = {topics.name(spec): spec.event_type for spec in RAW_TOPICS}
    raw = app.topic(*event_type_of, key_type=bytes, value_type=bytes,
                    key_serializer="raw", value_serializer="raw")
    valid_out = app.topic(topics.valid_events, key_serializer="raw", value_serializer="raw")
    leads_out = app.topic(topics.leads_minute, key_serializer="raw", value_serializer="raw")
    dead_out = app.topic(topics.dead_letters, key_serializer="raw", value_serializer="raw")
    identity_out = app.topic(topics.identity_records, key_serializer="raw",
                             value_serializer="raw")
    match_requests_out = app.topic(topics.match_requests, key_serializer="raw",
                                   value_serializer="raw")
    contributions = app.topic(topics.lead_contributions, key_type=bytes, value_type=bytes,
                              key_serializer="raw", value_serializer="raw")
    leads_state = app.Table(
        LEADS_STATE_TABLE, default=None, partitions=RAW_PARTITIONS, key_type=str
    )
    max_bytes = settings.max_message_bytes
    batch_max, within_s = agent_batching(settings)
    meter = Meter(source or metrics_source(),
                  [(Metric.EVENTS_CONSUMED, t) for t in event_type_of]
                  + [(Metric.RESOLVER_MERGES, "")], datetime.now(UTC))

    @app.agent(raw, name=AGENT_NAME)
    async def validate_enrich_aggregate(stream: faust.Stream) -> None:
        # take_weighted (Faust's take_events) acks a batch only after this body has run,
        # and Faust flushes the producer before committing offsets: at least once, never
        # ahead of the output.
        async for events in take_weighted(stream, batch_max, within_s):
            out = process_batch(_raw_messages(events), event_type_of, max_bytes,
                                LEAD_CONTRIBUTIONS.partitions)
            async with _fail_stop(AGENT_NAME):
                for table, rows in out.rows_by_table.items():
                    for block in chunk_rows(rows):
                        await valid_out.send(value=block, headers={"table": table.encode()})
                for block in chunk_rows(out.dead_letters):
                    await dead_out.send(value=block)
                for partition, lines in out.contributions_by_partition.items():
                    for block in chunk_rows(lines):
                        await contributions.send(value=block, partition=partition)
                for fair_id, records in out.identity_by_fair.items():
                    for block in chunk_rows(records):
                        await identity_out.send(key=fair_id.encode(), value=block)
                for fair_id, requests in out.match_requests_by_fair.items():
                    for block in chunk_rows(requests):
                        await match_requests_out.send(key=fair_id.encode(), value=block)
            # events, not messages: a batched message counts each of its lines
            meter.consumed(e.message.topic for e in events)
            for topic, extra in out.extra_events_by_topic.items():
                meter.add(Metric.EVENTS_CONSUMED, topic, extra)
            if out.dead_letters:
                log.info("%d dead letter(s) in a batch of %d", len(out.dead_letters), len(events))

    @app.agent(contributions, name=LEADS_AGENT_NAME)
    async def aggregate_leads_per_minute(stream: faust.Stream) -> None:
        async for events in take_weighted(stream, batch_max, within_s):
            out = aggregate_leads(_raw_messages(events), leads_state.get)
            async with _fail_stop(LEADS_AGENT_NAME):
                for key, update in out.state_updates.items():
                    # each leads entry belongs to one source partition (its key says which)
                    set_in_partition_of(leads_state, events[update.owner_index], key,
                                        update.state)
                for block in chunk_rows(out.snapshots):
                    await leads_out.send(value=block)
                for block in chunk_rows(out.dead_letters):
                    await dead_out.send(value=block)

    _add_resolver(app, settings, meter)
    _add_matchmaker(app, settings)
    _add_metrics(app, settings, meter)
    guarded = [*event_type_of, topics.identity_records, topics.lead_contributions,
               topics.match_requests]
    probe = functools.partial(scan_deliverable, bootstrap_list(settings))
    suspects: dict[TP, Suspect] = {}

    @app.timer(HEAL_INTERVAL_S)
    async def heal_stuck_commits() -> None:
        # Commits stuck behind a hole (a message Faust dropped, a transaction marker, an
        # aborted record) for two checks in a row: the broker says which it is.
        nonlocal suspects
        consumer = guarded_consumer(app)
        await learn_log_starts(consumer)
        suspects = await heal_stuck(consumer, suspects, guarded, probe)

    return app


def agent_batching(settings: Settings) -> tuple[int, float]:
    """The agents' batch size in events (``streams.faust_take``) and wait (s):
    ``LEADLOOM_WORKER_BATCH_*``."""
    return settings.worker_batch_max, settings.worker_batch_within_ms / 1000


def _add_metrics(app: faust.App, settings: Settings, meter: Meter) -> None:
    """Every ``METRICS_INTERVAL_S``: the interval's counts as rows to ``<ns>.metrics``."""
    metrics_out = app.topic(settings.topics.metrics, key_serializer="raw",
                            value_serializer="raw")

    async def send() -> None:
        rows = meter.rows(datetime.now(UTC))
        if not rows:
            return
        try:
            await metrics_out.send(value=b"\n".join(rows))
        except Exception:  # noqa: BLE001 - metrics are never worth stopping the worker for
            log.warning("sending %d metric rows failed; they are dropped", len(rows),
                        exc_info=True)

    @app.timer(METRICS_INTERVAL_S)
    async def send_metrics() -> None:
        await send()

    # On a clean stop, the counts since the last interval too: Faust sends this signal once
    # the agents have stopped and before it flushes the producer.
    @app.on_before_shutdown.connect
    async def send_last_metrics(_app: faust.App, **_kwargs: object) -> None:
        await send()


def _add_resolver(app: faust.App, settings: Settings, meter: Meter) -> None:
    """The ``resolve-buyers`` agent: identity records of each fair, in log order."""
    topics = settings.topics
    identity_in = app.topic(topics.identity_records, key_type=bytes, value_type=bytes,
                            key_serializer="raw", value_serializer="raw")
    events_out = app.topic(topics.buyer_events, key_serializer="raw", value_serializer="raw")
    merges_out = app.topic(topics.buyer_merges, key_serializer="raw", value_serializer="raw")
    state_out = app.topic(topics.buyer_state, key_serializer="raw", value_serializer="raw")
    dead_out = app.topic(topics.dead_letters, key_serializer="raw", value_serializer="raw")
    identity_log = app.Table(
        IDENTITY_LOG_TABLE, default=None, partitions=RAW_PARTITIONS, key_type=str
    )
    streams = IdentityStreams()
    batch_max, within_s = agent_batching(settings)

    async def resolve_batch(events: list[EventT]) -> None:
        """One batch of identity messages: resolve in offset order, log, send."""
        consumer = guarded_consumer(app)
        out = Outputs()
        skipped: dict[TP, tuple[Action, int | None]] = {}  # partition -> why, re-read from
        for event in events:
            # Buyer ids depend on the order records are applied (streams/identity/ordering.py):
            # past a hole, apply nothing more of the partition and re-read from the hole.
            tp, offset = event.message.tp, event.message.offset
            if tp in skipped:
                consumer.never_ack(event.message)
                continue
            next_key = next_offset_key(tp.partition)
            logged_next = identity_log.get(next_key)
            committed = bool(consumer.committed(tp))  # offset 0 committed: no progress
            log_start = None
            if needs_log_start(logged_next, committed):
                log_start = (await consumer.earliest_offsets(tp))[tp]
            decision = decide(offset, logged_next, committed, log_start)
            if decision.action is not Action.APPLY:
                skipped[tp] = (decision.action, decision.reread_from)
                consumer.never_ack(event.message)
                continue
            rejected_before, failed_before = len(out.rejected), len(out.failed)
            streams.resolve_block(event.message.value or b"", identity_log.get, out)
            for key, entry in out.logged:  # one entry per fair: the records it applied
                set_in_partition_of(identity_log, event, key, entry)
            out.logged.clear()
            if decision.next_offset is not None:
                set_in_partition_of(identity_log, event, next_key, decision.next_offset)
            source = SourceRef(event.message.topic, event.message.partition,
                               event.message.offset)
            failed = out.rejected[rejected_before:]
            failed += [(Reason.PROCESSING_ERROR, line, why)
                       for line, why in out.failed[failed_before:]]
            if failed:  # one line per message: a corrupt block may hold thousands
                log.error("%s: %d identity record(s) dead-lettered, the first %s: %s", source,
                          len(failed), failed[0][0], failed[0][2])
            for reason, line, why in failed:
                row = dead_letter_row(Rejected(reason, why), source, line,
                                      datetime.now(UTC), dict(event.message.headers or ()))
                await dead_out.send(value=orjson.dumps(row))
        for table, rows in ((BUYER_ALIASES.name, out.aliases), (BUYERS.name, out.buyers)):
            for block in chunk_rows(rows):
                await state_out.send(value=block, headers={"table": table.encode()})
        for block in chunk_rows(out.merges):
            await merges_out.send(value=block)
        meter.add(Metric.RESOLVER_MERGES, "", len(out.merges))
        for block in chunk_rows(out.events):
            await events_out.send(value=block)
        for tp, (action, reread_from) in skipped.items():
            if action is Action.REPLAY:
                log.warning("%s: progress was committed but the identity log has none of it; "
                            "replaying from offset %s", tp, reread_from)
            else:
                log.warning("%s: offset %s is next but did not come first; re-reading", tp,
                            reread_from)
            await rewind(consumer, tp, reread_from)

    @app.agent(identity_in, name=RESOLVE_AGENT_NAME)
    async def resolve_buyers(stream: faust.Stream) -> None:
        async for events in take_weighted(stream, batch_max, within_s):
            async with _fail_stop(RESOLVE_AGENT_NAME):
                await resolve_batch(events)


def _add_matchmaker(app: faust.App, settings: Settings) -> None:
    """The ``match-suppliers`` agent: each fair's profiles and inquiries, in log order."""
    topics = settings.topics
    requests_in = app.topic(topics.match_requests, key_type=bytes, value_type=bytes,
                            key_serializer="raw", value_serializer="raw")
    matches_out = app.topic(topics.matches, key_serializer="raw", value_serializer="raw")
    dead_out = app.topic(topics.dead_letters, key_serializer="raw", value_serializer="raw")
    state = app.Table(
        MATCHMAKING_STATE_TABLE, default=None, partitions=RAW_PARTITIONS, key_type=str
    )
    matchmaker = Matchmaker()
    batch_max, within_s = agent_batching(settings)

    @app.agent(requests_in, name=MATCH_AGENT_NAME)
    async def match_suppliers(stream: faust.Stream) -> None:
        async for events in take_weighted(stream, batch_max, within_s):
            async with _fail_stop(MATCH_AGENT_NAME):
                rows: list[bytes] = []
                for event in events:
                    out = matchmaker.apply_block(event.message.value or b"", state.get,
                                                 state.items)
                    for key, value in out.writes:
                        set_in_partition_of(state, event, key, value)
                    rows.extend(out.rows)
                    source = SourceRef(event.message.topic, event.message.partition,
                                       event.message.offset)
                    for line, why in out.failed:
                        log.error("%s: matchmaking request dead-lettered: %s", source, why)
                        row = dead_letter_row(Rejected(Reason.PROCESSING_ERROR, why), source,
                                              line, datetime.now(UTC),
                                              dict(event.message.headers or ()))
                        await dead_out.send(value=orjson.dumps(row))
                for block in chunk_rows(rows):
                    await matches_out.send(value=block)


# The worker allocates a few containers per event and keeps large tables in memory: at
# Python's default (a gen-0 collection every 700 allocations, and full collections of the
# growing tables) the collector took about a sixth of the processing core's time
# (measured offline: 60.5 -> 52.3 us/event, leads aggregation 17.9 -> 7.8).
GC_THRESHOLDS = (50_000, 50, 100)


def run_worker(settings: Settings, loglevel: str = "warn") -> None:
    """Run one stream worker in the foreground until SIGTERM/SIGINT."""
    gc.set_threshold(*GC_THRESHOLDS)
    app = create_app(settings)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    # Client libraries log every send at DEBUG; building those records costs real time.
    for name in ("aiokafka", "faust", "mode"):
        logging.getLogger(name).setLevel(max(logging.INFO, logging.getLogger().level))
    worker.execute_from_commandline()

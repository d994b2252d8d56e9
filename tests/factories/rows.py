"""A simulated fair day turned into table rows by the project's own row builders.

The pure core the stream agents run, without Kafka: ``streams.batch.process_batch``
(raw event rows via ``streams.rows.event_row``, dead letters via ``dead_letter_row``, lead
contributions, identity records), ``aggregate_leads`` (``leads_minute_parts`` rows via
``streams.leads.part_row``) and the identity engine (``streams.identity.stream``: buyer
events, aliases, buyers, merges), the matchmaking stream (``streams.matchmaking``) and the
surge watcher's row builder (``streams.surges.alert_row``), and the pipeline's own
metrics (``streams.metrics``: a worker's counts, the sink's batch times and latency, lag
samples), the raw archive (``streams.rows.archive_row``), an ops audit row
(``leadloom.commands.audit``) and a dead-letter retry row
(``leadloom.commands.deadletters_retry``). Rows are the JSON bytes the sink would insert.
"""

from __future__ import annotations

import itertools
import zlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson

from core.settings import Settings
from leadloom.commands.audit import Audit
from leadloom.commands.deadletters_retry import LetterKey, retry_row
from producers.simulator import Simulation, simulate_fair
from schemas.deadletter import Reason
from schemas.registry import (
    BUYER_ALIASES,
    BUYER_EVENTS_TABLE,
    BUYER_MERGES_TABLE,
    BUYERS,
    DEAD_LETTER_RETRIES,
    DEAD_LETTER_TABLE,
    LEAD_CONTRIBUTIONS,
    LEADS_MINUTE_PARTS,
    MATCHES_TABLE,
    PIPELINE_METRICS,
    RAW_ARCHIVE,
    RAW_PARTITIONS,
    RAW_TOPICS,
    REPLAY_AUDIT,
    SCANS,
    SURGE_ALERTS_TABLE,
    Metric,
    MetricSource,
    RetryOutcome,
    TopicNames,
    worker_source,
)
from streams.batch import RawMessage, aggregate_leads, process_batch
from streams.identity.stream import IdentityStreams, Outputs
from streams.matchmaking import Matchmaker
from streams.metrics import LagReport, LatencyWindow, Meter, metric_row, received_ms
from streams.rows import SourceRef, archive_row, dead_letter_row
from streams.surges import Candidate, alert_row
from streams.validate import Rejected

NOW = datetime(2026, 3, 26, 12, 0, tzinfo=UTC)  # the builders' "now" (ingest/resolve time)


@dataclass
class DayRows:
    """Rows per table name, and the simulation they came from (its ground truth)."""

    rows: dict[str, list[bytes]]
    sim: Simulation

    def decoded(self, table: str) -> list[dict]:
        return [orjson.loads(r) for r in self.rows.get(table, [])]


def fair_day_rows(events: int = 3000, seed: int = 1, namespace: str = "rows") -> DayRows:
    """Simulate a day of ``events`` valid events (plus resends and malformed input) and
    build every row the pipeline would store for it, each message processed once."""
    sim = simulate_fair(events, seed)
    topics = TopicNames(namespace)
    offsets: dict[tuple[str, int], itertools.count] = defaultdict(itertools.count)
    messages = []
    for m in sim.messages:
        topic = topics.raw(m.event_type)
        # Any partitioner will do: leads and identity are regrouped by the project's keys.
        partition = zlib.crc32(m.key or b"") % RAW_PARTITIONS
        messages.append(RawMessage(topic, partition, next(offsets[topic, partition]), m.value))
    event_type_of = {topics.name(spec): spec.value_schema for spec in RAW_TOPICS}
    out = process_batch(messages, event_type_of, Settings().max_message_bytes,
                        LEAD_CONTRIBUTIONS.partitions, now=NOW)
    rows: dict[str, list[bytes]] = defaultdict(list)
    for table, table_rows in out.rows_by_table.items():
        rows[table].extend(table_rows)
    rows[DEAD_LETTER_TABLE.name].extend(out.dead_letters)

    contributions = [
        RawMessage(topics.lead_contributions, partition, 0, b"\n".join(lines))
        for partition, lines in sorted(out.contributions_by_partition.items())
    ]
    leads = aggregate_leads(contributions, {}.get, now=NOW)
    rows[LEADS_MINUTE_PARTS.name].extend(leads.snapshots)
    rows[DEAD_LETTER_TABLE.name].extend(leads.dead_letters)

    identity, log = IdentityStreams(), {}
    resolved = Outputs()
    for offset, (_fair, lines) in enumerate(sorted(out.identity_by_fair.items())):
        identity.resolve_block(b"\n".join(lines), log.get, resolved)
        log.update(resolved.logged)
        resolved.logged.clear()
        source = SourceRef(topics.identity_records, 0, offset)
        for reason, failures in ((Reason.BAD_JSON, resolved.rejected),
                                 (Reason.PROCESSING_ERROR, resolved.failed)):
            rows[DEAD_LETTER_TABLE.name].extend(
                orjson.dumps(dead_letter_row(Rejected(reason, why), source, line, NOW))
                for line, why in failures)
            failures.clear()
    rows[BUYER_EVENTS_TABLE.name].extend(resolved.events)
    rows[BUYER_ALIASES.name].extend(resolved.aliases)
    rows[BUYERS.name].extend(resolved.buyers)
    rows[BUYER_MERGES_TABLE.name].extend(resolved.merges)

    matchmaker, state = Matchmaker(), {}
    for _fair, lines in sorted(out.match_requests_by_fair.items()):
        matched = matchmaker.apply_block(b"\n".join(lines), state.get, state.items, now=NOW)
        state.update(matched.writes)
        rows[MATCHES_TABLE.name].extend(matched.rows)
    rows[SURGE_ALERTS_TABLE.name].append(orjson.dumps(_busiest_window_alert(rows)))
    rows[PIPELINE_METRICS.name].extend(_metric_rows(messages, rows, topics))
    stamp = int(NOW.timestamp() * 1000)
    rows[RAW_ARCHIVE.name].extend(
        orjson.dumps(archive_row(m.topic, m.partition, m.offset, stamp, None, m.value,
                                 list(m.headers.items())))
        for m in messages)
    audit = Audit("replay reprocess", {"source": "kafka"}, dry_run=True, started_at=NOW)
    rows[REPLAY_AUDIT.name].append(orjson.dumps(audit.row(NOW)))
    letter = orjson.loads(rows[DEAD_LETTER_TABLE.name][0])
    key = LetterKey(SourceRef(letter["origin_topic"], letter["origin_partition"],
                              letter["origin_offset"]), letter["raw_sha256"])
    rows[DEAD_LETTER_RETRIES.name].append(orjson.dumps(retry_row(
        key, NOW, audit.audit_id, RetryOutcome.STILL_INVALID, letter["reason"])))
    return DayRows(dict(rows), sim)


def _metric_rows(messages: list[RawMessage], rows: dict[str, list[bytes]],
                 topics: TopicNames) -> list[bytes]:
    """The day's ``pipeline_metrics`` rows, one of each kind, from the metrics builders: a
    worker's counts, the sink's batch times and latency (stored a second after each event
    was received), lag samples."""
    meter = Meter(worker_source(0), [(Metric.RESOLVER_MERGES, "")], NOW - timedelta(seconds=5))
    meter.consumed(m.topic for m in messages)
    meter.add(Metric.RESOLVER_MERGES, "", len(rows[BUYER_MERGES_TABLE.name]))
    out = meter.rows(NOW)
    latency = LatencyWindow()
    for table in (SCANS.name, DEAD_LETTER_TABLE.name):
        out.append(metric_row(NOW, MetricSource.SINK, Metric.SINK_BATCH_MS, 12.5, topic=table))
    for row in rows[SCANS.name]:
        received = received_ms(row)
        latency.stored(received[0] + 1000, received)
    out += latency.rows(NOW, 5.0)
    out += LagReport().rows(NOW, {("rows-sink", topics.metrics, p): p for p in range(3)})
    return out


def _busiest_window_alert(rows: dict[str, list[bytes]]) -> dict[str, object]:
    """A surge alert row (the watcher's builder) for the day's busiest cluster and window:
    the row contract needs one, whether or not the day has a real surge."""
    windows: dict[tuple[str, str, datetime], int] = defaultdict(int)
    for row in rows[SCANS.name]:
        scan = orjson.loads(row)
        at = datetime.fromisoformat(scan["occurred_at"])
        start = at.replace(minute=at.minute // 5 * 5, second=0, microsecond=0)
        windows[scan["fair_id"], scan["cluster_id"], start] += 1
    (fair, cluster, start), events = max(windows.items(), key=lambda kv: (kv[1], kv[0]))
    watermark = start + timedelta(hours=1)
    candidate = Candidate(fair, cluster, start, events, events / 4, 9.5, Decimal("0"), watermark)
    return alert_row(candidate, NOW, late=False)

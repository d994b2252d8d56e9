"""The processing core's offline rate: what the workers compute, with no Kafka and no Faust.

``leadloom bench`` divides the end-to-end rate by this one: the share of the core's speed
that survives the stream framework, the broker and the sink. The same raw messages go
through the same pure functions, in the workers' batch size and in the order the agents
apply them: ``process_batch`` (validation, enrichment, rows, lead contributions, identity
records, match requests), then ``aggregate_leads`` on the contributions, the identity
resolver on the identity records and the matchmaker on the match requests, each block cut
as the agents' output is cut (``chunk_rows``). Tables are dicts here; nothing is sent.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Sequence
from dataclasses import dataclass

from core.settings import Settings
from producers.simulator.recorder import OutgoingMessage
from schemas.registry import LEAD_CONTRIBUTIONS, RAW_PARTITIONS, RAW_TOPIC_BY_EVENT_TYPE
from streams.app import GC_THRESHOLDS, agent_batching
from streams.batch import RawMessage, aggregate_leads, chunk_rows, process_batch
from streams.identity.stream import IdentityStreams, Outputs
from streams.matchmaking import Matchmaker


@dataclass(frozen=True)
class CoreRate:
    events: int  # raw messages processed
    seconds: float  # CPU time of this thread (the core is single-threaded)
    stages_s: dict[str, float]  # of which: validate, leads, resolve, match

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    @property
    def us_per_event(self) -> float:
        return self.seconds / self.events * 1e6 if self.events else 0.0


def offline_core_rate(messages: Sequence[OutgoingMessage], settings: Settings) -> CoreRate:
    """Run ``messages`` through the processing core once; its thread CPU time per stage.

    Raw messages are spread over the raw partitions round-robin (partitions only name
    sources here). CPU time rather than wall time: the machine is shared with whatever
    else runs, and the core never waits. The collector runs as in a worker
    (``streams.app.GC_THRESHOLDS``), so that the two rates compare like with like.
    """
    saved = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        return _run_core(messages, settings)
    finally:
        gc.set_threshold(*saved)


def _run_core(messages: Sequence[OutgoingMessage], settings: Settings) -> CoreRate:
    topics = settings.topics
    event_type_of = {topics.raw(t): t for t in RAW_TOPIC_BY_EVENT_TYPE}
    contributions_topic = topics.lead_contributions
    raw = [RawMessage(topics.raw(m.event_type), i % RAW_PARTITIONS, i // RAW_PARTITIONS,
                      m.value)
           for i, m in enumerate(messages)]
    batch_max, _ = agent_batching(settings)
    leads_state: dict[str, dict] = {}
    identity_log: dict[str, dict | list[dict]] = {}
    match_state: dict[str, object] = {}
    identity = IdentityStreams()
    matchmaker = Matchmaker()
    stages = {"validate": 0.0, "leads": 0.0, "resolve": 0.0, "match": 0.0}
    clock = time.thread_time
    for start in range(0, len(raw), batch_max):
        t0 = clock()
        out = process_batch(raw[start:start + batch_max], event_type_of,
                            settings.max_message_bytes, LEAD_CONTRIBUTIONS.partitions)
        t1 = clock()
        contributions = [RawMessage(contributions_topic, partition, start, block)
                         for partition, lines in out.contributions_by_partition.items()
                         for block in chunk_rows(lines)]
        leads = aggregate_leads(contributions, leads_state.get)
        for key, update in leads.state_updates.items():
            leads_state[key] = update.state
        t2 = clock()
        for records in out.identity_by_fair.values():
            for block in chunk_rows(records):
                resolved = Outputs()
                identity.resolve_block(block, identity_log.get, resolved)
                identity_log.update(resolved.logged)
        t3 = clock()
        for requests in out.match_requests_by_fair.values():
            for block in chunk_rows(requests):
                matched = matchmaker.apply_block(block, match_state.get, match_state.items)
                match_state.update(matched.writes)
        t4 = clock()
        for name, spent in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            stages[name] += spent
    return CoreRate(len(raw), sum(stages.values()), stages)

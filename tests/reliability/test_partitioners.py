"""Counts do not depend on the partitioner of the client that sent the raw events (issue 7,
finding 5): kcat's default is consistent_random (CRC32 of the key), the Java client's and
kafka-python's is murmur2, and ``random`` ignores the key. A resend through another client
lands on another partition; it is still one event, one lead, one badge."""

from __future__ import annotations

import time
from collections import defaultdict

import orjson
import pytest

from core import queries as q
from leadloom.pipeline import Pipeline
from schemas.registry import LEADS_PER_CLUSTER_MINUTE
from tests.reliability import kcat
from tests.reliability.conftest import Figures
from tests.reliability.ledger import audit, fail_unless_exact, settle
from tests.reliability.traffic import INQUIRY, PROCUREMENT, SCAN, Message, message, valid_event

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

KCAT_DEFAULT = None  # consistent_random


def event_id_of(value: bytes | None) -> str:
    return orjson.loads(value)["event_id"] if value else "?"


def partitions_per_event(pipe: Pipeline) -> dict[str, set[tuple[str, int]]]:
    landed = kcat.read_back(pipe.settings, event_id_of)
    where: dict[str, set[tuple[str, int]]] = defaultdict(set)
    for at in landed:
        where[at.label].add((at.topic, at.partition))
    return where


def lead_totals(pipe: Pipeline) -> dict[str, int]:
    assert pipe.store is not None
    query, db = pipe.store.query, pipe.settings.clickhouse_database
    streamed = q.run(q.STREAM_LEADS_BY_CLUSTER, query, db)
    per_minute = query(f"SELECT sum(scans), sum(inquiries), sum(procurement_steps), "
                       f"sum(distinct_badges) FROM {db}.{LEADS_PER_CLUSTER_MINUTE.name}").rows[0]
    return {
        "stream scans": sum(c["scans"] for c in streamed.values()),
        "stream inquiries": sum(c["inquiries"] for c in streamed.values()),
        "stream procurement steps": sum(c["procurement_steps"] for c in streamed.values()),
        "per-minute scans": int(per_minute[0]),
        "per-minute inquiries": int(per_minute[1]),
        "per-minute procurement steps": int(per_minute[2]),
        "per-minute distinct badges": int(per_minute[3]),
        "stored badges": q.run(q.BADGES_SEEN, query, db),
    }


def send_and_settle(pipe: Pipeline, messages: list[Message], partitioner: str | None) -> float:
    kcat.produce(pipe.settings, messages, partitioner=partitioner)
    idle, seconds, why = settle(pipe, 120)
    assert idle, why
    return seconds


def test_20_scans_resent_with_murmur2_are_still_20_scans_and_20_badges(
    pipeline: Pipeline, figures: Figures,
) -> None:
    scans = [message(valid_event(SCAN)) for _ in range(20)]  # 20 badges, one scan each
    send_and_settle(pipeline, scans, KCAT_DEFAULT)
    start = time.monotonic()
    send_and_settle(pipeline, scans, "murmur2_random")

    moved = [e for e, where in partitions_per_event(pipeline).items() if len(where) > 1]
    assert moved, "the two partitioners put some resends on another partition"
    totals = lead_totals(pipeline)
    found = audit(pipeline, scans, kcat.read_back(pipeline.settings, lambda _v: "valid"))
    figures.record(f"20 scans resent with another partitioner ({len(moved)} moved)",
                   lost=found.lost, doubled=found.doubled, seconds=time.monotonic() - start,
                   stream_scans=totals["stream scans"])
    assert totals == {
        "stream scans": 20, "stream inquiries": 0, "stream procurement steps": 0,
        "per-minute scans": 20, "per-minute inquiries": 0, "per-minute procurement steps": 0,
        "per-minute distinct badges": 20, "stored badges": 20,
    }
    fail_unless_exact(True, "", found, "scans resent with murmur2")


def test_every_lead_kind_resent_with_every_partitioner_is_counted_once(
    pipeline: Pipeline, figures: Figures,
) -> None:
    events = [message(valid_event(t)) for t in (INQUIRY, PROCUREMENT, SCAN) for _ in range(20)]
    partitioners = (KCAT_DEFAULT, "murmur2_random", "random")
    start = time.monotonic()
    for partitioner in partitioners:
        send_and_settle(pipeline, events, partitioner)

    moved = [e for e, where in partitions_per_event(pipeline).items() if len(where) > 1]
    assert len(moved) > 20, "resends landed on other partitions for every lead kind"
    totals = lead_totals(pipeline)
    found = audit(pipeline, events, kcat.read_back(pipeline.settings, lambda _v: "valid"))
    figures.record(f"60 leads sent 3x with 3 partitioners ({len(moved)} moved)",
                   lost=found.lost, doubled=found.doubled, seconds=time.monotonic() - start)
    assert totals == {
        "stream scans": 20, "stream inquiries": 20, "stream procurement steps": 20,
        "per-minute scans": 20, "per-minute inquiries": 20, "per-minute procurement steps": 20,
        "per-minute distinct badges": 20, "stored badges": 20,
    }
    fail_unless_exact(True, "", found, "leads resent with three partitioners")

"""Buyer identity in the running pipeline: real broker, two workers, six partitions."""

from __future__ import annotations

import os
import signal
import threading
import time

import orjson
import pytest

from core import queries as q
from core.kafka import admin, producer
from core.settings import Settings
from leadloom.pipeline import Pipeline
from producers.simulator import simulate_fair
from producers.simulator.publish import publish
from schemas.reference import booth_roster
from schemas.registry import IDENTITY_LOG_TABLE, changelog_topic
from streams.identity.stream import IdentityStreams, Outputs
from tests.conftest import running_pipeline
from tests.factories import events as f
from tests.factories.topics import topic_log
from tests.integration.test_pipeline import settle, stored

pytestmark = pytest.mark.integration


@pytest.fixture
def two_workers(pipeline_settings: Settings):
    with running_pipeline(pipeline_settings, workers=2) as pipe:
        yield pipe


def unique_buyers(pipe: Pipeline, cluster: str) -> int:
    return q.run(q.UNIQUE_BUYERS_BY_CLUSTER, *stored(pipe)).get(cluster, 0)


def send(pipe: Pipeline, *docs: dict) -> None:
    prod = producer(pipe.settings)
    for doc in docs:
        payload = doc["payload"]
        key = (payload.get("badge_id") or doc["event_id"]).encode()
        prod.send(pipe.settings.topics.raw(doc["event_type"]), key=key, value=f.encode(doc))
    prod.flush()
    prod.close()


def test_a_linking_inquiry_after_both_buyers_scans_merges_them_within_seconds(
    two_workers: Pipeline,
) -> None:
    pipe = two_workers
    booth = booth_roster()[0]
    send(
        pipe,
        f.registration(badge_id="B-X", full_name="陈静", email="chen.jing@silkroad.example",
                       phone=None, country="CN"),
        f.registration(badge_id="B-Y", full_name="Chen Jing", email=None,
                       phone="+86 139 1234 5678", country="CN"),
        f.scan(badge_id="B-X", booth_id=booth.id),
        f.scan(badge_id="B-Y", booth_id=booth.id),
    )
    settle(pipe, 120)
    assert unique_buyers(pipe, booth.cluster_id) == 2
    sent_at = time.monotonic()
    send(pipe, f.inquiry(full_name="陈静", email="Chen.Jing@silkroad.example",
                         phone="0086 139-1234-5678", cluster_id=booth.cluster_id))
    while unique_buyers(pipe, booth.cluster_id) != 1:
        assert time.monotonic() - sent_at < 15, "the merge did not show within 15 s"
        time.sleep(0.1)
    print(f"merge visible in unique buyers {time.monotonic() - sent_at:.2f} s after the send")
    query, db = stored(pipe)
    merges = query(f"SELECT survivor, absorbed, evidence FROM {db}.buyer_merges FINAL").rows
    assert len(merges) == 1 and merges[0][0] != merges[0][1]
    assert set(merges[0][2]) & {"email", "phone"}
    profiles = query(f"SELECT buyer_id, merged_into, badges FROM {db}.buyers FINAL").rows
    live = [p for p in profiles if not p[1]]
    assert len(live) == 1 and sorted(live[0][2]) == ["B-X", "B-Y"]
    assert q.run(q.BUYERS_RESOLVED, query, db) == 1


def identity_log(settings: Settings) -> list[bytes]:
    """Every message of the identity topic, partition by partition, in log order."""
    values = topic_log(settings, settings.topics.identity_records)
    return [v for p in sorted(values) for v in values[p]]


def linked_pair(n: int) -> tuple[list[dict], dict]:
    """Two registrations of one person with nothing in common but the name, a scan each,
    and the inquiry that links them (email of one, phone of the other)."""
    booth = booth_roster()[n]
    email, phone = f"liu.yang{n}@silkroad.example", f"+86 139 0000 {n:04d}"
    first = [
        f.registration(badge_id=f"B-P{n}", full_name="刘洋", email=email, phone=None),
        f.registration(badge_id=f"B-Q{n}", full_name="Liu Yang", email=None, phone=phone),
        f.scan(badge_id=f"B-P{n}", booth_id=booth.id),
        f.scan(badge_id=f"B-Q{n}", booth_id=booth.id),
    ]
    return first, f.inquiry(full_name="刘洋", email=email, phone=phone,
                            cluster_id=booth.cluster_id)


def test_a_killed_worker_yields_the_buyers_and_merges_of_an_uninterrupted_run(
    two_workers: Pipeline,
) -> None:
    pipe = two_workers
    sim = simulate_fair(12000, seed=5)
    pairs = [linked_pair(n) for n in range(5)]
    send(pipe, *(doc for first, _ in pairs for doc in first))
    published: list[object] = []

    def publish_day() -> None:
        try:
            published.append(publish(sim.messages, pipe.settings, rate=4000))
        except Exception as exc:  # surfaced below, not lost in the thread
            published.append(exc)

    publisher = threading.Thread(target=publish_day)
    publisher.start()
    query, db = stored(pipe)
    # Kill each worker once, mid-stream: one of them is resolving the fair's records.
    # Between the kills, the inquiries that link the pairs arrive: merges mid-recovery.
    for victim_index, after_rows in ((0, 1500), (1, 5000)):
        deadline = time.monotonic() + 120
        while query(f"SELECT count() FROM {db}.buyer_events").rows[0][0] < after_rows:
            assert time.monotonic() < deadline, "no buyer events before the kill"
            time.sleep(0.2)
        victim = pipe.processes[victim_index]
        assert victim is not None and victim.poll() is None
        os.kill(victim.pid, signal.SIGKILL)
        if victim_index == 0:
            send(pipe, *(link for _, link in pairs))
    publisher.join()
    assert not isinstance(published[0], Exception), published[0]
    settle(pipe, 300)
    # the supervisor restarts each killed worker (after a short delay when it died young);
    # the survivor may have settled everything before the second restart came
    deadline = time.monotonic() + 60
    while pipe.restarts < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert pipe.restarts >= 2

    # The uninterrupted run: the same engine over the same identity log, start to end.
    reference, out, log = IdentityStreams(), Outputs(), {}
    for block in identity_log(pipe.settings):
        reference.resolve_block(block, log.get, out)
        log.update(out.logged)
        out.logged.clear()
    assert not out.rejected
    (fair,) = reference.fairs.values()
    expected_buyer = {rec["id"]: fair.buyer_of(rec["id"]) for rec in fair.log}
    expected_merges = {(f"buyer:{m.survivor}", f"buyer:{m.absorbed}", m.record_id,
                        tuple(m.evidence)) for m in fair.resolver.merges}
    assert len(expected_merges) >= len(pairs), "every pair was merged"

    stored_buyer = q.run(q.BUYER_OF_ALIAS, query, db)
    assert stored_buyer == expected_buyer
    stored_merges = {(s, a, r, tuple(e)) for s, a, r, e in query(
        f"SELECT survivor, absorbed, record_id, evidence FROM {db}.buyer_merges FINAL").rows}
    assert stored_merges == expected_merges
    events = query(f"SELECT uniqExact(event_id), uniqExact(buyer_id) "
                   f"FROM {db}.buyer_events_resolved").rows[0]
    expected_events = sum(n for t, n in sim.ground_truth["expected_by_type"].items()
                          if t != "supplier_profile") + sum(len(a) + 1 for a, _ in pairs)
    if events[0] != expected_events:
        seen = {r[0] for r in query(f"SELECT DISTINCT event_id FROM {db}.buyer_events").rows}
        logged = {orjson.loads(line)["event_id"] for block in identity_log(pipe.settings)
                  for line in block.split(b"\n")}
        wanted = set(sim.ground_truth["buyer_of_record"]) | {
            d["event_id"] for first, link in pairs for d in (*first, link)}
        missing = sorted(wanted - seen)[:5]
        raw = {r[0]: r[1:] for t in ("scans", "registrations", "inquiries", "procurement_steps")
               for r in query(f"SELECT event_id, source_topic, source_partition, source_offset"
                              f" FROM {db}.{t}").rows}
        pytest.fail(f"{events[0]} buyer events stored of {expected_events}: missing {missing},"
                    f" in the identity log: {[m in logged for m in missing]},"
                    f" raw rows: {[raw.get(m) for m in missing]}")
    assert events[1] == len(set(expected_buyer.values()))


def test_a_resolver_that_lost_its_log_replays_the_identity_topic(
    pipeline_settings: Settings,
) -> None:
    registration = f.registration(badge_id="B-LOST", full_name="王芳", email="wf@example.com")
    with running_pipeline(pipeline_settings) as pipe:
        send(pipe, registration)
        settle(pipe, 120)
    # The state is gone (a changelog deleted by mistake), the committed offsets are not.
    changelog = changelog_topic(pipeline_settings.faust_app_id, IDENTITY_LOG_TABLE)
    client = admin(pipeline_settings)
    try:
        client.delete_topics([changelog])
        deadline = time.monotonic() + 60
        while changelog in client.list_topics():
            assert time.monotonic() < deadline, "the changelog was not deleted"
            time.sleep(0.5)
    finally:
        client.close()
    with running_pipeline(pipeline_settings) as pipe:
        scan = f.scan(badge_id="B-LOST")
        send(pipe, scan)
        settle(pipe, 120)
        query, db = stored(pipe)
        rows = query(f"SELECT alias, buyer_id FROM {db}.buyer_events "
                     f"WHERE event_id = '{scan['event_id']}'").rows
    # resolved on the replayed state: the badge belongs to the registration's buyer
    assert rows == [[registration["event_id"], f"buyer:{registration['event_id']}"]]


def test_identity_lines_that_break_the_schema_are_dead_lettered_with_their_own_reasons(
    pipeline_settings: Settings,
) -> None:
    # The identity topic is the workers' own: write to it as a faulty writer would.
    fair_id = f.scan()["fair_id"]
    good = {"event_id": "ident-ok", "event_type": "booth_scan", "fair_id": fair_id,
            "occurred_at": "2026-03-26T02:15:30.000+00:00", "cluster_id": "", "exhibitor_id": "",
            "booth_id": "", "badge_id": "B-SCHEMA", "consent": False, "contact": None}
    unknown_field = orjson.dumps({**good, "event_id": "ident-extra", "device": "x"})
    not_json = b'{"event_id": "ident-cut", "event_'
    topic = pipeline_settings.topics.identity_records
    with running_pipeline(pipeline_settings) as pipe:
        prod = producer(pipe.settings)
        prod.send(topic, key=fair_id.encode(), value=orjson.dumps(good) + b"\n" + unknown_field)
        prod.send(topic, key=fair_id.encode(), value=not_json)
        prod.flush()
        prod.close()
        settle(pipe, 120)
        query, db = stored(pipe)
        dead = query(f"SELECT reason, base64Decode(raw_base64) FROM {db}.dead_letters FINAL "
                     f"WHERE source_topic = '{topic}' ORDER BY source_offset").rows
        resolved = query(f"SELECT buyer_id FROM {db}.buyer_events "
                         f"WHERE event_id = 'ident-ok'").rows
    assert [(r[0], r[1].encode()) for r in dead] == [
        ("identity_invalid", unknown_field), ("identity_bad_json", not_json)]
    assert resolved == [["buyer:badge:B-SCHEMA"]]  # the good line of the block still resolved

"""`leadloom groups` and `groups reset --to-time` on the real broker, through the CLI.

Two batches with explicit timestamps go to every partition of one sink topic; the sink's
group commits part of the first. The listing must show the exact lag; a reset to a time
between the batches must commit, per partition, the offset of the first message at or
after that time (read back from the broker), and every refusal must change nothing.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from core.kafka import admin, bootstrap_list, ensure_topics
from core.settings import Settings
from tests.factories.cli import ops_rows, run_cli, run_on_terminal

PER_BATCH = 3  # messages per partition and batch
COMMITTED = 2  # offset the group commits on every partition before the listing
GAP_MS = 60_000  # between the batches' timestamps




def _committed(settings: Settings, group: str) -> dict[int, int]:
    client = admin(settings)
    try:
        offsets = client.list_group_offsets(group).get(group, {})
    finally:
        client.close()
    return {tp.partition: m.offset for tp, m in offsets.items() if m is not None}


def _produce(settings: Settings, topic: str, partitions: list[int],
             base_ms: int) -> dict[int, list[tuple[int, int]]]:
    """Two batches per partition; partition -> [(offset, timestamp_ms)] as the broker
    acknowledged them."""
    producer = KafkaProducer(bootstrap_servers=bootstrap_list(settings), acks="all")
    sent: dict[int, list[tuple[int, int]]] = {p: [] for p in partitions}
    try:
        for batch in range(2):
            for p in partitions:
                for i in range(PER_BATCH):
                    ts = base_ms + batch * GAP_MS + i
                    meta = producer.send(topic, b"{}", partition=p,
                                         timestamp_ms=ts).get(timeout=30)
                    sent[p].append((meta.offset, ts))
        producer.flush()
    finally:
        producer.close()
    return sent


def test_groups_lag_and_reset_to_time(pipeline_settings: Settings) -> None:
    settings = pipeline_settings
    ensure_topics(settings)
    group, topic = settings.sink_group, settings.topics.sink()[0]
    probe = KafkaConsumer(bootstrap_servers=bootstrap_list(settings))
    partitions = sorted(probe.partitions_for_topic(topic) or ())
    probe.close()
    assert len(partitions) >= 2
    base_ms = int(time.time() * 1000) - 10 * GAP_MS
    sent = _produce(settings, topic, partitions, base_ms)

    committer = KafkaConsumer(bootstrap_servers=bootstrap_list(settings), group_id=group,
                              enable_auto_commit=False)
    committer.commit({TopicPartition(topic, p): OffsetAndMetadata(COMMITTED, "", -1)
                      for p in partitions})
    committer.close()

    # -- the listing: exact lag on the topic, the sink's other topics empty -------------
    listed = run_cli(settings, "groups", "--json")
    assert listed.returncode == 0, listed.stderr
    report = json.loads(listed.stdout.strip().splitlines()[-1])
    by_group = {g["group"]: g for g in report["groups"]}
    assert set(by_group) == {settings.faust_app_id, group}
    sink = by_group[group]
    assert sink["exists"] and sink["members"] == [] and sink["state"] == "Empty"
    rows = {(r["topic"], r["partition"]): r for r in sink["partitions"]}
    for p in partitions:
        assert rows[topic, p] == {"topic": topic, "partition": p, "committed": COMMITTED,
                                  "end": 2 * PER_BATCH, "lag": 2 * PER_BATCH - COMMITTED}
    assert sink["lag"] == len(partitions) * (2 * PER_BATCH - COMMITTED)
    assert not by_group[settings.faust_app_id]["exists"]  # no commits: listed all the same

    # -- a time between the batches: the first message of the second batch -------------
    between = datetime.fromtimestamp((base_ms + GAP_MS // 2) / 1000, UTC).isoformat()
    expected = {p: next(off for off, ts in sent[p] if ts >= base_ms + GAP_MS // 2)
                for p in partitions}
    assert set(expected.values()) == {PER_BATCH}
    before = _committed(settings, group)

    dry = run_cli(settings, "groups", "reset", group, "--to-time", between, "--topic", topic,
               "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout.strip().splitlines()[-1])
    assert {r["partition"]: r["new"] for r in plan["partitions"]} == expected
    assert {r["partition"]: r["current"] for r in plan["partitions"]} == \
        dict.fromkeys(partitions, COMMITTED)
    assert plan["applied"] is False
    assert _committed(settings, group) == before

    # after every message: the end offsets (as Kafka's tool does)
    late = datetime.fromtimestamp((base_ms + 3 * GAP_MS) / 1000, UTC).isoformat()
    dry_late = run_cli(settings, "groups", "reset", group, "--to-time", late, "--topic", topic,
                    "--dry-run", "--json")
    assert dry_late.returncode == 0, dry_late.stderr
    plan_late = json.loads(dry_late.stdout.strip().splitlines()[-1])
    assert {r["new"] for r in plan_late["partitions"]} == {2 * PER_BATCH}

    # no terminal, no --yes: refused in one line, nothing changed
    refused = run_cli(settings, "groups", "reset", group, "--to-time", between, "--topic", topic)
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines()[-1].startswith("leadloom: error: no terminal")
    assert len(refused.stderr.strip().splitlines()) == 1
    assert _committed(settings, group) == before

    # a naive time and a group outside the namespace: refused
    naive = run_cli(settings, "groups", "reset", group, "--to-time", "2026-05-04T10:00:00",
                 "--yes")
    assert naive.returncode == 1 and "no zone" in naive.stderr
    foreign = run_cli(settings, "groups", "reset", "someone-else", "--to-time", between, "--yes")
    assert foreign.returncode == 1 and "not a consumer group" in foreign.stderr

    # on a terminal: "n" changes nothing, exit 1; the human listing shows the lag
    code, _, err = run_on_terminal(settings, "n", "groups", "reset", group, "--to-time", between,
                             "--topic", topic)
    assert code == 1 and "[y/N]" in err and "nothing changed" in err
    assert _committed(settings, group) == before
    human = run_cli(settings, "groups")
    assert human.returncode == 0, human.stderr
    assert f"  {topic}[{partitions[0]}]  committed={COMMITTED} end={2 * PER_BATCH}" \
        f" lag={2 * PER_BATCH - COMMITTED}" in human.stdout.splitlines()

    # --yes: committed exactly at the first message at/after T
    done = run_cli(settings, "groups", "reset", group, "--to-time", between, "--topic", topic,
                "--yes", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["applied"] is True
    after = _committed(settings, group)
    assert {p: after[p] for p in partitions} == expected

    # "y" on a terminal applies (back to the first offsets; `--json` before the action)
    code, _, err = run_on_terminal(settings, "y", "groups", "--json", "reset", group, "--to-time",
                             "earliest", "--topic", topic)
    assert code == 0, err
    assert {p: _committed(settings, group)[p] for p in partitions} == dict.fromkeys(partitions, 0)
    again = run_cli(settings, "groups", "reset", group, "--to-time", between, "--topic", topic,
                 "--yes")
    assert again.returncode == 0, again.stderr

    # an active member: refused, nothing changed
    member = KafkaConsumer(topic, bootstrap_servers=bootstrap_list(settings), group_id=group,
                           enable_auto_commit=False)
    try:
        deadline = time.monotonic() + 30
        while not member.assignment() and time.monotonic() < deadline:
            member.poll(timeout_ms=200, max_records=1)
        assert member.assignment()
        busy = run_cli(settings, "groups", "reset", group, "--to-time", "earliest", "--yes")
        assert busy.returncode == 1
        assert "active member" in busy.stderr and "stop 'leadloom run'" in busy.stderr
        assert len(busy.stderr.strip().splitlines()) == 1
        live = run_cli(settings, "groups", "--json")
        live_sink = {g["group"]: g for g in
                     json.loads(live.stdout.strip().splitlines()[-1])["groups"]}[group]
        assert live_sink["state"] == "Stable" and len(live_sink["members"]) == 1
        assert live_sink["members"][0]["member_id"]
    finally:
        member.close(autocommit=False)
    assert {p: _committed(settings, group)[p] for p in partitions} == expected
    # every reset run is audited, dry runs, refusals and failures included
    audits = [r for r in ops_rows(settings) if r["command"] == "groups reset"]
    results = {(r["result"], r["dry_run"]) for r in audits}
    assert {("ok", 1), ("ok", 0), ("refused", 0), ("failed", 0)} <= results, results
    assert all(r["who"] and r["params"] and r["finished_at"] >= r["started_at"] for r in audits)



def test_groups_unreachable_broker(pipeline_settings: Settings) -> None:
    dead = pipeline_settings.model_copy(update={"kafka_bootstrap": "127.0.0.1:9"})
    done = run_cli(dead, "groups")
    assert done.returncode == 1
    # the client library logs its connection attempts above; the reason is the last line
    reason = done.stderr.strip().splitlines()[-1]
    assert reason.startswith("leadloom: error: no Kafka broker at 127.0.0.1:9")

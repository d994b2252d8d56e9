"""``leadloom replay republish`` on the real broker, pipeline and engine: republishing a
whole simulated day into live changes no count; the archive then holds every republished
message with its origin header; a selection by cluster, type and time republishes exactly
its events; a dry run sends nothing; an interrupted run reports exactly what it sent; every
run leaves its audit row."""

from __future__ import annotations

import json
import os
import signal
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition

from core import queries as q
from core.kafka import bootstrap_list
from core.settings import Settings
from leadloom.commands import republish as rp
from leadloom.commands.republish_select import Selection
from leadloom.pipeline import Pipeline
from producers.simulator import simulate_fair
from producers.simulator.publish import publish
from schemas.registry import (
    EVENT_TABLES,
    MATCHES_TABLE,
    ORIGIN_HEADER,
    RAW_ARCHIVE,
    RAW_TOPICS,
    REPLAY_AUDIT,
)
from tests.conftest import running_pipeline
from tests.factories.cli import run_cli, run_on_terminal

pytestmark = pytest.mark.integration

# The day's size; LEADLOOM_REPUBLISH_EVENTS=100000 measures the rate on a larger day.
DAY_EVENTS = int(os.environ.get("LEADLOOM_REPUBLISH_EVENTS", "3000"))


def settle(pipe: Pipeline, timeout_s: float = 300) -> None:
    assert pipe.wait_idle(timeout_s), f"not idle after {timeout_s}s: lag {pipe.lag()}"


def publish_day(pipe: Pipeline, events: int, seed: int) -> dict:
    """A simulated day as a fair sends it (exhibitors' profiles first), stored."""
    sim = simulate_fair(events, seed=seed)
    profiles = [m for m in sim.messages if m.event_type == "supplier_profile"]
    publish(profiles, pipe.settings)
    settle(pipe)
    publish([m for m in sim.messages if m.event_type != "supplier_profile"], pipe.settings)
    settle(pipe)
    if pipe.check_surges():  # the day is over: its last windows judged too
        settle(pipe)
    return sim.ground_truth


def counts(pipe: Pipeline) -> dict[str, Any]:
    """Every count the no-change check compares."""
    assert pipe.store is not None
    query, db = pipe.store.query, pipe.settings.clickhouse_database
    one = lambda sql: query(sql).rows[0][0]  # noqa: E731
    return {
        "rows_final": {t.name: one(f"SELECT count() FROM {db}.{t.name} FINAL")
                       for t in EVENT_TABLES},
        "events_stored": q.run(q.EVENTS_STORED, query, db),
        "leads_by_cluster": q.run(q.LEADS_BY_CLUSTER, query, db),
        "stream_leads_by_cluster": q.run(q.STREAM_LEADS_BY_CLUSTER, query, db),
        "lead_minutes": sorted(map(tuple, query(
            f"SELECT cluster_id, minute, scans, inquiries, procurement_steps"
            f" FROM {db}.leads_per_cluster_minute").rows)),
        "unique_buyers_by_cluster": q.run(q.UNIQUE_BUYERS_BY_CLUSTER, query, db),
        "buyers_resolved": q.run(q.BUYERS_RESOLVED, query, db),
        "matches": one(f"SELECT count() FROM {db}.{MATCHES_TABLE.name} FINAL"),
        "dead_letters": q.run(q.DEAD_LETTERS_BY_REASON, query, db),
    }


def archive(pipe: Pipeline, where: str = "1") -> list[list]:
    """(topic, partition, offset, event_id, origin) of archived raw messages; origin ''
    when the message has no origin header."""
    assert pipe.store is not None
    db = pipe.settings.clickhouse_database
    return pipe.store.query(
        f"SELECT topic, partition, offset, event_id,"
        f" base64Decode(tupleElement(arrayFirst(h -> tupleElement(h, 1) = '{ORIGIN_HEADER}',"
        f" headers), 2)) AS origin FROM {db}.{RAW_ARCHIVE.name} FINAL WHERE {where}").rows


def end_offsets(settings: Settings) -> dict:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_list(settings))
    try:
        parts = [TopicPartition(settings.topics.name(t), p) for t in RAW_TOPICS
                 for p in sorted(consumer.partitions_for_topic(settings.topics.name(t)) or ())]
        return consumer.end_offsets(parts)
    finally:
        consumer.close()


def audits(pipe: Pipeline) -> list[dict]:
    assert pipe.store is not None
    db = pipe.settings.clickhouse_database
    result = pipe.store.query(
        f"SELECT audit_id, dry_run, result, counts, detail FROM {db}.{REPLAY_AUDIT.name} FINAL"
        f" WHERE command = '{rp.COMMAND}' ORDER BY started_at")
    return [dict(zip(result.columns, row, strict=True)) for row in result.rows]


@pytest.fixture
def pipe(pipeline_settings: Settings):
    with running_pipeline(pipeline_settings, workers=1) as running:
        yield running


def test_republishing_the_whole_day_changes_no_count(pipe: Pipeline,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    truth = publish_day(pipe, DAY_EVENTS, seed=31)
    before = counts(pipe)
    assert sum(before["events_stored"].values()) == truth["expected_valid_events"]
    archived = len(archive(pipe))
    offsets = end_offsets(pipe.settings)

    dry = rp.republish(pipe.settings, Selection(), dry_run=True)
    assert end_offsets(pipe.settings) == offsets, "a dry run sends nothing"
    assert (dry["selected"], dry["sent"]) == (truth["expected_valid_events"], 0)
    # every malformed message is skipped (not an event, or a dead letter), every resend
    # is a later copy of its event
    assert dry["skipped"]["not_an_event"] + dry["skipped"]["not_stored"] == \
        truth["malformed_sent"]
    assert dry["skipped"]["duplicate"] == truth["duplicates_resent"]

    # interrupted after its first page: what it reports is what went out
    page_rows = rp.PAGE_ROWS
    monkeypatch.setattr(rp, "PAGE_ROWS", 500)
    with pytest.raises(rp.Interrupted) as stopped:
        rp.republish(pipe.settings, Selection(), confirm=lambda _plan: None,
                     on_page=lambda _sent: os.kill(os.getpid(), signal.SIGINT))
    part = stopped.value.result
    assert part["sent"] == 500 and part["result"] == "interrupted"
    monkeypatch.setattr(rp, "PAGE_ROWS", page_rows)

    whole = rp.republish(pipe.settings, Selection(), confirm=lambda _plan: None)
    assert whole["sent"] == whole["selected"] == truth["expected_valid_events"]
    settle(pipe)
    if pipe.check_surges():
        settle(pipe)
    after = counts(pipe)
    assert after == before

    rows = archive(pipe)
    republished = [r for r in rows if r[4]]
    assert len(rows) == archived + part["sent"] + whole["sent"]
    assert len(republished) == part["sent"] + whole["sent"]
    firsts = {f"{t}[{p}]@{o}": e for t, p, o, e, origin in rows if not origin}
    # each origin names an original message of the same event, and every stored event
    # came back once in the whole run
    assert all(firsts.get(origin) == e for *_, e, origin in republished)
    assert len({e for *_, e, _ in republished}) == truth["expected_valid_events"]
    same_bytes = pipe.store.query(  # type: ignore[union-attr]
        f"SELECT countIf(o.value != r.value OR o.key_base64 IS DISTINCT FROM r.key_base64)"
        f" FROM (SELECT * FROM {pipe.settings.clickhouse_database}.{RAW_ARCHIVE.name} FINAL"
        f" WHERE has(headers.name, '{ORIGIN_HEADER}')) AS r"
        f" JOIN {pipe.settings.clickhouse_database}.{RAW_ARCHIVE.name} AS o"
        f" ON concat(o.topic, '[', toString(o.partition), ']@', toString(o.offset))"
        f" = base64Decode(tupleElement(arrayFirst(h -> tupleElement(h, 1) = '{ORIGIN_HEADER}',"
        f" r.headers), 2))").rows[0][0]
    assert same_bytes == 0

    rows_audit = audits(pipe)
    assert [(a["dry_run"], a["result"]) for a in rows_audit] == [
        (1, "ok"), (0, "interrupted"), (0, "ok")]
    assert rows_audit[0]["counts"]["sent"] == 0
    assert rows_audit[1]["counts"]["sent"] == 500
    assert rows_audit[2]["counts"] == {
        "selected": whole["selected"], "sent": whole["sent"],
        "skipped": sum(whole["skipped"].values()),
        **{f"skipped_{k}": v for k, v in whole["skipped"].items()}}
    print(f"\nrepublish: {whole['sent']} events in {whole['elapsed_s']} s,"
          f" {whole['events_per_s']} events/s; skipped {whole['skipped']}; unchanged:"
          f" rows {before['rows_final']}, dead letters {sum(before['dead_letters'].values())},"
          f" buyers {before['buyers_resolved']}, matches {before['matches']},"
          f" unique buyers by cluster {sum(before['unique_buyers_by_cluster'].values())},"
          f" lead minutes {len(before['lead_minutes'])}")


def test_a_selection_republishes_exactly_its_events(pipe: Pipeline,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    truth = publish_day(pipe, 1500, seed=32)
    assert pipe.store is not None
    query, db = pipe.store.query, pipe.settings.clickhouse_database
    cluster = max(truth["expected_by_cluster"],
                  key=lambda c: truth["expected_by_cluster"][c]["scans"])
    lo, hi = query(f"SELECT min(occurred_at), max(occurred_at) FROM {db}.scans").rows[0]
    lo, hi = (datetime.fromisoformat(str(v)).replace(tzinfo=UTC) for v in (lo, hi))
    since = lo + (hi - lo) / 4
    until = since + (hi - lo) / 2
    fair_zone = timezone(timedelta(hours=8))  # the selection takes any zone
    selection = Selection.parse(since.isoformat(), until.astimezone(fair_zone).isoformat(),
                                [cluster], ["booth_scan", "online_inquiry"])
    assert selection.until == until

    def expected(table: str) -> set[str]:
        return {r[0] for r in query(
            f"SELECT event_id FROM {db}.{table} FINAL WHERE cluster_id = '{cluster}'"
            f" AND occurred_at >= '{since:%Y-%m-%d %H:%M:%S.%f}'"
            f" AND occurred_at < '{until:%Y-%m-%d %H:%M:%S.%f}'").rows}

    want = expected("scans") | expected("inquiries")
    assert want and expected("procurement_steps"), "a selection that leaves some out"
    seen = {tuple(r[:3]) for r in archive(pipe)}
    result = rp.republish(pipe.settings, selection, confirm=lambda _plan: None)
    assert result["sent"] == result["selected"] == len(want)
    settle(pipe)
    new = [r for r in archive(pipe) if tuple(r[:3]) not in seen]
    assert sorted(r[3] for r in new) == sorted(want)
    assert all(r[4] for r in new)

    # registrations only, no cluster: every stored registration, once
    seen = {tuple(r[:3]) for r in archive(pipe)}
    regs = rp.republish(pipe.settings, Selection(types=("buyer_registration",)),
                        confirm=lambda _plan: None)
    settle(pipe)
    new = [r for r in archive(pipe) if tuple(r[:3]) not in seen]
    stored = {r[0] for r in query(f"SELECT event_id FROM {db}.registrations FINAL").rows}
    assert regs["sent"] == len(new) == len(stored) > 0
    assert {r[3] for r in new} == stored

    # a refusal sends nothing and is audited
    before = end_offsets(pipe.settings)
    refused = rp.republish(pipe.settings, Selection(), confirm=lambda _plan: "said no")
    assert refused["result"] == "refused" and refused["sent"] == 0
    assert end_offsets(pipe.settings) == before

    # a producer that refuses every message: the run fails, says why and what went out
    real = rp.llkafka.producer
    monkeypatch.setattr(rp.llkafka, "producer",
                        lambda s, **o: real(s, **{**o, "max_request_size": 200}))
    with pytest.raises(rp.RepublishError, match="MessageSizeTooLarge"):
        rp.republish(pipe.settings, Selection(types=("booth_scan",)),
                     confirm=lambda _plan: None)
    assert end_offsets(pipe.settings) == before
    settle(pipe)
    rows_audit = audits(pipe)
    assert [a["result"] for a in rows_audit] == ["ok", "ok", "refused", "failed"]
    assert rows_audit[-1]["counts"]["sent"] == 0
    assert "MessageSizeTooLarge" in rows_audit[-1]["detail"]


def test_the_command_line_confirms_refuses_and_prints_json(pipe: Pipeline) -> None:
    publish_day(pipe, 400, seed=33)
    settings = pipe.settings
    scans = settings.topics.raw("booth_scan")
    offsets = end_offsets(settings)

    done = run_cli(settings, "replay", "republish", "--json", "--type", "booth_scan")
    code, out, err = done.returncode, done.stdout, done.stderr
    assert code == 1 and "--yes" in err
    assert json.loads(out.strip().splitlines()[-1])["result"] == "refused"
    done = run_cli(settings, "replay", "republish", "--yes", "--from", "2026-05-04T10:00")
    code, err = done.returncode, done.stderr
    assert code == 1 and err.strip().endswith("has no zone: add one, e.g. +08:00 or Z")
    code, _, err = run_on_terminal(settings, "n", "replay", "republish", "--type", "booth_scan")
    assert code == 1 and "cancelled at the prompt" in err
    assert end_offsets(settings) == offsets, "nothing sent without a yes"

    code, out, err = run_on_terminal(settings, "y", "replay", "republish", "--type",
                                     "booth_scan")
    assert code == 0, err
    selected = int(out.split("selected ")[1].split(",")[0])
    assert f"sent {selected}," in out and selected > 0
    done = run_cli(settings, "replay", "republish", "--json", "--yes", "--dry-run")
    code, out = done.returncode, done.stdout
    dry = json.loads(out.strip().splitlines()[-1])
    assert code == 0 and dry["dry_run"] and dry["sent"] == 0
    assert dry["by_topic"][scans] == selected
    moved = sum(end - offsets[tp] for tp, end in end_offsets(settings).items())
    assert moved == selected, "only the confirmed run sent, one message per scan"
    settle(pipe)
    assert [(a["dry_run"], a["result"]) for a in audits(pipe)] == [
        (0, "refused"), (0, "refused"), (0, "ok"), (1, "ok")]

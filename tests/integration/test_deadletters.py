"""Dead-letter triage on the real broker and pipeline, through the CLI.

The fixable cause is a validation rule that changes: the pipeline first runs with a small
``max_message_bytes`` (valid scans with a note become ``oversized`` dead letters), then
runs again with the default limit, as an operator would after raising it. Beside them: a
scan for an unknown booth and bad JSON (invalid under any limit), a dead letter an earlier
schema wrote for a scan valid now, with no archive copy (its whole bytes are in the dead
letter: the "validation bug fixed" case), one whose bytes were truncated, and a derived
stage's (``store_refused``), the last three sent to the dead-letter topic as a worker or
the sink writes them.

A retry run with the raised limit while the pipeline still refuses them republishes them
into the same refusal: each dead letter is replaced (same origin), not added, and listed
as dead again. ``retry`` must then republish exactly the ones that pass today, each stored
and counted once; the others stay with a ``still_invalid`` / ``not_retryable`` row; a dry
run and a refused run (no terminal, or "n" on one) change nothing; a second run
republishes nothing; every run is audited. A retry stopped by SIGTERM half-way reports
only what it recorded, and a re-run completes it exactly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from kafka import KafkaProducer

from core import queries as q
from core.kafka import bootstrap_list, ensure_topics
from core.settings import Settings, settings_env
from producers.publisher import Publisher
from schemas.deadletter import Reason
from streams.rows import DEAD_LETTER_RAW_PREFIX, SourceRef, dead_letter_row
from streams.validate import Rejected
from tests.conftest import running_pipeline
from tests.factories import events as f
from tests.factories.cli import run_cli, run_on_terminal

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SMALL_LIMIT = 1024  # bytes (the setting's floor): a scan with a 300-character Chinese note
# is over it, a plain scan is not
FAR = 10**9  # an offset no test partition reaches: no archive copy there




def _json(done: subprocess.CompletedProcess[str]) -> dict:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _settle(pipe, timeout_s: float = 120) -> None:
    assert pipe.wait_idle(timeout_s), f"not idle after {timeout_s}s: lag {pipe.lag()}"


def _one(pipe, sql: str):
    return pipe.store.query(sql).rows[0][0]


def _wait_for(pipe, sql: str, expected: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while _one(pipe, sql) != expected and time.monotonic() < deadline:
        time.sleep(0.3)
    assert _one(pipe, sql) == expected, sql


def test_retry_republishes_what_passes_now_and_nothing_twice(
        pipeline_settings: Settings) -> None:
    live = pipeline_settings
    strict = live.model_copy(update={"max_message_bytes": SMALL_LIMIT})
    topics, db = live.topics, live.clickhouse_database
    plain = [f.scan(badge_id=f"B-PLAIN-{i}") for i in range(3)]
    noted = [f.scan(badge_id=f"B-NOTE-{i}", note="注" * 300) for i in range(4)]
    assert all(len(f.encode(d)) > SMALL_LIMIT for d in noted)
    assert all(len(f.encode(d)) <= SMALL_LIMIT for d in plain)
    unknown_booth = f.scan(badge_id="B-NOWHERE", booth_id="NOPE-1")
    bad_json = b'{"event_id": "half'
    earlier = f.scan(badge_id="B-EARLIER")  # valid now; an earlier schema refused it
    ensure_topics(live)

    # -- the strict pipeline: the noted scans become oversized dead letters ---------------
    with running_pipeline(strict) as pipe:
        with Publisher(strict) as publisher:
            sent = [publisher.publish(d) for d in plain + noted + [unknown_booth]]
            sent.append(publisher.publish(bad_json, "booth_scan"))
            assert all(s.result(30).ok for s in sent)
        now = datetime.now(UTC)
        injected = [
            dead_letter_row(Rejected(Reason.INVALID_FIELD, "payload.note: an earlier rule"),
                            SourceRef(topics.raw("booth_scan"), 0, FAR), f.encode(earlier),
                            now),
            dead_letter_row(Rejected(Reason.OVERSIZED, "too big"),
                            SourceRef(topics.raw("booth_scan"), 1, FAR),
                            b"x" * (DEAD_LETTER_RAW_PREFIX + 10), now),
            dead_letter_row(Rejected(Reason.STORE_REFUSED, "Code: 117. refused"),
                            SourceRef(topics.valid_events, 2, 7), b'{"event_id": "r1"}', now),
        ]
        producer = KafkaProducer(bootstrap_servers=bootstrap_list(live))
        producer.send(topics.dead_letters, b"\n".join(orjson.dumps(r) for r in injected))
        producer.flush()
        producer.close()
        _settle(pipe)
        assert _one(pipe, f"SELECT count() FROM {db}.scans FINAL") == 3
        assert _one(pipe, f"SELECT count() FROM {db}.dead_letters FINAL") == 9

        # retried with the raised limit before the pipeline runs with it: refused again,
        # and each dead letter is replaced (its origin header), not added: dead again
        early = _json(run_cli(live, "deadletters", "retry", "--reason", "oversized", "--yes",
                           "--json"))
        assert (early["selected"], early["republished"], early["not_retryable"]) == (5, 4, 1)
        _settle(pipe)
        _wait_for(pipe, f"SELECT count() FROM {db}.dead_letter_retries FINAL", 5)
        assert _one(pipe, f"SELECT count() FROM {db}.dead_letters FINAL") == 9
        failed_again = _json(run_cli(live, "deadletters", "list", "--reason", "oversized",
                                  "--json"))["dead_letters"]
        assert sorted(d["status"] for d in failed_again) == ["dead again"] * 4 + [
            "not retryable"]
        for d in failed_again:  # read where the republish landed, kept under its origin
            if d["status"] == "dead again":
                republish = next(i for i in early["items"] if i["ref"] == d["ref"])
                assert d["source"] == republish["published_to"] != d["ref"]

    # -- the operator raised the limit: the pipeline runs with the default ----------------
    with running_pipeline(live) as pipe:
        listed = _json(run_cli(live, "deadletters", "list", "--json"))
        assert listed["count"] == 9 and listed["by_status"] == {
            "never retried": 4, "dead again": 4, "not retryable": 1}
        by_reason = {}
        for d in listed["dead_letters"]:
            by_reason[d["reason"]] = by_reason.get(d["reason"], 0) + 1
        assert by_reason == {"oversized": 5, "unknown_booth": 1, "bad_json": 1,
                             "invalid_field": 1, "store_refused": 1}
        oversized = _json(run_cli(live, "deadletters", "list", "--reason", "oversized",
                               "--reason", "bad_json", "--json"))
        assert oversized["count"] == 6
        derived = _json(run_cli(live, "deadletters", "list", "--topic", "events.valid", "--json"))
        assert [d["ref"] for d in derived["dead_letters"]] == [f"{topics.valid_events}[2]@7"]
        future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        later = run_cli(live, "deadletters", "list", "--since", future, "--json")
        assert _json(later)["count"] == 0
        assert _json(run_cli(live, "deadletters", "list", "--limit", "2", "--json"))["count"] == 2
        naive = run_cli(live, "deadletters", "list", "--since", "2026-01-01T00:00:00")
        assert naive.returncode == 1 and "no zone" in naive.stderr
        unknown = run_cli(live, "deadletters", "list", "--reason", "nonsense")
        assert unknown.returncode == 1 and "unknown reason" in unknown.stderr

        # show: the archive's whole copy, as text
        ref = next(d["ref"] for d in listed["dead_letters"]
                   if d["reason"] == "oversized" and "@" + str(FAR) not in d["ref"])
        shown = _json(run_cli(live, "deadletters", "show", ref, "--json"))
        letter = shown["dead_letters"][0]
        assert letter["raw"]["from"] == "raw_archive" and letter["raw"]["whole"]
        assert letter["raw"]["encoding"] == "utf-8" and "B-NOTE-" in letter["raw"]["text"]
        assert [r["outcome"] for r in letter["retries"]] == ["republished"]
        assert shown["archived"] is not None and letter["source"] != ref
        human = run_cli(live, "deadletters", "show", ref)
        assert human.returncode == 0 and "B-NOTE-" in human.stdout
        assert " republished " in human.stdout
        missing = run_cli(live, "deadletters", "show", f"{topics.raw('booth_scan')}[0]@12345")
        assert missing.returncode == 1 and "no dead letter" in missing.stderr

        # a dry run: says what would happen, changes nothing, audited
        dry = _json(run_cli(live, "deadletters", "retry", "--dry-run", "--json"))
        assert (dry["selected"], dry["republished"], dry["still_invalid"],
                dry["not_retryable"]) == (9, 5, 2, 2)
        # no terminal and no --yes: refused, nothing changed
        refused = run_cli(live, "deadletters", "retry")
        assert refused.returncode == 1 and "no terminal" in refused.stderr
        # on a terminal, "n": nothing changed
        code, _, err = run_on_terminal(live, "n", "deadletters", "retry")
        assert code == 1 and "[y/N]" in err and "nothing changed" in err
        _wait_for(pipe, f"SELECT count() FROM {db}.replay_audit FINAL"
                  " WHERE command = 'deadletters retry'", 4)
        _settle(pipe)
        assert _one(pipe, f"SELECT count() FROM {db}.dead_letter_retries") == 5
        assert _one(pipe, f"SELECT count() FROM {db}.scans FINAL") == 3

        # the retry: the five that pass today are republished and stored once
        done = _json(run_cli(live, "deadletters", "retry", "--yes", "--json"))
        assert (done["selected"], done["republished"], done["still_invalid"],
                done["not_retryable"], done["send_failed"]) == (9, 5, 2, 2, 0)
        items = {i["ref"]: i for i in done["items"]}
        for item in items.values():
            if item["outcome"] == "republished":
                assert item["published_to"].startswith(topics.raw("booth_scan") + "[")
        reasons = {i["reason"].split(":")[0] for i in items.values()
                   if i["outcome"] == "still_invalid"}
        assert reasons == {"unknown_booth", "bad_json"}
        why = [i["reason"] for i in items.values() if i["outcome"] == "not_retryable"]
        assert any(w.startswith("truncated") for w in why)
        assert any("derived stage events.valid" in w for w in why)
        _settle(pipe)
        _wait_for(pipe, f"SELECT count() FROM {db}.dead_letter_retries FINAL", 14)
        expected_ids = {d["event_id"] for d in plain + noted + [earlier]}
        stored = dict(pipe.store.query(f"SELECT event_id, count() FROM {db}.scans FINAL"
                                       " GROUP BY event_id").rows)
        assert stored == dict.fromkeys(expected_ids, 1)
        query = pipe.store.query
        streamed = q.run(q.STREAM_LEADS_BY_CLUSTER, query, db)
        assert sum(c["scans"] for c in streamed.values()) == 8  # each counted once
        assert _one(pipe, f"SELECT count() FROM {db}.dead_letters FINAL") == 9  # none added
        after = _json(run_cli(live, "deadletters", "list", "--json"))
        assert after["by_status"] == {"republished": 5, "still invalid": 2, "not retryable": 2}

        # a second retry: nothing republished again, nothing counted twice
        again = _json(run_cli(live, "deadletters", "retry", "--yes", "--json"))
        assert (again["selected"], again["republished"], again["still_invalid"],
                again["not_retryable"]) == (4, 0, 2, 2)
        _settle(pipe)
        _wait_for(pipe, f"SELECT count() FROM {db}.dead_letter_retries FINAL", 18)
        assert _one(pipe, f"SELECT count() FROM {db}.scans FINAL") == 8
        streamed = q.run(q.STREAM_LEADS_BY_CLUSTER, query, db)
        assert sum(c["scans"] for c in streamed.values()) == 8

        # show: the retries of one republished twice, where each landed
        twice = next(i["ref"] for i in early["items"] if i["outcome"] == "republished")
        shown = _json(run_cli(live, "deadletters", "show", twice, "--json"))
        retries = shown["dead_letters"][0]["retries"]
        assert [r["outcome"] for r in retries] == ["republished", "republished"]
        assert [r["published_to"] for r in retries] == [
            next(i for i in early["items"] if i["ref"] == twice)["published_to"],
            items[twice]["published_to"]]

        # every run audited: the early one, the dry run, the two refusals, two runs
        _wait_for(pipe, f"SELECT count() FROM {db}.replay_audit FINAL"
                  " WHERE command = 'deadletters retry'", 6)
        audits = pipe.store.query(
            f"SELECT dry_run, result, counts['republished'], counts['selected']"
            f" FROM {db}.replay_audit FINAL WHERE command = 'deadletters retry'"
            " ORDER BY started_at").rows
        assert audits == [[0, "ok", 4, 5], [1, "ok", 5, 9], [0, "refused", 0, 9],
                          [0, "refused", 0, 9], [0, "ok", 5, 9], [0, "ok", 0, 4]]


INTERRUPTED_LETTERS = 3000  # 15 chunks: SIGTERM lands half-way


def test_sigterm_stops_a_retry_at_a_clean_point_and_a_rerun_completes_it(
        pipeline_settings: Settings) -> None:
    settings = pipeline_settings
    topics, db = settings.topics, settings.clickhouse_database
    ensure_topics(settings)
    scans = [f.scan(badge_id=f"B-INT-{i}") for i in range(INTERRUPTED_LETTERS)]
    now = datetime.now(UTC)
    # dead letters an earlier schema wrote for scans valid now (no archive copy: whole bytes)
    rows = [orjson.dumps(dead_letter_row(
        Rejected(Reason.INVALID_FIELD, "an earlier rule"),
        SourceRef(topics.raw("booth_scan"), i % 6, FAR + i), f.encode(d), now))
        for i, d in enumerate(scans)]
    with running_pipeline(settings) as pipe:
        producer = KafkaProducer(bootstrap_servers=bootstrap_list(settings))
        for block in range(0, len(rows), 500):
            producer.send(topics.dead_letters, b"\n".join(rows[block:block + 500]))
        producer.flush()
        producer.close()
        _settle(pipe)
        assert _one(pipe, f"SELECT count() FROM {db}.dead_letters FINAL") == len(scans)

        env = {**os.environ, **settings_env(settings)}
        env.pop("LEADLOOM_DEBUG", None)
        proc = subprocess.Popen([sys.executable, "-m", "leadloom.cli", "deadletters", "retry",
                                 "--yes", "--json"], cwd=REPO, env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        assert proc.stderr is not None
        seen = []
        while not any("selected" in line for line in seen):
            line = proc.stderr.readline()
            assert line, f"retry ended before it started: {seen}"
            seen.append(line)
        time.sleep(0.5)
        proc.terminate()  # SIGTERM: the CLI turns it into an interrupt
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 130, "".join(seen) + err
        summary = json.loads(out.strip().splitlines()[-1])
        assert summary["interrupted"] is True
        done = summary["republished"]
        assert 0 < done < len(scans), summary
        assert "(interrupted)" in err

        # complete for what it reports: a row for every republish reported, each stored once
        _settle(pipe)
        audit = summary["audit_id"]
        _wait_for(pipe, f"SELECT count() FROM {db}.dead_letter_retries FINAL"
                  f" WHERE audit_id = '{audit}' AND outcome = 'republished'", done)
        assert _one(pipe, f"SELECT count() FROM {db}.scans FINAL") == done
        _wait_for(pipe, f"SELECT count() FROM {db}.replay_audit FINAL"
                  f" WHERE audit_id = '{audit}'", 1)
        assert pipe.store.query(f"SELECT result, counts['republished'] FROM {db}.replay_audit"
                                f" FINAL WHERE audit_id = '{audit}'").rows == [
            ["interrupted", done]]

        # the re-run does the rest: every scan stored and counted once
        rest = _json(run_cli(settings, "deadletters", "retry", "--yes", "--json"))
        assert (rest["selected"], rest["republished"]) == (len(scans) - done,
                                                           len(scans) - done)
        _settle(pipe)
        stored = pipe.store.query(f"SELECT uniqExact(event_id), count() FROM {db}.scans FINAL")
        assert stored.rows == [[len(scans), len(scans)]]
        streamed = q.run(q.STREAM_LEADS_BY_CLUSTER, pipe.store.query, db)
        assert sum(c["scans"] for c in streamed.values()) == len(scans)

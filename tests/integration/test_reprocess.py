"""``leadloom replay reprocess`` on the real broker and engine: a rebuild from Kafka and one
from the raw archive give the live tables back (no difference per table or metric) and the
ground truth's counts; a second rebuild gives the same; an interrupted one leaves nothing."""

from __future__ import annotations

import pytest

from core import queries as q
from core.settings import Settings
from leadloom.commands.reprocess import Request, open_store, run_reprocess
from producers.simulator import simulate_fair
from producers.simulator.publish import publish
from tests.conftest import running_pipeline
from tests.factories.cli import ops_rows, run_cli

pytestmark = pytest.mark.integration


def truth_problems(query, db: str, truth: dict) -> list[str]:  # type: ignore[no-untyped-def]
    """What the demo checks against the simulator's truth, on any database."""
    problems = []
    stored = sum(q.run(q.EVENTS_STORED, query, db).values())
    if stored != truth["expected_valid_events"]:
        problems.append(f"{db}: events {stored} != {truth['expected_valid_events']}")
    if q.run(q.DEAD_LETTERS_BY_REASON, query, db) != truth["malformed_by_reason"]:
        problems.append(f"{db}: dead letters by reason differ")
    if q.run(q.LEADS_BY_CLUSTER, query, db) != truth["expected_by_cluster"]:
        problems.append(f"{db}: leads by cluster differ")
    return problems


def differing(report: dict) -> list:
    diff = report["diff"]
    return ([t for t in diff["tables"] if t.get("only_live") or t.get("only_shadow")]
            + [m for m in diff["metrics"] if not m["equal"]])


@pytest.fixture
def live_day(pipeline_settings: Settings) -> tuple[Settings, dict]:
    sim = simulate_fair(3000, seed=21)
    profiles = [m for m in sim.messages if m.event_type == "supplier_profile"]
    with running_pipeline(pipeline_settings, workers=1) as pipe:
        # as the demo and a fair do: exhibitors' profiles first, then the day
        publish(profiles, pipeline_settings)
        assert pipe.wait_idle(120), f"not idle: lag {pipe.lag()}"
        publish([m for m in sim.messages if m not in profiles], pipeline_settings)
        assert pipe.wait_idle(240), f"not idle: lag {pipe.lag()}"
        if pipe.check_surges():  # the day is over: its last windows judged too
            assert pipe.wait_idle(60)
    return pipeline_settings, sim.ground_truth


def test_rebuilds_from_kafka_and_archive_equal_live_and_the_truth(
        live_day: tuple[Settings, dict]) -> None:
    settings, truth = live_day
    lines: list[str] = []
    first = run_reprocess(settings, Request("kafka", None, None, None, False, False),
                          lines.append)
    assert first["build"]["messages"] >= truth["expected_valid_events"]
    assert differing(first) == [], differing(first)
    again = run_reprocess(settings, Request("archive", None, None, "rebuilt_again", False,
                                            False), lines.append)
    assert again["build"]["messages"] == first["build"]["messages"]
    assert differing(again) == [], differing(again)
    store = open_store(settings)
    try:
        for db in (settings.clickhouse_database, first["shadow_database"], "rebuilt_again"):
            assert truth_problems(store.query, db, truth) == []
    finally:
        store.close()


def test_a_swap_restores_a_lost_table_and_the_pipeline_goes_on_consistently(
        pipeline_settings: Settings) -> None:
    """Half the day, a table lost, rebuilt and swapped in; the pipeline then takes the
    other half from the handed-over state: the whole day equals the truth, and a new
    rebuild finds no difference (new scans joined the buyers the swap handed over)."""
    settings = pipeline_settings
    sim = simulate_fair(3000, seed=22)
    profiles = [m for m in sim.messages if m.event_type == "supplier_profile"]
    rest = [m for m in sim.messages if m not in profiles]
    half = len(rest) * 3 // 5
    with running_pipeline(settings, workers=1) as pipe:
        publish(profiles, settings)
        assert pipe.wait_idle(120)
        publish(rest[:half], settings)
        assert pipe.wait_idle(240), f"not idle: lag {pipe.lag()}"
    store = open_store(settings)
    try:
        scans = store.query(f"SELECT count() FROM {settings.clickhouse_database}.scans"
                            " FINAL").rows[0][0]
        store.client.command(f"TRUNCATE TABLE {settings.clickhouse_database}.scans")
    finally:
        store.close()
    lines: list[str] = []
    report = run_reprocess(settings, Request("kafka", None, None, None, True, False),
                           lines.append)
    scans_diff = next(t for t in report["diff"]["tables"] if t["table"] == "scans")
    assert (scans_diff["live_rows"], scans_diff["only_shadow"]) == (0, scans)
    assert report["swapped"] and report["swap"]["state_entries"]["buyer_identity_log"] > 0
    with running_pipeline(settings, workers=1) as pipe:
        publish(rest[half:], settings)
        assert pipe.wait_idle(240), f"not idle: lag {pipe.lag()}: " + "".join(
            p.read_text(errors="replace")[-3000:] for p in pipe.log_dir.glob("*.log"))
        if pipe.check_surges():
            assert pipe.wait_idle(60)
    again = run_reprocess(settings, Request("kafka", None, None, "after_swap", False, False),
                          lines.append)
    assert differing(again) == [], differing(again)
    store = open_store(settings)
    try:
        assert truth_problems(store.query, settings.clickhouse_database,
                              sim.ground_truth) == []
    finally:
        store.close()


def test_an_interrupted_rebuild_leaves_no_shadow(live_day: tuple[Settings, dict],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from streams.replay import Rebuild

    settings, _ = live_day
    fed = []

    def interrupted(self: Rebuild, messages: list) -> dict:
        fed.append(len(messages))
        raise KeyboardInterrupt

    monkeypatch.setattr(Rebuild, "feed", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_reprocess(settings, Request("kafka", None, None, "cut_short", False, False),
                      lambda _line: None)
    assert fed == [1] or fed
    store = open_store(settings)
    try:
        assert store.query("SELECT count() FROM system.databases"
                           " WHERE name = 'cut_short'").rows[0][0] == 0
    finally:
        store.close()


def test_the_command_line(live_day: tuple[Settings, dict]) -> None:
    import json

    settings, truth = live_day
    dry = run_cli(settings, "replay", "reprocess", "--dry-run", "--json", timeout=300)
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout.strip().splitlines()[-1])
    assert plan["dry_run"] and plan["messages_at_most"] >= truth["expected_valid_events"]
    assert plan["shadow_database"] == settings.clickhouse_database + "__shadow"
    store = open_store(settings)
    try:  # a dry run creates nothing
        assert store.query("SELECT count() FROM system.databases WHERE name ="
                           f" '{plan['shadow_database']}'").rows[0][0] == 0
    finally:
        store.close()
    partial = run_cli(settings, "replay", "reprocess", "--source", "archive", "--swap", "--yes",
                      timeout=300)
    assert partial.returncode == 1
    assert partial.stderr.strip().splitlines()[-1].startswith(
        "leadloom: error: --swap needs a whole-fair rebuild from Kafka")
    done = run_cli(settings, "replay", "reprocess", "--source", "archive", "--into", "by_cli",
                   timeout=300)
    assert done.returncode == 0, done.stderr
    assert "differences: 0" in done.stdout and "scans: live" in done.stdout
    with running_pipeline(settings, workers=1):  # the owner holds the embedded store
        owned = run_cli(settings, "replay", "reprocess", "--dry-run", timeout=300)
    assert owned.returncode == 1
    assert "owned by a running 'leadloom run'" in owned.stderr.strip().splitlines()[-1]
    # every run audited: the dry run, the refused swap, the rebuild, the refusal while owned
    audits = sorted((r for r in ops_rows(settings) if r["command"] == "replay reprocess"),
                    key=lambda r: r["started_at"])
    assert [(r["result"], r["dry_run"]) for r in audits] == [
        ("ok", 1), ("refused", 0), ("ok", 0), ("failed", 1)]
    assert audits[2]["counts"]["differences"] == 0
    assert audits[2]["counts"]["messages"] >= truth["expected_valid_events"]


"""The ``leadloom`` command as a user runs it: a fresh broker, the demo, sql, errors."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import free_port_pair

pytestmark = pytest.mark.e2e

LEADLOOM = str(Path(sys.executable).with_name("leadloom"))


@pytest.fixture(scope="module")
def user_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    port = free_port_pair(start=49092)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADLOOM_")}
    env.update(
        LEADLOOM_KAFKA_BOOTSTRAP=f"127.0.0.1:{port}",
        LEADLOOM_DATA_DIR=str(tmp_path_factory.mktemp("user-data")),
    )
    return env


def leadloom(env: dict[str, str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([LEADLOOM, *args], env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def port_open(bootstrap: str) -> bool:
    host, port = bootstrap.split(":")
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, int(port))) == 0


def test_demo_counts_equal_the_ground_truth_and_it_cleans_up(user_env: dict[str, str]) -> None:
    databases = []
    for run in range(2):  # a second run works too; the second is the default-size day
        size = ["--events", "5000"] if run == 0 else []
        done = leadloom(user_env, "demo", *size, "--seed", str(3 + run), "--json")
        assert done.returncode == 0, done.stderr[-2000:]
        report = json.loads(done.stdout.strip().splitlines()[-1])
        assert re.fullmatch(r"leadloom_demo_\d{14}", report["database"]), report["database"]
        databases.append(report["database"])
        truth = json.loads(Path(user_env["LEADLOOM_DATA_DIR"], "ground_truth.json").read_text())
        assert report["events_stored"] == report["expected_valid_events"] == \
            truth["expected_valid_events"]
        assert report["dead_letters"] == report["malformed_sent"] == truth["malformed_sent"] > 0
        assert report["events_produced"] == truth["events_produced"]
        assert report["duplicates_resent"] == truth["duplicates_resent"] > 0
        assert report["leads_by_cluster"] == truth["expected_by_cluster"]
        assert "elapsed_s" in report
        # every buyer is resolved once: scans, registrations and inquiries alike
        assert report["buyer_precision"] >= 0.995 and report["buyer_recall"] >= 0.9
        assert abs(report["buyers_resolved"] - truth["distinct_buyers"]) <= \
            0.03 * truth["distinct_buyers"]
        assert "Leads per cluster" in done.stdout
        # a backfilled day has no live latency: the live tail gives the ops panel its figures
        tail = report["live_tail"]
        assert tail["intervals"] >= 1 and 0 <= tail["p50_ms"] <= tail["p99_ms"] < 30_000
        # every panel of every dashboard ran on the demo's store and has rows to show (on
        # the 5,000-event day a few small clusters may have no match yet)
        check = report["dashboards"]
        assert check["dashboards"] == 20 and check["panels"] == 186
        if run == 0:
            assert all(name.endswith("Matches per exhibitor") for name in check["empty"]), \
                check["empty"]
        else:
            assert check["empty"] == [] and check["with_rows"] == 186
        assert report["surge"]["cluster_id"] == "keqiao" and report["surge"]["ranked_first"]
        # the demo started the broker, so it stopped it: nothing left running
        assert not port_open(user_env["LEADLOOM_KAFKA_BOOTSTRAP"])
        status = leadloom(user_env, "infra", "status", "--json")
        assert status.returncode == 0
        assert not any(b["alive"] for b in json.loads(status.stdout.splitlines()[-1])["brokers"])
    # leadloom sql on the database the last demo left behind agrees with its report
    # (the demo's fair: the live tail after the report is a fair of its own)
    sql = leadloom(user_env, "sql", f"SELECT uniqExact(event_id) FROM {databases[-1]}.scans"
                   f" WHERE fair_id = '{truth['fair_id']}'", "--json")
    assert sql.returncode == 0, sql.stderr
    assert json.loads(sql.stdout.splitlines()[-1])["rows"] == [
        [truth["expected_by_type"]["booth_scan"]]
    ]
    # each demo wrote into a database of its own: the configured one ("leadloom") was never
    # created, and the second demo dropped the first one's (a demo's, nothing else)
    shown = leadloom(user_env, "sql", "SHOW DATABASES", "--json")
    assert shown.returncode == 0, shown.stderr
    names = {row[0] for row in json.loads(shown.stdout.splitlines()[-1])["rows"]}
    assert databases[-1] in names and databases[0] not in names and "leadloom" not in names


def test_failures_exit_non_zero_with_a_one_line_reason(user_env: dict[str, str]) -> None:
    bad_sql = leadloom(user_env, "sql", "DROP TABLE leadloom.scans")
    assert bad_sql.returncode != 0
    assert bad_sql.stderr.strip().count("\n") == 0 and "read queries" in bad_sql.stderr
    no_broker = leadloom(user_env, "simulate", "--events", "100", timeout=120)
    assert no_broker.returncode != 0
    assert no_broker.stderr.strip().splitlines()[-1].startswith("leadloom: error:")


def test_every_subcommand_has_help(user_env: dict[str, str]) -> None:
    for command in ("demo", "run", "infra", "sql", "bench", "simulate", "worker", "resolve"):
        shown = leadloom(user_env, command, "--help", timeout=60)
        assert shown.returncode == 0 and "usage: leadloom" in shown.stdout, command


def test_run_simulate_and_sql_while_the_pipeline_owns_the_store(
    user_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**user_env, "LEADLOOM_NAMESPACE": "e2erun", "LEADLOOM_DATA_DIR": str(tmp_path)}
    up = leadloom(env, "infra", "up")
    assert up.returncode == 0, up.stderr
    # Output goes to files: a pipe nobody reads can fill up and stall the pipeline.
    run_log = tmp_path / "run.log"
    with run_log.open("w") as log:
        run = subprocess.Popen([LEADLOOM, "run"], env=env, stdin=subprocess.DEVNULL,
                               stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        sim = leadloom(env, "simulate", "--events", "2000", "--seed", "21", "--json")
        assert sim.returncode == 0, sim.stderr
        expected = json.loads(sim.stdout.splitlines()[-1])["expected_valid_events"]
        query = ("SELECT (SELECT uniqExact(event_id) FROM leadloom.scans) + "
                 "(SELECT uniqExact(event_id) FROM leadloom.registrations) + "
                 "(SELECT uniqExact(event_id) FROM leadloom.inquiries) + "
                 "(SELECT uniqExact(event_id) FROM leadloom.procurement_steps) + "
                 "(SELECT uniqExact(event_id) FROM leadloom.supplier_profiles)")
        deadline = time.monotonic() + 180
        got = None
        while time.monotonic() < deadline and got != expected:
            sql = leadloom(env, "sql", query, "--json", timeout=60)
            assert sql.returncode == 0, sql.stderr  # served by the running pipeline
            got = json.loads(sql.stdout.splitlines()[-1])["rows"][0][0]
            time.sleep(1)
        assert got == expected
        assert run.poll() is None, "leadloom run is still in charge of the store"
    finally:
        run.send_signal(signal.SIGTERM)
        run.wait(timeout=60)
        leadloom(env, "infra", "down")
    assert run.returncode == 0, run_log.read_text()[-2000:]
    assert not port_open(env["LEADLOOM_KAFKA_BOOTSTRAP"])


def test_a_terminated_demo_stops_what_it_started(user_env: dict[str, str], tmp_path: Path) -> None:
    env = {**user_env, "LEADLOOM_DATA_DIR": str(tmp_path)}
    assert not port_open(env["LEADLOOM_KAFKA_BOOTSTRAP"])
    demo = subprocess.Popen([LEADLOOM, "demo", "--events", "400000"], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert demo.stderr is not None
        for line in demo.stderr:  # wait until the broker and the pipeline run
            if "pipeline running" in line:
                break
        demo.send_signal(signal.SIGTERM)
        demo.wait(timeout=120)
    finally:
        if demo.poll() is None:
            demo.kill()
    assert demo.returncode == 130
    assert not port_open(env["LEADLOOM_KAFKA_BOOTSTRAP"]), "the broker was left running"
    assert not [p for p in tmp_path.glob("**/worker-*.pid")], "a worker was left behind"

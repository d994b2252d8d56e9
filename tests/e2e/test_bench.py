"""``leadloom bench`` as a user runs it: every figure it reports is measured, on a small day.

Not a timed test: the figures' sizes depend on the machine. What is checked is that each
one was measured (the broker it started, the publisher's process, every latency run) and
that they are consistent with each other and with what was stored.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import free_port_pair

pytestmark = pytest.mark.e2e

LEADLOOM = str(Path(sys.executable).with_name("leadloom"))


def test_the_bench_measures_every_figure_it_reports(tmp_path: Path) -> None:
    port = free_port_pair(start=47092)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADLOOM_")}
    env.update(LEADLOOM_KAFKA_BOOTSTRAP=f"127.0.0.1:{port}", LEADLOOM_DATA_DIR=str(tmp_path))
    done = subprocess.run([LEADLOOM, "bench", "--events", "1500", "--rates", "100,300",
                           "--latency-seconds", "2", "--batch", "20", "--json"], env=env,
                          capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])

    assert result["events"] >= 1500 and result["batch"] == 20
    assert result["events"] / 20 <= result["kafka_messages"] < result["events"]
    assert 0 < result["events_per_s"] and 0 < result["publisher_events_per_s"]
    assert 0 < result["core_events_per_s"] and 0 < result["core_us_per_event"]
    stages = result["core_stage_us_per_event"]
    assert set(stages) == {"validate", "leads", "resolve", "match"}
    assert sum(stages.values()) == pytest.approx(result["core_us_per_event"], abs=0.5)
    assert result["ratio_to_core"] == pytest.approx(
        result["events_per_s"] / result["core_events_per_s"], rel=0.01)
    cpu = result["cpu_us_per_event"]
    for process in ("worker_0", "sink_and_store", "broker_0", "publisher"):
        assert cpu.get(process) is not None and cpu[process] > 0, (process, cpu)
    assert set(result["latency_ms"]) == {"100", "300"}
    for rate, latency in result["latency_ms"].items():
        assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"], (rate, latency)
        assert latency["events"] == int(float(rate) * 2)
    assert result["baseline_events_per_s"] > 0 and result["ratio"] > 0
    # the broker the bench started for itself is gone again
    status = subprocess.run([LEADLOOM, "infra", "status", "--json"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert json.loads(status.stdout.strip().splitlines()[-1])["reachable"] is False


def test_a_bench_batch_below_one_is_refused_in_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADLOOM_")}
    env.update(LEADLOOM_KAFKA_BOOTSTRAP="127.0.0.1:1", LEADLOOM_DATA_DIR=str(tmp_path))
    done = subprocess.run([LEADLOOM, "bench", "--batch", "0"], env=env, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1].endswith(
        "--batch must be at least 1 event per message, not 0")

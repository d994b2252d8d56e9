"""The ``leadloom`` command in a process of its own, as a user runs it, and what the ops
commands leave on the namespace's ops topic."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

from kafka import KafkaConsumer

from core.kafka import bootstrap_list
from core.settings import Settings, settings_env

REPO = Path(__file__).resolve().parents[2]


def _env(settings: Settings) -> dict[str, str]:
    env = {**os.environ, **settings_env(settings)}
    env.pop("LEADLOOM_DEBUG", None)  # a traceback would hide the one-line reason
    return env


def run_cli(settings: Settings, *args: str, timeout: float = 180
            ) -> subprocess.CompletedProcess[str]:
    """``leadloom ARGS`` with stdin not a terminal; stdout and stderr captured."""
    return subprocess.run([sys.executable, "-m", "leadloom.cli", *args], cwd=REPO,
                          env=_env(settings), stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout, check=False)


def run_on_terminal(settings: Settings, answer: str, *args: str, timeout: float = 180
                    ) -> tuple[int, str, str]:
    """``leadloom ARGS`` with a pseudo-terminal as stdin and ``answer`` typed at its
    prompt: exit code, stdout, stderr."""
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "leadloom.cli", *args], cwd=REPO,
                                env=_env(settings), stdin=follower, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        os.write(leader, answer.encode() + b"\n")
        out, err = proc.communicate(timeout=timeout)
    finally:
        os.close(follower)
        os.close(leader)
    return proc.returncode, out, err


def ops_rows(settings: Settings) -> list[dict]:
    """Every row sent to the namespace's ops topic (what the sink stores)."""
    consumer = KafkaConsumer(settings.topics.ops, bootstrap_servers=bootstrap_list(settings),
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             consumer_timeout_ms=3000)
    try:
        return [json.loads(line) for record in consumer
                for line in record.value.splitlines() if line.strip()]
    finally:
        consumer.close()

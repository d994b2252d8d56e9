"""``leadloom config`` as a user runs it: secrets set in the environment never printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

LEADLOOM = str(Path(sys.executable).with_name("leadloom"))
SECRET = "Zq9-never-print-me"


@pytest.mark.parametrize("args", [["config"], ["config", "--json"]])
def test_config_never_prints_a_password(args: list[str], tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADLOOM_")}
    env.update(LEADLOOM_CLICKHOUSE_PASSWORD=SECRET,
               LEADLOOM_CLICKHOUSE_DSN=f"https://reader:{SECRET}@ch.example:8443/?password={SECRET}",
               LEADLOOM_DATA_DIR=str(tmp_path))
    done = subprocess.run([LEADLOOM, *args], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert SECRET not in done.stdout + done.stderr
    assert "LEADLOOM_CLICKHOUSE_PASSWORD" in done.stdout
    if "--json" in args:
        config = json.loads(done.stdout.strip().splitlines()[-1])
        assert config["settings"]["clickhouse_dsn"]["source"] == "env"
        assert config["derived"]["clickhouse_dsn"].startswith("https://reader:*")

"""``leadloom config``: every setting, its source, derived names; secrets never shown;
every setting documented in README.md."""

from __future__ import annotations

import json
import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.settings import MASK, Settings, mask_dsn
from leadloom import cli
from leadloom.commands.config import effective_config, render

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cr3t-Pa55"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """No LEADLOOM_* variables and no .env: a working directory of the test's own. The
    command's SIGTERM handler is put back afterwards (``cli.main`` installs one)."""
    for name in list(os.environ):
        if name.upper().startswith("LEADLOOM_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        yield tmp_path
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.mark.parametrize(("dsn", "shown"), [
    (f"https://default:{SECRET}@ch.example:8443", f"https://default:{MASK}@ch.example:8443"),
    (f"http://u:{SECRET}@[::1]:8123/db", f"http://u:{MASK}@[::1]:8123/db"),
    (f"https://ch:8443/?password={SECRET}&database=x",
     f"https://ch:8443/?password={MASK}&database=x"),
    (f"https://ch:8443/?access_token={SECRET}", f"https://ch:8443/?access_token={MASK}"),
    (f"http://u:p@ss{SECRET}@h:1", f"http://u:{MASK}@h:1"),  # an unescaped @ in the password
    ("https://u@h:8123", "https://u@h:8123"),
    ("chdb:///var/lib/leadloom/clickhouse", "chdb:///var/lib/leadloom/clickhouse"),
    ("", ""),
])
def test_dsn_passwords_are_masked_and_the_rest_kept(dsn: str, shown: str) -> None:
    assert mask_dsn(dsn) == shown


def test_dump_masks_the_password_and_the_dsn() -> None:
    settings = Settings(clickhouse_password=SECRET,  # type: ignore[arg-type]
                        clickhouse_dsn=f"https://default:{SECRET}@ch:8443")
    dumped = json.dumps(settings.dump())
    assert SECRET not in dumped and MASK in dumped
    assert Settings().dump()["clickhouse_password"] == ""  # no password: nothing to mask


def test_config_shows_every_setting_and_no_secret(clean_env: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LEADLOOM_CLICKHOUSE_PASSWORD", SECRET)
    monkeypatch.setenv("LEADLOOM_CLICKHOUSE_DSN", f"https://default:{SECRET}@ch:8443/?x=1")
    (clean_env / ".env").write_text("LEADLOOM_NAMESPACE=fromfile\n", encoding="utf-8")
    for args in (["config", "--json"], ["config"]):
        assert cli.main(args) == 0
        out = capsys.readouterr().out
        assert SECRET not in out
    assert cli.main(["config", "--json"]) == 0
    config = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    settings = config["settings"]
    assert set(settings) == set(Settings.model_fields)
    assert settings["clickhouse_password"] == {
        "env": "LEADLOOM_CLICKHOUSE_PASSWORD", "value": MASK, "source": "env"}
    assert settings["namespace"]["value"] == "fromfile"
    assert settings["namespace"]["source"] == ".env"
    assert settings["sink_batch_max"]["source"] == "default"
    derived = config["derived"]
    assert derived["faust_app_id"] == "fromfile-streams"
    assert derived["sink_group"] == "fromfile-sink"
    assert derived["clickhouse_dsn"] == f"https://default:{MASK}@ch:8443/?x=1"
    assert derived["topics"]["fromfile.raw.scans"] == {
        "partitions": 6, "key": "badge_id, else event_id", "carries": "booth_scan"}


def test_the_text_form_has_one_line_per_variable(clean_env: Path) -> None:
    text = render(effective_config(Settings()))
    for name in Settings.model_fields:
        assert re.search(rf"^  LEADLOOM_{name.upper()} +=", text, re.MULTILINE), name


def test_readme_documents_every_setting() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [f"LEADLOOM_{name.upper()}" for name in Settings.model_fields
               if f"`LEADLOOM_{name.upper()}`" not in readme]
    assert missing == [], "document these in README.md, section Configuration"

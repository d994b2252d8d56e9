"""Demo and bench sessions: a database of their own, and no server without the flag."""

from __future__ import annotations

import pytest

from core.settings import Settings
from leadloom import cli
from leadloom.commands import session
from leadloom.commands.session import (
    ServerDatabaseRefused,
    earlier_run_topics,
    pipeline_session,
    run_database,
)

SERVER = "https://reader:s3cret@clickhouse.example:8443"


def test_a_run_database_is_its_namespace_as_a_clickhouse_identifier() -> None:
    assert run_database("leadloom-demo-20261128031500") == "leadloom_demo_20261128031500"


def test_only_earlier_runs_topics_of_the_kind_are_tidied_away() -> None:
    topics = [
        "leadloom-bench-20261129215803.raw.scans",  # an earlier bench
        "leadloom-bench-20261129215803-streams-leads-changelog",  # its Faust topics
        "leadloom-bench-20261129230000.raw.scans",  # this run's
        "leadloom-bench-20261129230000-streams-leads-changelog",
        "leadloom-bench-20261129235959.raw.scans",  # a later run's, started meanwhile
        "leadloom-demo-20261129215803.raw.scans",  # another kind
        "leadloom-bench-notes.raw.scans", "leadloom-bench-2026112921580.raw.scans",
        "other-bench-20261129215803.raw.scans", "leadloom.raw.scans",
    ]
    assert earlier_run_topics(topics, "leadloom", "bench",
                              keep="leadloom-bench-20261129230000") == [
        "leadloom-bench-20261129215803-streams-leads-changelog",
        "leadloom-bench-20261129215803.raw.scans"]


@pytest.fixture
def nothing_may_start(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every way a session starts something records it and stops the test there."""
    started: list[str] = []

    def forbid(what: str):  # type: ignore[no-untyped-def]
        def call(*_args: object, **_kwargs: object) -> None:
            started.append(what)
            raise AssertionError(f"{what} started")
        return call

    monkeypatch.setattr(session, "Store", forbid("store"))
    monkeypatch.setattr(session, "Pipeline", forbid("pipeline"))
    monkeypatch.setattr(session.kafka_local, "is_up", forbid("broker check"))
    monkeypatch.setattr(session.kafka_local, "up", forbid("broker"))
    return started


def test_a_server_dsn_is_refused_before_anything_starts(nothing_may_start: list[str]) -> None:
    settings = Settings(clickhouse_dsn=SERVER)
    for label in ("demo", "bench"):
        with pytest.raises(ServerDatabaseRefused) as refused, \
                pipeline_session(settings, label, 1, lambda _m: None):
            pass
        reason = str(refused.value)
        assert "\n" not in reason and "--allow-server-database" in reason
        assert "clickhouse.example:8443" in reason and "s3cret" not in reason
    assert nothing_may_start == []


def test_with_the_flag_a_server_session_goes_ahead(nothing_may_start: list[str]) -> None:
    settings = Settings(clickhouse_dsn=SERVER)
    with pytest.raises(AssertionError, match="store started"), \
            pipeline_session(settings, "demo", 1, lambda _m: None, allow_server_database=True):
        pass
    assert nothing_may_start == ["store"]


def test_the_command_refuses_with_one_line(monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str],
                                           nothing_may_start: list[str]) -> None:
    monkeypatch.setenv("LEADLOOM_CLICKHOUSE_DSN", SERVER)
    monkeypatch.setattr(cli.signal, "signal", lambda *_args: None)  # keep pytest's SIGTERM
    for argv in (["demo", "--events", "10"], ["bench", "--events", "10"]):
        assert cli.main(argv) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("leadloom: error: ") and "\n" not in err, err
        assert "--allow-server-database" in err
    assert nothing_may_start == []

"""The ops dashboard's command panels name the commands that write ``replay_audit`` rows
(a renamed command would otherwise show as a second row beside a stale zero)."""

from __future__ import annotations

from dashboards.ops import OPS_COMMANDS, RESULTS, ops
from leadloom.commands import deadletters_retry, republish
from leadloom.commands.audit import Result


def test_the_known_commands_are_the_audited_ones() -> None:
    assert republish.COMMAND in OPS_COMMANDS
    assert deadletters_retry.COMMAND in OPS_COMMANDS
    assert len(set(OPS_COMMANDS)) == len(OPS_COMMANDS) == 4


def test_every_audit_result_has_its_column() -> None:
    results = {v for k, v in vars(Result).items() if not k.startswith("_")}
    assert set(RESULTS) == results
    runs = next(p for p in ops("leadloom").panels if p.id == 10)
    assert runs.columns == ("command", *sorted(results, key=RESULTS.index))

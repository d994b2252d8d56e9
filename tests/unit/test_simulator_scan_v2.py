"""The simulator's booth_scan version 2 option: off by default, and with it the day's
messages still validate as their kind says (malformed ones dead-letter with their reason)."""

from __future__ import annotations

from collections import Counter

import orjson

from producers.simulator import simulate_fair
from producers.simulator.params import SimulationParams
from streams.validate import Accepted, validate


def _scans(sim) -> list[dict]:  # type: ignore[no-untyped-def]
    return [orjson.loads(m.value) for m in sim.messages
            if m.kind == "valid" and m.event_type == "booth_scan"]


def test_without_the_option_every_scan_is_version_1_and_the_day_unchanged() -> None:
    plain = simulate_fair(3000, seed=5)
    assert {d["schema_version"] for d in _scans(plain)} == {1}
    again = simulate_fair(3000, seed=5, params=SimulationParams(scan_v2_share=0.0))
    assert [m.value for m in again.messages] == [m.value for m in plain.messages]


def test_a_share_of_version_2_scans_validates_as_the_truth_says() -> None:
    params = SimulationParams(scan_v2_share=0.5)
    sim = simulate_fair(3000, seed=5, params=params)
    scans = _scans(sim)
    versions = Counter(d["schema_version"] for d in scans)
    assert 0.4 < versions[2] / len(scans) < 0.6, versions
    v2 = [d["payload"] for d in scans if d["schema_version"] == 2]
    assert any("scanner_id" in p for p in v2) and any("scanner_device" in p for p in v2)
    assert any("dwell_seconds" in p for p in v2) and any("dwell_seconds" not in p for p in v2)
    outcomes = Counter()
    for m in sim.messages:
        outcome = validate(m.value, m.event_type, params.max_message_bytes)
        if m.kind == "malformed":
            assert not isinstance(outcome, Accepted), m.value[:200]
            outcomes[outcome.reason.value] += 1
        else:
            assert isinstance(outcome, Accepted), (outcome, m.value[:200])
    assert dict(outcomes) == sim.ground_truth["malformed_by_reason"]

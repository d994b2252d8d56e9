"""``leadloom simulate``: a simulated fair day onto the raw topics, plus its ground truth."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from core.kafka import ensure_topics
from core.settings import Settings
from producers.simulator import (
    SimulationParams,
    parse_surge,
    previous_season_counts,
    simulate_fair,
    write_ground_truth,
    write_season_csv,
)
from producers.simulator.publish import publish
from schemas.events import EventType


def simulate_and_publish(
    settings: Settings,
    events: int,
    seed: int,
    *,
    rate: float | None = None,
    truth_path: str | Path | None = None,
    progress: Callable[[str], None] = lambda _m: None,
    surge: str | None = None,
    previous_season_csv: Path | None = None,
    after_profiles: Callable[[], None] | None = None,
    scan_v2_share: float = 0.0,
    batch: int = 1,
) -> dict[str, object]:
    """Generate ``events`` distinct valid events (plus resends and malformed messages),
    write the ground truth, publish everything; return the figures of the run.

    ``surge`` is the raw ``CLUSTER@HH:MM`` option (local fair time): a bad one raises
    ``ValueError`` (one line) before anything is simulated or published. With
    ``previous_season_csv`` the previous season's professional buyers (a smaller fair,
    seeded from ``seed``: ``producers.simulator.season``) are written there as the CSV
    ``leadloom season import`` reads, and the report gains ``previous_season_csv``.

    With ``after_profiles``, the supplier profiles are published first (suppliers
    pre-register capacity, crafts and certifications before the fair: DOMAIN.md) and
    ``after_profiles()`` is called before the day's traffic; the demo waits there until the
    stream has them, so that a day replayed in seconds is matched as a live one would be
    (otherwise inquiries on one raw topic can overtake the profiles on another).

    ``scan_v2_share``: the share of scans sent as booth_scan version 2 (0..1; the
    simulator's ``SimulationParams.scan_v2_share``; ``ValueError`` outside 0..1).

    ``batch``: up to that many events per Kafka message (NDJSON; ``publish(batch=...)``,
    ``ValueError`` below 1); the report's ``kafka_messages`` says how many went out. The
    ground truth is the same either way.
    """
    # Oversized messages must be oversized for the configured stream limit.
    if not 0.0 <= scan_v2_share <= 1.0:
        raise ValueError(f"--scan-v2-share must be within 0..1, not {scan_v2_share}")
    if batch < 1:
        raise ValueError(f"--batch must be at least 1 event per message, not {batch}")
    params = SimulationParams(max_message_bytes=settings.max_message_bytes,
                              scan_v2_share=scan_v2_share)
    parsed = parse_surge(surge, params) if surge is not None else None
    started = time.monotonic()
    sim = simulate_fair(events, seed, params=params, surge=parsed)
    truth = sim.ground_truth
    path = Path(truth_path) if truth_path else settings.data_dir / "ground_truth.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_ground_truth(sim, path)
    progress(
        f"simulated {len(sim.messages)} messages ({truth['duplicates_resent']} resends, "
        f"{truth['malformed_sent']} malformed) in {time.monotonic() - started:.1f}s"
    )
    season_path = None
    if previous_season_csv is not None:
        season_path = write_season_csv(previous_season_counts(events, seed, params=params),
                                       previous_season_csv)
        progress(f"wrote the previous season's professional buyers to {season_path}")
    ensure_topics(settings)
    total = len(sim.messages)

    def tick(sent: int) -> None:
        progress(f"published {sent}/{total}")

    messages = sim.messages
    sent, elapsed, kafka_messages = 0, 0.0, 0
    if after_profiles is not None:
        profiles = [m for m in messages if m.event_type == EventType.SUPPLIER_PROFILE]
        messages = [m for m in messages if m.event_type != EventType.SUPPLIER_PROFILE]
        first = publish(profiles, settings, rate=rate, batch=batch)
        sent, elapsed, kafka_messages = first.sent, first.elapsed_s, first.kafka_messages
        progress(f"published {sent} supplier profiles (pre-registration)")
        after_profiles()
    report = publish(messages, settings, rate=rate, progress=lambda n: tick(sent + n),
                     batch=batch)
    out: dict[str, object] = {
        "events_produced": sent + report.sent,
        "kafka_messages": kafka_messages + report.kafka_messages,
        "duplicates_resent": truth["duplicates_resent"],
        "malformed_sent": truth["malformed_sent"],
        "late_events": truth["late_events"],
        "expected_valid_events": truth["expected_valid_events"],
        "ground_truth": str(path),
        "publish_s": round(elapsed + report.elapsed_s, 2),
    }
    if season_path is not None:
        out["previous_season_csv"] = str(season_path)
    return out

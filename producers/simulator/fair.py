"""Simulated fair day: the raw Kafka messages of one CIFW day plus their ground truth.

``simulate_fair(events, seed)`` returns a ``Simulation``: ``messages`` in publication order
(by received_at; a scanner's resend a few seconds after the original; late scans when their
scanner syncs, hours later) and ``ground_truth``, a JSON-serialisable dict of what a correct
pipeline must conclude (counts per type, cluster and event-time minute, dead letters by
reason, buyer of record per event, labelled buyer records for identity resolution) and,
for lead intelligence (``producers.simulator.insight``), the funnel per cluster, the
professional buyers per pavilion and cluster, each inquiry's hidden best suppliers
(``producers.simulator.suppliers``) and the surge window, if any.

One ``random.Random(seed)`` drives everything but the buyer records' typing and reading
errors (``producers.simulator.channels``; ``SimulationParams.realistic_variants``), which
draw from a second generator derived from the seed: the same ``events`` and ``seed`` give
byte-identical messages and truth, and the errors change only the contact fields' text.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path

import orjson

from producers.simulator import malformed as bad
from producers.simulator.buyers import BuyerFactory
from producers.simulator.clock import FairClock, iso_datetime, iso_ms
from producers.simulator.day import BuyerDay
from producers.simulator.insight import Insight
from producers.simulator.params import SimulationParams
from producers.simulator.payloads import profile
from producers.simulator.recorder import PROFILE, VALID, OutgoingMessage, Recorder
from producers.simulator.suppliers import Supplier, SupplierBook
from producers.simulator.surge import Surge, check_surge, surge_events
from schemas.deadletter import Reason
from schemas.events import EVENT_TYPES
from schemas.reference import CLUSTERS, CLUSTERS_BY_ID, booth_roster
from schemas.registry import key_of

__all__ = [
    "DEFAULT_DAY", "OutgoingMessage", "Simulation", "SimulationParams", "Surge", "restamp",
    "simulate_fair", "write_ground_truth",
]

DEFAULT_DAY = date(2026, 3, 26)

_NO_EVENT_ID = (Reason.BAD_JSON, Reason.NOT_AN_OBJECT)


@dataclass
class Simulation:
    """Messages in publication order and the ground truth a correct pipeline must reach."""

    messages: list[OutgoingMessage]
    ground_truth: dict


def simulate_fair(events: int, seed: int, *, fair_id: str = "CIFW-2026-AW",
                  day: date = DEFAULT_DAY, params: SimulationParams | None = None,
                  surge: Surge | None = None) -> Simulation:
    """Simulate one fair day with exactly ``events`` distinct valid events.

    Valid events are supplier profiles (one per exhibitor, fewer only for tiny runs),
    registrations, booth scans, online inquiries and procurement steps. Scanner resends
    (``kind="duplicate"``) and malformed messages (``kind="malformed"``) come on top.

    With ``surge``, ``surge_share`` of the events (at least ``surge_min_events``, at most
    what the run has) are extra buyers arriving at the surge's local start time who scan
    its cluster's booths (some write in to it) within ``surge_minutes``; their later
    procurement steps count too. ``ValueError`` for a negative ``events`` or a surge of an
    unknown cluster or outside the opening hours.
    """
    if events < 0:
        raise ValueError("events must be >= 0")
    p = params or SimulationParams()
    if surge is not None:
        check_surge(surge, p)
    rng = random.Random(seed)
    rec = Recorder()
    clock = FairClock(day, p)

    def new_id() -> str:
        return _uuid4(rng)

    roster = booth_roster()
    n_profiles = min(len(roster), events // max(1, p.events_per_profile))
    book = _profiles(rng, p, clock, rec, fair_id, n_profiles, new_id)
    insight = Insight()
    factory = BuyerFactory(rng, p, fair_id)
    # The channels' errors draw from a generator of their own, derived from the seed (a
    # string seed is hashed the same way in every process): the day's events stay the same.
    noise_rng = random.Random(f"buyer-record-noise:{seed}") if p.realistic_variants else None
    buyer_day = BuyerDay(rng, p, clock, rec, factory, fair_id, new_id, book, insight,
                         noise_rng=noise_rng)
    remaining = events - n_profiles
    in_surge = min(surge_events(events, p), remaining) if surge is not None else 0
    remaining -= in_surge
    while remaining > 0:
        remaining -= buyer_day.run(remaining)
    window = None
    if surge is not None:
        start = clock.at(surge.start_hour)
        window = (surge.cluster_id, start, start + p.surge_minutes * 60_000)
        while in_surge > 0:
            in_surge -= buyer_day.run_surge(in_surge, *window)
    _add_malformed(rng, p, rec, new_id)
    sim = _finish(rec, p, seed, events, fair_id, day)
    truth = sim.ground_truth
    truth["surge"] = None if window is None else {
        "cluster_id": window[0], "start": iso_ms(window[1]), "end": iso_ms(window[2])}
    truth["best_suppliers"] = insight.best_suppliers
    truth["funnel_by_cluster"] = insight.funnel_by_cluster()
    truth["professional_buyers"] = insight.professional_buyers(
        {b.id: b.buyer_type for b in factory.buyers})
    return sim


_V4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_V4_SET = (0x4000 << 64) | (0x8000 << 48)


def _uuid4(rng: random.Random) -> str:
    """A random (version 4) UUID drawn from the simulation's generator: reproducible."""
    h = f"{rng.getrandbits(128) & _V4_CLEAR | _V4_SET:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _profiles(rng: random.Random, p: SimulationParams, clock: FairClock, rec: Recorder,
              fair_id: str, n: int, new_id) -> SupplierBook:
    """One profile per chosen exhibitor (so each one's latest), recorded and indexed."""
    roster = booth_roster()
    chosen = range(len(roster)) if n == len(roster) else sorted(rng.sample(range(len(roster)), n))
    start, end = clock.at(p.profile_hours[0]), clock.at(p.profile_hours[1])
    book = SupplierBook()
    for i in chosen:
        booth = roster[i]
        payload = profile(rng, booth, CLUSTERS_BY_ID[booth.cluster_id])
        book.put(Supplier.from_payload(payload))
        occurred = clock.uniform_ms(rng, start, end)
        received = occurred + rng.randint(50, 3000)
        doc = BuyerDay.envelope(new_id(), PROFILE, fair_id, occurred, received,
                                {"channel": "web"}, payload)
        rec.valid(PROFILE, doc, occurred, received)
    return book


def _add_malformed(rng: random.Random, p: SimulationParams, rec: Recorder, new_id) -> None:
    """About ``malformed_rate`` of all messages: one of each reason first, then by weight."""
    total = len(rec.rows)
    n = round(p.malformed_rate * total / (1 - p.malformed_rate)) if total else 0
    reasons = [r for r, _ in p.malformed_weights]
    plan = rng.sample(reasons, len(reasons))[:n]
    plan += rng.choices(reasons, [w for _, w in p.malformed_weights], k=n - len(plan))
    low = max(p.oversized_bytes[0], p.max_message_bytes + 1024)
    sizes = (low, max(low, p.oversized_bytes[1]))
    for wanted in plan:
        reason, row = _malformed_base(rng, rec, wanted)
        publish_ms, _, base = rec.rows[row]
        event_id = new_id()
        # Broken from the event as it would be without typing errors: how it breaks (a cut
        # inside its bytes...) draws on its length, and must not depend on the errors.
        base_doc = orjson.loads(rec.clean_values.get(row, base.value))
        topic, value = bad.build(rng, reason, base_doc, event_id, sizes)
        # The key its producer would give it on that topic: what the registry says, from
        # the fields of the event it was broken from (the bytes may no longer parse).
        key = key_of({**base_doc, "event_id": event_id, "event_type": topic})
        rec.bad(topic, key, value, publish_ms + rng.randint(200, 30_000), reason,
                None if reason in _NO_EVENT_ID else event_id)


def _malformed_base(rng: random.Random, rec: Recorder, reason: str) -> tuple[str, int]:
    """A valid row to break for ``reason``; bad_json instead if no row of a usable type."""
    wanted = bad.BASES.get(reason)
    if wanted is not None:
        available = [t for t in wanted if rec.rows_by_type.get(t)]
        if available:
            rows = rec.rows_by_type[rng.choice(available[:2])]
            return reason, rows[rng.randrange(len(rows))]
        reason = str(Reason.BAD_JSON)
    row = rng.randrange(len(rec.rows))
    while rec.rows[row][2].kind != VALID:
        row = rng.randrange(len(rec.rows))
    return reason, row


def _finish(rec: Recorder, p: SimulationParams, seed: int, events: int, fair_id: str,
            day: date) -> Simulation:
    rows = sorted(rec.rows, key=lambda r: (r[0], r[1]))
    messages = [m for _, _, m in rows]
    dead = [
        {"position": pos, "event_type": m.event_type, "reason": rec.malformed[seq][0],
         "event_id": rec.malformed[seq][1]}
        for pos, (_, seq, m) in enumerate(rows) if seq in rec.malformed
    ]
    counted = {str(r): 0 for r in Reason}
    for entry in dead:
        counted[entry["reason"]] += 1
    by_reason = {r: n for r, n in counted.items() if n}  # like a GROUP BY reason
    valid = rec.valid_count()
    truth = {
        "seed": seed,
        "fair_id": fair_id,
        "day": day.isoformat(),
        "timezone": p.timezone,
        "events_requested": events,
        "events_produced": len(messages),
        "valid_messages": valid,
        "duplicates_resent": rec.duplicates,
        "malformed_sent": len(dead),
        "malformed_by_reason": by_reason,
        "messages_by_kind": {"valid": valid, "duplicate": rec.duplicates, "malformed": len(dead)},
        "late_events": len(rec.late_ids),
        "late_event_ids": rec.late_ids,
        "expected_valid_events": valid,
        "expected_by_type": {t.value: rec.by_type.get(t, 0) for t in EVENT_TYPES},
        "expected_by_cluster": {
            c.id: {"scans": rec.by_cluster[c.id][0], "inquiries": rec.by_cluster[c.id][1],
                   "procurement_steps": rec.by_cluster[c.id][2],
                   "distinct_badges": len(rec.badges[c.id])}
            for c in CLUSTERS
        },
        "expected_by_cluster_minute": {
            c.id: {m: rec.by_minute[c.id][m] for m in sorted(rec.by_minute[c.id])}
            for c in CLUSTERS
        },
        "distinct_buyers": len(rec.buyers),
        "buyer_of_record": rec.buyer_of_record,
        "buyer_records": rec.buyer_records,
        "malformed": dead,
        "params": asdict(p),
    }
    return Simulation(messages, truth)


def write_ground_truth(sim: Simulation, path: Path) -> None:
    """Write the ground truth as indented JSON (parent directories are created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(sim.ground_truth, option=orjson.OPT_INDENT_2))


def restamp(value: bytes, now: datetime) -> bytes:
    """The same event (same event_id) with occurred_at and received_at set to ``now``.

    For benchmarks that replay a simulated day at wall-clock time. Only for valid (and
    duplicate) messages: raises ``ValueError`` for a value that is not a JSON object, and
    for a naive ``now``.
    """
    stamp = iso_datetime(now)
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not a JSON event: {exc}") from exc
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")  # noqa: TRY004 - a bad value, not a bad type
    doc["occurred_at"] = stamp
    doc["received_at"] = stamp
    return orjson.dumps(doc)

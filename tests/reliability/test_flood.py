"""A flood of poison from kcat among valid events: nothing is lost, every poison message is a
dead letter with its reason (issue 7: "a 10,000-message poison flood [was] handled
exactly"). The long variant (``LEADLOOM_RELIABILITY_LONG=1``) sends 100,000 poison messages
through a live kcat stream while workers are SIGKILLed and the store refuses inserts in
turns (the outage loop)."""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
from dataclasses import dataclass

import pytest

from leadloom.pipeline import Pipeline
from tests.reliability import kcat
from tests.reliability.conftest import LONG, Figures
from tests.reliability.ledger import audit, fail_unless_exact, settle
from tests.reliability.poison import POISON
from tests.reliability.traffic import Message, valid_mix

pytestmark = [pytest.mark.integration, pytest.mark.reliability]


@dataclass(frozen=True)
class Plan:
    poison: int
    valid: int
    worker_kills: int  # SIGKILLs of a stream worker while the flood streams
    store_outages: int  # windows in which every insert fails (the sink retries)
    outage_s: float = 3.0


PLAN = Plan(100_000, 20_000, worker_kills=4, store_outages=3) if LONG else \
    Plan(10_000, 2_000, worker_kills=0, store_outages=0)
# Multi-MiB kinds would make the flood a bandwidth test; the catalogue test covers them.
FLOOD_KINDS = [k for k in POISON if len(k.message().value or b"") <= 128 * 1024]


def flood(plan: Plan) -> list[Message]:
    """``plan.poison`` poison messages cycling through the kinds, spread over 64 keys, with a
    valid event after every ``poison // valid``-th; grouped by topic (one kcat run each)."""
    kinds = itertools.cycle(FLOOD_KINDS)
    valid = iter(valid_mix(plan.valid))
    every = max(1, plan.poison // plan.valid)
    out: list[Message] = []
    for i in range(plan.poison):
        out.append(next(kinds).message(key=f"flood-{i % 64}".encode()))
        neighbour = next(valid, None) if i % every == every - 1 else None
        if neighbour is not None:
            out.append(neighbour)
    out += list(valid)
    return sorted(out, key=lambda m: (m.event_type, m.value is None))


def test_a_poison_flood_loses_nothing_and_dead_letters_every_message_with_its_reason(
    pipeline: Pipeline, figures: Figures,
) -> None:
    messages = flood(PLAN)
    poison = sum(1 for m in messages if m.expect is not None)
    assert poison == PLAN.poison and len(messages) == PLAN.poison + PLAN.valid
    start = time.monotonic()
    if PLAN.worker_kills or PLAN.store_outages:
        outage_loop(pipeline, messages, PLAN)
    else:
        kcat.produce(pipeline.settings, messages)
    sent_s = time.monotonic() - start
    idle, _, why = settle(pipeline, 600 if LONG else 180)
    elapsed = time.monotonic() - start

    labels = {m.value: m.kind for m in messages}
    landed = kcat.read_back(pipeline.settings, lambda v: labels.get(v, "unknown"))
    assert len(landed) == len(messages), "kcat delivered every message exactly once"
    found = audit(pipeline, messages, landed)
    figures.record(f"poison flood {PLAN.poison:,} + {PLAN.valid:,} valid"
                   + (f", {PLAN.worker_kills} kills, {PLAN.store_outages} store outages"
                      if LONG else ""),
                   lost=found.lost, doubled=found.doubled, seconds=elapsed, settled=idle,
                   sent_s=round(sent_s, 1), msgs_per_s=round(len(messages) / elapsed),
                   dead_letters=sum(found.reasons.values()), **found.figures())
    assert sum(found.reasons.values()) == PLAN.poison
    fail_unless_exact(idle, why, found, "poison flood")


def outage_loop(pipe: Pipeline, messages: list[Message], plan: Plan) -> None:
    """Stream ``messages`` through live kcat processes while, in turns, a worker is killed
    and the store refuses every insert for ``plan.outage_s`` seconds."""
    assert pipe.store is not None
    stream = kcat.Stream(pipe.settings)
    errors: list[Exception] = []

    def feed() -> None:
        try:
            for i, m in enumerate(messages):
                if m.value is None:
                    continue  # nulls need kcat -Z: sent in one run below
                stream.send(m)
                if i % 500 == 499:
                    stream.flush()
                    time.sleep(0.05)  # ~10k messages/s: the faults land mid-stream
            stream.close()
        except Exception as exc:  # noqa: BLE001 (surfaced below, not lost in the thread)
            errors.append(exc)

    producer = threading.Thread(target=feed)
    producer.start()
    real_insert = pipe.store.insert_json_rows
    faults = ["kill"] * plan.worker_kills + ["store"] * plan.store_outages
    faults = [f for pair in itertools.zip_longest(faults[::2], faults[1::2]) for f in pair if f]
    for fault in faults:
        time.sleep(2.0)
        if fault == "kill":
            restarts = pipe.restarts
            os.kill(pipe.worker_pids()[0], signal.SIGKILL)
            while pipe.restarts == restarts:
                time.sleep(0.1)
        else:
            def refuse(table: str, rows: list[bytes]) -> None:
                raise ConnectionError("simulated store outage")

            pipe.store.insert_json_rows = refuse  # type: ignore[method-assign]
            time.sleep(plan.outage_s)
            pipe.store.insert_json_rows = real_insert  # type: ignore[method-assign]
    producer.join()
    assert not errors, errors
    kcat.produce(pipe.settings, [m for m in messages if m.value is None])

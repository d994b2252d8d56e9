"""Hostile input sent with kcat: each kind is dead-lettered with its reason, nothing else is
lost, and valid events around it are stored exactly (issue 7, findings 1-2)."""

from __future__ import annotations

import time

import pytest

from leadloom.pipeline import Pipeline
from tests.reliability import kcat
from tests.reliability.conftest import Figures
from tests.reliability.ledger import audit, fail_unless_exact, settle
from tests.reliability.poison import CATALOGUE, VALID_LOOKING, Kind, reproduced
from tests.reliability.traffic import Message, message, valid_event

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

NEIGHBOURS = 40  # valid events in the same kcat run and partition as one valid-looking poison


def between_neighbours(kind: Kind, before: int, after: int) -> list[Message]:
    """``kind`` with valid events of its topic before and after it, sharing its key so that
    they sit next to it in its partition."""
    poison = kind.message()
    near = [message(valid_event(kind.event_type), key=poison.key, kind=f"near {kind.name}")
            for _ in range(before + after)]
    return near[:before] + [poison] + near[before:]


def labeller(sent: list[Message]):  # type: ignore[no-untyped-def]
    label = {m.value: m.kind for m in sent}
    return lambda value: label.get(value, "unknown")


def test_every_kind_of_poison_is_dead_lettered_with_its_reason_and_its_neighbours_stored(
    pipeline: Pipeline, figures: Figures,
) -> None:
    by_topic = sorted(CATALOGUE, key=lambda k: k.event_type)
    sent = [m for kind in by_topic for m in between_neighbours(kind, 1, 1)]
    start = time.monotonic()
    kcat.produce(pipeline.settings, sent)
    idle, _, why = settle(pipeline, 120)
    landed = kcat.read_back(pipeline.settings, labeller(sent))
    assert len(landed) == len(sent), "kcat delivered every message exactly once"
    found = audit(pipeline, sent, landed)

    print(f"{'kind':<36} {'expected':<18} {'got':<18} before the fixes")
    for kind in CATALOGUE:
        print(f"{kind.name:<36} {kind.expect or 'stored'!s:<18} "
              f"{found.fate.get(kind.name, '?'):<18} {reproduced(kind.name)}")
    figures.record(f"poison catalogue ({len(CATALOGUE)} kinds, 2 valid neighbours each)",
                   lost=found.lost, doubled=found.doubled, seconds=time.monotonic() - start,
                   settled=idle, **found.figures())
    fail_unless_exact(idle, why, found, "poison catalogue")


def test_a_valid_looking_poison_does_not_take_its_40_neighbours_with_it(
    pipeline: Pipeline, figures: Figures,
) -> None:
    """Each poison that parses as an event goes in one kcat run with 40 valid events of its
    topic on its partition (normally one worker batch); the pipeline settles before the next."""
    sent: list[Message] = []
    wedged, lost_before, doubled_before = "", 0, 0
    for kind in VALID_LOOKING:
        group = between_neighbours(kind, NEIGHBOURS // 2, NEIGHBOURS // 2)
        sent += group
        start = time.monotonic()
        kcat.produce(pipeline.settings, group)
        idle, _, why = settle(pipeline, 60)
        landed = kcat.read_back(pipeline.settings, labeller(sent))
        found = audit(pipeline, sent, landed)
        figures.record(f"{kind.name} amid {NEIGHBOURS} valid",
                       lost=found.lost - lost_before, doubled=found.doubled - doubled_before,
                       seconds=time.monotonic() - start, settled=idle,
                       poison=found.fate.get(kind.name, "?"))
        lost_before, doubled_before = found.lost, found.doubled
        if not idle:
            wedged = f"wedged by {kind.name}; later kinds not sent. {why}"
            break
    fail_unless_exact(not wedged, wedged, found, "valid-looking poison with neighbours")

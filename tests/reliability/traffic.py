"""Messages as kcat sends them, and valid traffic built by the factories.

A ``Message`` is one Kafka record for a raw topic: the event type that names the topic,
the key, the value (``None`` is a null value, a tombstone) and what the pipeline must
make of it: ``expect`` is a dead-letter reason, or ``None`` for "stored exactly as sent".
Valid messages carry their event document so that tests can say where it must be counted.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

from schemas import registry
from schemas.deadletter import Reason
from schemas.events import EventType
from schemas.reference import booth_roster, booths_by_exhibitor, booths_by_id
from tests.factories import events as f

SCAN, REGISTRATION, INQUIRY, PROCUREMENT, PROFILE = (
    EventType.BOOTH_SCAN.value, EventType.BUYER_REGISTRATION.value,
    EventType.ONLINE_INQUIRY.value, EventType.PROCUREMENT_STEP.value,
    EventType.SUPPLIER_PROFILE.value,
)
# Which lead counter an event type feeds (ARCHITECTURE.md, leads_per_cluster_minute).
LEAD_COUNTER = {SCAN: "scans", INQUIRY: "inquiries", PROCUREMENT: "procurement_steps"}
# Events that name a buyer and so get a buyer_events row.
BUYER_EVENT_TYPES = (SCAN, REGISTRATION, INQUIRY, PROCUREMENT)

_serial = itertools.count(1)


@dataclass(frozen=True)
class Message:
    """One record for the raw topic of ``event_type``."""

    event_type: str
    key: bytes
    value: bytes | None
    kind: str = "valid"
    expect: Reason | None = None  # the dead-letter reason, or None: stored as sent
    doc: dict[str, Any] | None = field(default=None, compare=False, hash=False)

    @property
    def stored(self) -> bool:
        return self.expect is None

    @property
    def event_id(self) -> str | None:
        return self.doc["event_id"] if self.doc else None


def key_of(doc: dict[str, Any]) -> bytes:
    """The registry's message key of an event (badge, event id, buyer ref or exhibitor);
    kcat frames a key for every message, so a document without one gets the empty key."""
    return registry.key_of(doc) or b""


def message(doc: dict[str, Any], *, key: bytes | None = None, kind: str = "valid",
            expect: Reason | None = None) -> Message:
    """A message carrying ``doc`` as JSON, keyed per the registry unless ``key`` is given."""
    return Message(doc["event_type"], key if key is not None else key_of(doc), f.encode(doc),
                   kind, expect, doc if expect is None else None)


def valid_event(event_type: str, n: int | None = None) -> dict[str, Any]:
    """A valid event of ``event_type``; ``n`` varies its badge, booth and exhibitor."""
    n = next(_serial) if n is None else n
    roster = booth_roster()
    booth = roster[n % len(roster)]
    badge = f"B-R{n:07d}"
    if event_type == SCAN:
        return f.scan(badge_id=badge, booth_id=booth.id)
    if event_type == REGISTRATION:
        return f.registration(badge_id=badge, email=f"buyer{n}@example.com",
                              phone=f"+86 138 {n % 10_000:04d} {n // 10_000 % 10_000:04d}")
    if event_type == INQUIRY:
        return f.inquiry(cluster_id=None, exhibitor_id=booth.exhibitor_id, quantity=n,
                         email=f"inq{n}@example.com", budget=f"{n}.50")
    if event_type == PROCUREMENT:
        return f.procurement(buyer_ref=badge, exhibitor_id=booth.exhibitor_id, quantity=n,
                             value=f"{n * 3}.25")
    if event_type == PROFILE:
        doc = f.envelope(PROFILE, {
            "exhibitor_id": booth.exhibitor_id, "cluster_id": booth.cluster_id,
            "categories": ["fabric"], "monthly_capacity": 1000 + n, "moq": 50 + n % 100,
            "lead_time_days": 30,
        }, source={"channel": "web"})
        return doc
    raise ValueError(f"no such event type: {event_type}")


def valid_mix(count: int, types: tuple[str, ...] = (SCAN, SCAN, INQUIRY, PROCUREMENT,
                                                    REGISTRATION, PROFILE)) -> list[Message]:
    """``count`` valid messages of varied types, keyed per the registry."""
    return [message(valid_event(types[i % len(types)])) for i in range(count)]


def lead_cluster(doc: dict[str, Any]) -> str | None:
    """The cluster an event counts for, from the reference data (None: not a lead)."""
    p = doc["payload"]
    if doc["event_type"] == SCAN:
        return booths_by_id()[p["booth_id"]].cluster_id
    if doc["event_type"] in (INQUIRY, PROCUREMENT):
        return p.get("cluster_id") or booths_by_exhibitor()[p["exhibitor_id"]].cluster_id
    return None


def expected_leads(docs: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per cluster, distinct scans, inquiries and procurement steps among ``docs``."""
    seen: dict[str, set[tuple[str, str]]] = {}
    for doc in docs:
        cluster = lead_cluster(doc)
        if cluster is not None:
            seen.setdefault(cluster, set()).add((LEAD_COUNTER[doc["event_type"]],
                                                 doc["event_id"]))
    return {c: dict(Counter(kind for kind, _ in ids)) for c, ids in seen.items()}


def distinct_docs(messages: list[Message]) -> list[dict[str, Any]]:
    """The events that must be stored, once each (a resend is the same event)."""
    by_id = {m.event_id: m.doc for m in messages if m.stored and m.doc is not None}
    return list(by_id.values())  # type: ignore[arg-type]


def dumps(doc: Any) -> bytes:
    return orjson.dumps(doc)

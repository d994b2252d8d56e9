"""Bad input, one message per dead-letter reason (``schemas.deadletter.Reason``).

Each builder starts from a copy of a valid event document (with a fresh event_id) and breaks
it so that exactly its reason applies under the stream validator's rules, checked in order:
size > max bytes -> oversized; not JSON/UTF-8 -> bad_json; not an object -> not_an_object;
event_type != the topic's -> wrong_topic; pydantic: only "missing" errors -> missing_field,
any other -> invalid_field; then references: unknown booth (scans), unknown cluster_id,
unknown exhibitor_id.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable

import orjson

from producers.simulator.payloads import NOTES_EN, NOTES_ZH
from producers.simulator.recorder import INQUIRY, PROCUREMENT, PROFILE, REGISTRATION, SCAN
from schemas.deadletter import Reason
from schemas.reference import CLUSTERS

Doc = dict[str, object]
Built = tuple[str, bytes]  # (raw topic's event type, value)

UNKNOWN_CLUSTERS = ("ningbo", "shengze", "xintang", "puning", "shishi", "haining")
UNKNOWN_EVENT_TYPES = ("badge_scan", "booth_visit", "lead_capture", "scan", "order_step")
RAW_TYPES = (REGISTRATION, SCAN, INQUIRY, PROCUREMENT, PROFILE)

# Which event types a reason can be built from. Each reference breakage leaves every other
# reference valid, so the reason does not depend on the order of the reference checks; and
# a scan's own cluster_id/exhibitor_id are never the broken part (the booth is
# authoritative for scans).
BASES: dict[str, tuple[str, ...]] = {
    Reason.OVERSIZED: (SCAN, INQUIRY),
    Reason.UNKNOWN_BOOTH: (SCAN,),
    Reason.UNKNOWN_CLUSTER: (INQUIRY, PROCUREMENT),
    Reason.UNKNOWN_EXHIBITOR: (PROCUREMENT, INQUIRY),
}

_MISSING: dict[str, tuple[tuple[str, ...], ...]] = {
    SCAN: (("badge_id",), ("booth_id",), ("scanner_device",), ("method",)),
    REGISTRATION: (("badge_id",), ("full_name",)),
    INQUIRY: (("channel",),),
    PROCUREMENT: (("step",), ("buyer_ref",), ("exhibitor_id",)),
    PROFILE: (("monthly_capacity",), ("categories",), ("cluster_id",), ("moq",)),
}
_ENVELOPE_REQUIRED = ("occurred_at", "received_at", "fair_id", "source", "payload")

# (payload field, bad value) per type; envelope breakages apply to every type.
_INVALID: dict[str, tuple[tuple[str, object], ...]] = {
    SCAN: (("method", "laser"), ("rating", "very hot"), ("note", "x" * 600), ("badge_id", ""),
           ("booth_id", 4711)),
    REGISTRATION: (("country", "China"), ("consent", "maybe"), ("buyer_type", "vip"),
                   ("email", "a" * 250)),
    INQUIRY: (("quantity", "lots"), ("budget", "-5"), ("currency", "rmb"),
              ("lead_time_days", 1000), ("channel", "email")),
    PROCUREMENT: (("quantity", "lots"), ("value", "a lot"), ("step", "negotiation"),
                  ("quantity", 0)),
    PROFILE: (("moq", -1), ("monthly_capacity", "big"), ("categories", "knitwear")),
}


def _dump(doc: Doc) -> bytes:
    return orjson.dumps(doc)


def _payload(doc: Doc) -> dict[str, object]:
    payload = doc["payload"]
    assert isinstance(payload, dict)
    return payload


def bad_json(rng: random.Random, doc: Doc, topic: str) -> Built:
    value = _dump(doc)
    r = rng.random()
    if r < 0.55:  # connection dropped mid-write
        return topic, value[: rng.randrange(1, len(value) - 1)]
    if r < 0.8:  # a Latin-1 byte or a broken multi-byte sequence
        cut = rng.randrange(1, len(value) - 1)
        return topic, value[:cut] + rng.choice((b"\xff", b"\xc3\x28", b"\xfe")) + value[cut:]
    if r < 0.9:  # a Python dict printed instead of serialised
        return topic, str(doc).encode()
    return topic, value + b"}"


def not_an_object(rng: random.Random, doc: Doc, topic: str) -> Built:
    r = rng.random()
    if r < 0.6:
        return topic, b"[" + _dump(doc) + b"]"
    if r < 0.85:  # double-encoded: a JSON string holding the JSON
        return topic, orjson.dumps(_dump(doc).decode())
    return topic, rng.choice((b"null", b"42", b"true"))


def oversized(rng: random.Random, doc: Doc, topic: str, size: tuple[int, int]) -> Built:
    target = rng.randint(*size)
    filler = (rng.choice(NOTES_ZH) + " " + rng.choice(NOTES_EN) + "; ") * (target // 20 + 1)
    field = "note" if doc["event_type"] == SCAN else "message"
    _payload(doc)[field] = filler[: target // 2]  # CJK text is 3 bytes a character
    value = _dump(doc)
    while len(value) < size[0]:
        _payload(doc)[field] = str(_payload(doc)[field]) * 2
        value = _dump(doc)
    return topic, value


def missing_field(rng: random.Random, doc: Doc, topic: str) -> Built:
    if rng.random() < 0.3:
        del doc[rng.choice(_ENVELOPE_REQUIRED)]
    else:
        (name,) = rng.choice(_MISSING[topic])
        _payload(doc).pop(name, None)
        if name == "scanner_device":  # a version 2 scan names its scanner scanner_id
            _payload(doc).pop("scanner_id", None)
    return topic, _dump(doc)


def invalid_field(rng: random.Random, doc: Doc, topic: str) -> Built:
    r = rng.random()
    if r < 0.2:
        doc["occurred_at"] = str(doc["occurred_at"]).removesuffix("Z")  # naive timestamp
    elif r < 0.3:
        doc[rng.choice(("schema_version", "fair_id"))] = rng.choice((3, "cifw 2026"))
    elif r < 0.38:
        doc["debug"] = True  # unexpected envelope field
    elif r < 0.45 and topic == INQUIRY:
        _payload(doc).pop("cluster_id", None)  # no target at all
        _payload(doc).pop("exhibitor_id", None)
    else:
        name, bad = rng.choice(_INVALID[topic])
        _payload(doc)[name] = bad
    return topic, _dump(doc)


def wrong_topic(rng: random.Random, doc: Doc, topic: str) -> Built:
    if rng.random() < 0.6:  # a producer bug: right event, wrong topic
        return rng.choice([t for t in RAW_TYPES if t != topic]), _dump(doc)
    doc["event_type"] = rng.choice(UNKNOWN_EVENT_TYPES)
    return topic, _dump(doc)


def unknown_cluster(rng: random.Random, doc: Doc, topic: str) -> Built:
    payload = _payload(doc)
    payload["cluster_id"] = rng.choice(UNKNOWN_CLUSTERS)
    if topic == INQUIRY and rng.random() < 0.5:
        payload.pop("exhibitor_id", None)
    return topic, _dump(doc)


def unknown_booth(rng: random.Random, doc: Doc, topic: str) -> Built:
    payload = _payload(doc)
    cluster = rng.choice(CLUSTERS)
    pavilion = str(payload["booth_id"]).split("-")[0]
    payload["booth_id"] = f"{pavilion}-{cluster.code}-{cluster.booths + rng.randint(1, 40):03d}"
    if rng.random() < 0.5:
        payload.pop("exhibitor_id", None)
        payload.pop("cluster_id", None)
    return topic, _dump(doc)


def unknown_exhibitor(rng: random.Random, doc: Doc, topic: str) -> Built:
    payload = _payload(doc)
    cluster = rng.choice(CLUSTERS)
    payload["exhibitor_id"] = f"EX-{cluster.code}-{cluster.booths + rng.randint(1, 40):03d}"
    if rng.random() < 0.5 or payload.get("cluster_id") is None:
        payload.pop("cluster_id", None)
    return topic, _dump(doc)


BUILDERS: dict[str, Callable[[random.Random, Doc, str], Built]] = {
    Reason.BAD_JSON: bad_json,
    Reason.NOT_AN_OBJECT: not_an_object,
    Reason.MISSING_FIELD: missing_field,
    Reason.INVALID_FIELD: invalid_field,
    Reason.WRONG_TOPIC: wrong_topic,
    Reason.UNKNOWN_CLUSTER: unknown_cluster,
    Reason.UNKNOWN_BOOTH: unknown_booth,
    Reason.UNKNOWN_EXHIBITOR: unknown_exhibitor,
}


def build(rng: random.Random, reason: str, base: Doc, event_id: str,
          oversized_bytes: tuple[int, int]) -> Built:
    """Break a copy of ``base`` (a valid event document) so that ``reason`` applies."""
    doc = copy.deepcopy(base)
    doc["event_id"] = event_id
    topic = str(doc["event_type"])
    if reason == Reason.OVERSIZED:
        return oversized(rng, doc, topic, oversized_bytes)
    return BUILDERS[reason](rng, doc, topic)

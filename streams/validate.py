"""Decode raw bytes into a typed, enriched event, or a rejection with its reason.

Pure: no Kafka here. The checks run in a fixed order (size, JSON, object, topic,
schema, reference data) so that one message has exactly one reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from pydantic import ValidationError

from schemas.deadletter import Reason
from schemas.events import EVENT_CLASSES, Event, InquiryEvent, ProcurementEvent, ScanEvent
from schemas.reference import CLUSTERS_BY_ID, booths_by_exhibitor, booths_by_id


@dataclass(frozen=True)
class Enrichment:
    """What the reference data adds: where the engagement happened."""

    cluster_id: str | None
    pavilion_id: str | None
    exhibitor_id: str | None


@dataclass(frozen=True)
class Accepted:
    event: Event
    enrichment: Enrichment


@dataclass(frozen=True)
class Rejected:
    reason: Reason
    detail: str
    event_id: str | None = None


def validate(raw: bytes | None, event_type: str, max_bytes: int) -> Accepted | Rejected:
    """Validate one message of the raw topic that carries ``event_type``."""
    if raw is None:
        return Rejected(Reason.BAD_JSON, "empty message (no value)")
    if len(raw) > max_bytes:
        return Rejected(
            Reason.OVERSIZED, f"{len(raw)} bytes > limit {max_bytes}", _sniff_event_id(raw)
        )
    try:
        # Fast path: one Rust-side parse-and-validate for the common, valid message.
        event = EVENT_CLASSES[event_type].model_validate_json(raw)
    except ValidationError:
        return _classify(raw, event_type)
    return _enrich(event)  # type: ignore[arg-type]


def _classify(raw: bytes, event_type: str) -> Accepted | Rejected:
    """Why an invalid message is invalid: the first failing check, in a fixed order."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Rejected(Reason.BAD_JSON, _short(str(exc)))
    if not isinstance(doc, dict):
        return Rejected(Reason.NOT_AN_OBJECT, f"top-level JSON is {type(doc).__name__}")
    event_id = doc.get("event_id") if isinstance(doc.get("event_id"), str) else None
    declared = doc.get("event_type")
    if declared is None:
        # Required, not defaulted from the topic: a producer that omits it is broken.
        return Rejected(Reason.MISSING_FIELD, "event_type: Field required", event_id)
    if declared != event_type:
        return Rejected(
            Reason.WRONG_TOPIC,
            f"event_type {declared!r} does not belong on the {event_type} topic",
            event_id,
        )
    try:
        event = EVENT_CLASSES[event_type].model_validate(doc)
    except ValidationError as exc:
        return _schema_rejection(exc, event_id)
    return _enrich(event)  # type: ignore[arg-type]


def _schema_rejection(exc: ValidationError, event_id: str | None) -> Rejected:
    errors = exc.errors(include_url=False, include_input=False)
    missing = [e for e in errors if e["type"] == "missing"]
    first = (missing or errors)[0]
    where = ".".join(str(p) for p in first["loc"]) or "event"  # model-level checks: no loc
    reason = Reason.MISSING_FIELD if missing else Reason.INVALID_FIELD
    return Rejected(reason, _short(f"{where}: {first['msg']} ({len(errors)} error(s))"), event_id)


def _enrich(event: Event) -> Accepted | Rejected:
    payload = event.payload
    cluster_id = getattr(payload, "cluster_id", None)
    if cluster_id is not None and cluster_id not in CLUSTERS_BY_ID:
        return Rejected(Reason.UNKNOWN_CLUSTER, f"cluster {cluster_id!r}", event.event_id)
    if isinstance(event, ScanEvent):
        booth = booths_by_id().get(event.payload.booth_id)
        if booth is None:
            return Rejected(
                Reason.UNKNOWN_BOOTH, f"booth {event.payload.booth_id!r}", event.event_id
            )
        # The booth is authoritative: a scanner configured for the wrong cluster still
        # scanned at this booth, so the lead belongs to the booth's cluster.
        return Accepted(event, Enrichment(booth.cluster_id, booth.pavilion_id, booth.exhibitor_id))
    exhibitor_id = getattr(payload, "exhibitor_id", None)
    if exhibitor_id is not None:
        booth = booths_by_exhibitor().get(exhibitor_id)
        if booth is None:
            return Rejected(Reason.UNKNOWN_EXHIBITOR, f"exhibitor {exhibitor_id!r}", event.event_id)
        if isinstance(event, (InquiryEvent, ProcurementEvent)) and cluster_id is None:
            cluster_id = booth.cluster_id
    pavilion_id = CLUSTERS_BY_ID[cluster_id].pavilion_id if cluster_id else None
    return Accepted(event, Enrichment(cluster_id, pavilion_id, exhibitor_id))


def _sniff_event_id(raw: bytes) -> str | None:
    """Best-effort event id of an oversized message, for the dead letter's context."""
    head = raw[:300]
    marker = b'"event_id":'
    at = head.find(marker)
    if at < 0:
        return None
    rest = head[at + len(marker):].lstrip()
    if not rest.startswith(b'"'):
        return None
    end = rest.find(b'"', 1)
    return rest[1:end].decode("utf-8", "replace")[:64] if end > 0 else None


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."

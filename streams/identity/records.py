"""Accepted events -> identity records, the resolver's input on the identity topic. Pure.

Registrations and inquiries carry the contact fields a person typed; scans and
procurement steps carry only a badge id (``buyer_ref`` is the badge). Supplier profiles
are not about buyers and have no identity record. One record is one JSON object of the
schema :class:`schemas.identity.IdentityRecord` (exact: the resolver dead-letters a line
that breaks it).

The record is built from an event that already passed validation, so it is not
validated a second time here (that would cost about as much as a tenth of the whole
batch's work per event): the resolver validates every line it reads, and
tests/unit/test_identity_schema.py validates what this module builds for every event
type of a simulated day (an unknown, missing or mistyped field fails it).

The raw contact fields travel only on this internal topic and the resolver's changelog
(resolution needs them); analytics tables get them hashed or masked.
"""

from __future__ import annotations

from schemas.events import (
    ContactFields,
    Event,
    InquiryEvent,
    ProcurementEvent,
    RegistrationEvent,
    ScanEvent,
)
from schemas.identity import IdentityContact
from schemas.reference import booths_by_exhibitor
from streams.validate import Enrichment

CONTACT_FIELDS = tuple(IdentityContact.model_fields)
_EVENT_FIELD = {"wechat": "wechat_id"}  # contact field -> the event payload's name for it
_BOOTH_OF_EXHIBITOR = {e: b.id for e, b in booths_by_exhibitor().items()}


def identity_record(event: Event, enrichment: Enrichment, occurred_at: str
                    ) -> dict[str, object] | None:
    """The identity record (:class:`IdentityRecord`'s fields, JSON-ready) of an accepted
    event, or None for events without a buyer. ``occurred_at`` is the event time as the
    event's row already spells it."""
    p = event.payload
    if isinstance(event, (RegistrationEvent, InquiryEvent)):
        badge, contact, consent = getattr(p, "badge_id", None), _contact(p), p.consent
    elif isinstance(event, ScanEvent):
        badge, contact, consent = p.badge_id, None, False
    elif isinstance(event, ProcurementEvent):
        badge, contact, consent = p.buyer_ref, None, False
    else:
        return None
    exhibitor = enrichment.exhibitor_id or ""
    booth = p.booth_id if isinstance(event, ScanEvent) else _BOOTH_OF_EXHIBITOR.get(exhibitor, "")
    return {
        "event_id": event.event_id,
        "event_type": event.event_type,
        "fair_id": event.fair_id,
        "occurred_at": occurred_at,
        "cluster_id": enrichment.cluster_id or "",
        "exhibitor_id": exhibitor,
        "booth_id": booth,
        "badge_id": badge or "",
        "consent": consent,
        "contact": contact,
    }


def _contact(p: ContactFields) -> dict[str, str | None]:
    # in the schema's order, so the line is byte for byte what the schema renders
    return {k: getattr(p, _EVENT_FIELD.get(k, k), None) for k in CONTACT_FIELDS}

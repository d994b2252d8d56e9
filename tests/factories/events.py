"""Factories for event documents, valid unless a test says otherwise."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from schemas.events import EventType
from schemas.reference import booth_roster

_ids = itertools.count(1)
# Documents carry event types as plain strings (``EventType.X.value``), as decoded JSON
# does: tests use them as dict keys that orjson serialises (it accepts only exact str keys).
T0 = datetime(2026, 3, 26, 2, 15, 30, tzinfo=UTC)  # 10:15:30 in Shanghai


def envelope(event_type: str, payload: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    doc = {
        "event_id": f"test-{next(_ids)}",
        "event_type": event_type,
        "schema_version": 1,
        "fair_id": "CIFW-2026-AW",
        "occurred_at": T0.isoformat(),
        "received_at": (T0 + timedelta(seconds=1)).isoformat(),
        "source": {"channel": "scanner", "device_id": "SCN-1"},
        "payload": payload,
    }
    doc.update(overrides)
    return doc


def scan(**payload: Any) -> dict[str, Any]:
    booth = booth_roster()[0]
    body = {"badge_id": "B-000001", "booth_id": booth.id, "scanner_device": "SCN-1",
            "method": "qr", "rating": "hot"}
    body.update(payload)
    return envelope(EventType.BOOTH_SCAN.value, body)


def inquiry(**payload: Any) -> dict[str, Any]:
    body = {"full_name": "王伟", "email": "wang.wei@example.com", "cluster_id": "keqiao",
            "categories": ["fabric"], "quantity": 500, "budget": "12000.00",
            "channel": "web", "consent": True}
    body.update(payload)
    return envelope(EventType.ONLINE_INQUIRY.value, body, source={"channel": "web"})


def procurement(**payload: Any) -> dict[str, Any]:
    booth = booth_roster()[5]
    body = {"step": "sample_request", "buyer_ref": "B-000001", "exhibitor_id": booth.exhibitor_id,
            "quantity": 20, "value": "800.00"}
    body.update(payload)
    return envelope(EventType.PROCUREMENT_STEP.value, body)


def registration(**payload: Any) -> dict[str, Any]:
    body = {"badge_id": "B-000001", "full_name": "Li Na", "email": "Li.Na@Example.com",
            "phone": "+86 138 0013 8000", "country": "CN", "consent": True}
    body.update(payload)
    return envelope(EventType.BUYER_REGISTRATION.value, body, source={"channel": "kiosk"})


def encode(doc: Any) -> bytes:
    return orjson.dumps(doc)

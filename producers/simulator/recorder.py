"""Collects the simulated messages with their publication times and tallies the ground truth.

The truth is counted while events are emitted, from the same values that go on the wire:
per event type, per cluster, per cluster and event-time minute, buyer of record.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from producers.simulator.clock import minute_key
from schemas.events import EventType
from schemas.reference import CLUSTERS
from schemas.registry import key_of

VALID, DUPLICATE, MALFORMED = "valid", "duplicate", "malformed"
# Plain ``str`` values, not the enum members: they become dict keys of the ground truth,
# which orjson serialises only when keys are exactly ``str``.
SCAN, REGISTRATION, INQUIRY, PROCUREMENT, PROFILE = (
    EventType.BOOTH_SCAN.value, EventType.BUYER_REGISTRATION.value,
    EventType.ONLINE_INQUIRY.value, EventType.PROCUREMENT_STEP.value,
    EventType.SUPPLIER_PROFILE.value,
)
_COLUMN = {SCAN: 0, INQUIRY: 1, PROCUREMENT: 2}
_CONTACT_KEYS = ("full_name", "company", "email", "phone", "wechat_id", "country", "province",
                 "city", "address", "postcode")


@dataclass(frozen=True)
class OutgoingMessage:
    """One Kafka record to publish.

    ``event_type`` names the raw topic (a key of ``schemas.registry.RAW_TOPIC_BY_EVENT_TYPE``),
    ``key`` is the registry's message key (``schemas.registry.key_of``), ``value`` the
    exact bytes for the wire and ``kind`` one of "valid", "duplicate" (same bytes as an
    earlier valid message) or "malformed" (must end up as a dead letter).
    """

    event_type: str
    key: bytes | None
    value: bytes
    kind: str


class Recorder:
    """Message list in emission order (sorted by publication time at the end) plus tallies."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, int, OutgoingMessage]] = []  # (publish ms, seq, message)
        self.rows_by_type: dict[str, list[int]] = {}
        self.by_type: dict[str, int] = {}
        self.by_cluster = {c.id: [0, 0, 0] for c in CLUSTERS}
        self.badges: dict[str, set[str]] = {c.id: set() for c in CLUSTERS}
        self.by_minute: dict[str, dict[str, list[int]]] = {c.id: {} for c in CLUSTERS}
        self.buyer_of_record: dict[str, str] = {}
        self.buyer_records: list[dict[str, object]] = []
        self.buyers: dict[str, None] = {}
        self.late_ids: list[str] = []
        self.duplicates = 0
        self.malformed: dict[int, tuple[str, str | None]] = {}  # seq -> (reason, event_id)
        self.clean_values: dict[int, bytes] = {}  # row -> its value without typing errors
        self._minutes: dict[int, str] = {}

    def _add(self, publish_ms: int, msg: OutgoingMessage) -> int:
        seq = len(self.rows)
        self.rows.append((publish_ms, seq, msg))
        return seq

    def valid(self, event_type: str, doc: dict, occurred_ms: int, received_ms: int, *,
              buyer: str | None = None, cluster: str | None = None, badge: str | None = None,
              tags: list[str] | None = None, channel: str | None = None,
              clean_doc: dict | None = None) -> int:
        """Serialise and record one valid event, keyed by the registry; return its row index.

        With ``tags`` (registrations and inquiries) the event is also a labelled buyer record:
        id, buyer, source (event type), channel (``producers.simulator.channels``), the
        contact fields as sent, and ``variants``: the tags of the drift it carries.
        ``clean_doc``: the same event without the channel's typing errors, the base of any
        malformed message made from this one (so that the errors change no other message)."""
        value = bytes(memoryview(orjson.dumps(doc)))  # orjson keeps a 4 KiB buffer
        msg = OutgoingMessage(event_type, key_of(doc), value, VALID)
        row = self._add(received_ms, msg)
        self.rows_by_type.setdefault(event_type, []).append(row)
        if clean_doc is not None:
            self.clean_values[row] = bytes(memoryview(orjson.dumps(clean_doc)))
        self.by_type[event_type] = self.by_type.get(event_type, 0) + 1
        event_id = doc["event_id"]
        if buyer is not None:
            self.buyer_of_record[event_id] = buyer
            self.buyers[buyer] = None
        if cluster is not None and event_type in _COLUMN:
            col = _COLUMN[event_type]
            self.by_cluster[cluster][col] += 1
            bucket = occurred_ms // 60_000
            minute = self._minutes.get(bucket)
            if minute is None:
                minute = self._minutes[bucket] = minute_key(occurred_ms)
            cell = self.by_minute[cluster].get(minute)
            if cell is None:
                cell = self.by_minute[cluster][minute] = [0, 0, 0]
            cell[col] += 1
            if badge is not None:
                self.badges[cluster].add(badge)
        if tags is not None and buyer is not None:
            payload = doc["payload"]
            record: dict[str, object] = {"id": event_id, "buyer": buyer, "source": event_type,
                                         "channel": channel}
            for k in _CONTACT_KEYS:
                record["wechat" if k == "wechat_id" else k] = payload.get(k)
            record["variants"] = tags
            self.buyer_records.append(record)
        return row

    def duplicate(self, row: int, publish_ms: int) -> None:
        original = self.rows[row][2]
        self._add(publish_ms, OutgoingMessage(original.event_type, original.key,
                                              original.value, DUPLICATE))
        self.duplicates += 1

    def bad(self, topic_type: str, key: bytes | None, value: bytes, publish_ms: int,
            reason: str, event_id: str | None) -> None:
        seq = self._add(publish_ms, OutgoingMessage(topic_type, key, value, MALFORMED))
        self.malformed[seq] = (reason, event_id)

    def valid_count(self) -> int:
        return sum(self.by_type.values())

"""Project accepted events and rejections onto ClickHouse table rows (JSON-ready dicts).

Pure. Column names come from the registry; the sink passes these rows through to
``JSONEachRow`` inserts untouched. Personal data (names, email, phone, WeChat id)
leaves this module only hashed or masked, and only for buyers who consented
(DESIGN.md invariant 8).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import NamedTuple

from schemas.events import (
    ContactFields,
    Event,
    InquiryEvent,
    ProcurementEvent,
    ProfileEvent,
    RegistrationEvent,
    ScanEvent,
)
from schemas.registry import ORIGIN_HEADER, TABLE_BY_EVENT_TYPE
from streams.validate import Enrichment, Rejected

DEAD_LETTER_RAW_PREFIX = 64 * 1024  # raw bytes kept per dead letter (base64: ~87 KiB)


class SourceRef(NamedTuple):
    """Where an event was read: ``topic[partition]@offset``, and ``#line`` for a line after
    the first of a batched message (``line``: 0-based index of the event's line in the
    message's NDJSON value, ``streams.lines``; 0 for a message of one event).

    A named tuple (immutable, hashable): made once per event on the hot path, where a
    frozen dataclass's ``__init__`` cost ~0.3 µs more."""

    topic: str
    partition: int
    offset: int
    line: int = 0

    def __str__(self) -> str:
        where = f"{self.topic}[{self.partition}]@{self.offset}"
        return f"{where}#{self.line}" if self.line else where


# ``topic[partition]@offset[#line]`` as SourceRef prints it; a topic name may itself hold
# brackets, so the coordinates are matched at the end (Kafka topic names never hold '#').
# Bounds: Kafka's partition and offset types (int32, int64) and the columns they go to
# (dead_letters: UInt16, UInt64, UInt32).
_REF = re.compile(r"^(?P<topic>.{1,249})\[(?P<partition>\d{1,5})\]@(?P<offset>\d{1,19})"
                  r"(?:#(?P<line>\d{1,10}))?$")
_MAX_PARTITION = 2**16 - 1
_MAX_OFFSET = 2**63 - 1
_MAX_LINE = 2**32 - 1


def origin_of(headers: Mapping[str, bytes] | None, source: SourceRef) -> SourceRef:
    """Where an event was first read: its :data:`~schemas.registry.ORIGIN_HEADER` header
    (set by a replay), else ``source`` itself.

    The line: the header's when it names one (``#line``: a single event re-sent alone, e.g.
    one line of a batch retried by ``leadloom deadletters retry``), else ``source.line``
    (a whole message re-sent as it was keeps its lines where they were).

    Never raises: a header that is not ``topic[partition]@offset[#line]`` in UTF-8 (within
    the column bounds) is ignored, so a bad header cannot stop a dead letter from being
    made; the message then counts as its own origin.
    """
    value = (headers or {}).get(ORIGIN_HEADER)
    if not isinstance(value, bytes | bytearray):
        return source
    try:
        m = _REF.match(bytes(value).decode("utf-8"))
    except UnicodeDecodeError:
        return source
    if m is None:
        return source
    partition, offset = int(m["partition"]), int(m["offset"])
    line = source.line if m["line"] is None else int(m["line"])
    if partition > _MAX_PARTITION or offset > _MAX_OFFSET or line > _MAX_LINE:
        return source
    return SourceRef(m["topic"], partition, offset, line)


def table_for(event: Event) -> str:
    return TABLE_BY_EVENT_TYPE[event.event_type].name


def event_row(event: Event, enrichment: Enrichment, source: SourceRef) -> dict[str, object]:
    """The row of ``event`` in its raw event table (see registry ``TABLE_BY_EVENT_TYPE``)."""
    row: dict[str, object] = {
        "event_id": event.event_id,
        "event_type": event.event_type,
        "fair_id": event.fair_id,
        "occurred_at": _ts(event.occurred_at),
        "received_at": _ts(event.received_at),
        "source_channel": event.source.channel,
        "source_device": event.source.device_id or "",
        "source_topic": source.topic,
        "source_partition": source.partition,
        "source_offset": source.offset,
    }
    if source.line:  # only for a batch's later lines: single-event rows are as before 018
        row["source_line"] = source.line
    p = event.payload
    if isinstance(event, ScanEvent):
        # The column keeps version 1's name; dwell_seconds (version 2) only when given, so
        # that every other scan is stored while migration 017 is still pending.
        row.update(
            badge_id=p.badge_id, booth_id=p.booth_id, scanner_device=p.scanner_id,
            staff_id=p.staff_id or "", method=p.method, rating=p.rating or "",
            note=p.note or "",
        )
        if p.dwell_seconds is not None:
            row["dwell_seconds"] = p.dwell_seconds
    elif isinstance(event, RegistrationEvent):
        row.update(badge_id=p.badge_id, buyer_type=p.buyer_type, **_contact(p))
    elif isinstance(event, InquiryEvent):
        row.update(
            categories=list(p.categories), quantity=p.quantity, budget=_dec(p.budget),
            currency=p.currency, lead_time_days=p.lead_time_days, language=p.language,
            channel=p.channel, **_contact(p),
        )
    elif isinstance(event, ProcurementEvent):
        row.update(
            step=p.step, buyer_ref=p.buyer_ref, category=p.category or "",
            quantity=p.quantity, value=_dec(p.value), currency=p.currency,
        )
    elif isinstance(event, ProfileEvent):
        row.update(
            categories=list(p.categories), crafts=list(p.crafts),
            monthly_capacity=p.monthly_capacity, moq=p.moq,
            lead_time_days=p.lead_time_days, certifications=list(p.certifications),
        )
    if not isinstance(event, RegistrationEvent):
        row.update(
            cluster_id=enrichment.cluster_id or "",
            pavilion_id=enrichment.pavilion_id or "",
            exhibitor_id=enrichment.exhibitor_id or "",
        )
    return row


def dead_letter_row(
    rejected: Rejected, source: SourceRef, raw: bytes | None, failed_at: datetime,
    headers: Mapping[str, bytes] | None = None,
) -> dict[str, object]:
    """The ``dead_letters`` row: reason, source and origin coordinates, the raw bytes.

    ``source`` is where the message (and, in a batch, its line) was read this time; the
    origin is where it was first read (:func:`origin_of` its Kafka ``headers``: a replay
    says so, else ``source``). ``dead_letters`` keeps one row per origin (with its line),
    the newest failure. ``raw``: the bytes judged: a batch's bad line alone.

    The raw bytes are kept whole up to :data:`DEAD_LETTER_RAW_PREFIX`, beyond that as a
    prefix; ``raw_size`` and ``raw_sha256`` always describe the whole message. A dead letter
    must always be producible: base64 of a 3 MiB event alone is over the producer's
    request limit, and a dead letter that cannot be sent loses the event.
    """
    raw = raw or b""
    origin = origin_of(headers, source)
    row: dict[str, object] = {
        "source_topic": source.topic,
        "source_partition": source.partition,
        "source_offset": source.offset,
        "origin_topic": origin.topic,
        "origin_partition": origin.partition,
        "origin_offset": origin.offset,
    }
    # The lines only when not 0 (migration 018's columns, 0 by default): every dead letter
    # of a single-event message is stored as before while 018 is pending.
    if source.line:
        row["source_line"] = source.line
    if origin.line:
        row["origin_line"] = origin.line
    row.update({
        "reason": rejected.reason.value,
        "detail": rejected.detail,
        "event_id": rejected.event_id or "",
        "raw_size": len(raw),
        "raw_base64": base64.b64encode(raw[:DEAD_LETTER_RAW_PREFIX]).decode("ascii"),
        "raw_sha256": hashlib.sha256(raw).hexdigest(),
        "failed_at": _ts(failed_at),
    })
    return row


def _contact(p: ContactFields) -> dict[str, object]:
    consented = p.consent
    return {
        "consent": consented,
        "name_masked": mask_name(p.full_name) if consented else "",
        "email_hash": pseudonym(p.email.strip().lower()) if consented and p.email else "",
        "phone_hash": pseudonym(_digits(p.phone)) if consented and p.phone else "",
        "wechat_hash": pseudonym(p.wechat_id.strip()) if consented and p.wechat_id else "",
        "company": p.company or "",
        "country": p.country or "",
        "province": p.province or "",
        "city": p.city or "",
    }


def pseudonym(value: str) -> str:
    """A stable, non-reversible token for a personal identifier (SHA-256, 16 bytes hex)."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:32]


def mask_name(name: str | None) -> str:
    """Keep the first character of each word: ``王小明`` -> ``王**``, ``Li Na`` -> ``L* N*``."""
    if not name:
        return ""
    words = name.split()
    if len(words) == 1:
        return name[0] + "*" * (len(name) - 1)
    return " ".join(w[0] + "*" * (len(w) - 1) for w in words)


def _digits(phone: str) -> str:
    return "".join(ch for ch in phone if ch.isdigit())


def _ts(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds")


def _dec(value: object) -> str | None:
    return None if value is None else str(value)


def archive_row(topic: str, partition: int, offset: int, timestamp_ms: int,
                key: bytes | None, value: bytes | None,
                headers: Iterable[tuple[str, bytes | None]]) -> dict[str, object]:
    """The ``raw_archive`` row of one raw message, exact: the value as UTF-8 text when it
    is UTF-8 (``value_base64`` 0), else its base64 (1); the key and each header value as
    base64 (a missing value as ''); a message without a value (a tombstone) as ''.
    ``timestamp_ms``: Kafka's record timestamp (milliseconds since the epoch, UTC)."""
    raw = value or b""
    try:
        text, encoded = raw.decode("utf-8"), 0
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(raw).decode("ascii"), 1
    return {
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "kafka_timestamp": _ts(datetime.fromtimestamp(max(timestamp_ms, 0) / 1000, UTC)),
        "key_base64": None if key is None else base64.b64encode(key).decode("ascii"),
        "value": text,
        "value_base64": encoded,
        # named tuples are JSON objects to the engine
        "headers": [{"name": name, "value_base64": base64.b64encode(v or b"").decode("ascii")}
                    for name, v in headers],
    }

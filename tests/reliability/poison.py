"""The poison catalogue: hostile input a new user can send with kcat, and its fate.

Every kind is one message with the dead-letter reason the contract gives it
(schemas/deadletter.py), or ``STORED`` for hostile-looking input that is valid and must be
stored exactly as sent. Each value is unique across the catalogue (a test finds a message's
``topic[partition]@offset`` by its bytes) and never contains kcat's delimiters.

``REPRODUCED`` says, per kind, what happened before the fixes of issue 7: the outcome this
tier observed on the data path of commit dfe0450 (exported with ``git archive``, 2026-11-27;
the issue gives totals, not a per-kind list). "ok" means: already the reason the contract
gives. The catalogue is wider than the issue's 57 kinds.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from schemas.deadletter import Reason
from tests.factories import events as f
from tests.reliability.traffic import (
    INQUIRY,
    PROCUREMENT,
    PROFILE,
    REGISTRATION,
    SCAN,
    Message,
    valid_event,
)

STORED = None  # the message is valid: stored exactly as sent, never dead-lettered

BAD_JSON = Reason.BAD_JSON
NOT_AN_OBJECT = Reason.NOT_AN_OBJECT
OVERSIZED = Reason.OVERSIZED
MISSING = Reason.MISSING_FIELD
INVALID = Reason.INVALID_FIELD
WRONG_TOPIC = Reason.WRONG_TOPIC
UNKNOWN_CLUSTER = Reason.UNKNOWN_CLUSTER
UNKNOWN_BOOTH = Reason.UNKNOWN_BOOTH
UNKNOWN_EXHIBITOR = Reason.UNKNOWN_EXHIBITOR

DAY = 86_400


@dataclass(frozen=True)
class Kind:
    """One kind of hostile input: which topic it goes to, how to build it, its fate."""

    name: str
    event_type: str
    build: Callable[[str], bytes | None]
    expect: Reason | None
    valid_looking: bool = False  # JSON that looks like an event: the batch must survive it

    def message(self, key: bytes | None = None) -> Message:
        value = self.build(self.name)
        doc = None
        if self.expect is STORED:
            assert value is not None
            doc = _json(value)
        return Message(self.event_type, key or self.key, value, self.name, self.expect, doc)

    @property
    def key(self) -> bytes:
        return f"poison-{self.name}".encode()


def _json(raw: bytes) -> dict[str, Any]:
    import orjson

    return orjson.loads(raw)


def _doc(event_type: str, kind: str) -> dict[str, Any]:
    """A valid event of ``event_type`` whose id names the kind."""
    doc = valid_event(event_type)
    doc["event_id"] = f"poison-{kind}"[:64]
    return doc


def event(event_type: str, change: Callable[[dict[str, Any]], object] | None = None
          ) -> Callable[[str], bytes]:
    """A builder: a valid event of ``event_type``, then ``change`` applied to it."""

    def build(kind: str) -> bytes:
        doc = _doc(event_type, kind)
        if change is not None:
            change(doc)
        return f.encode(doc)

    return build


def edit(event_type: str, old: bytes, new: bytes) -> Callable[[str], bytes]:
    """A builder that edits the encoded bytes (for what JSON encoders will not write):
    the first match of the regular expression ``old`` becomes ``new``."""

    def build(kind: str) -> bytes:
        raw, n = re.subn(old, lambda _m: new, event(event_type)(kind), count=1)
        assert n == 1, (kind, old)
        return raw

    return build


def raw(value: bytes | None) -> Callable[[str], bytes | None]:
    return lambda _kind: value


def tagged(template: bytes) -> Callable[[str], bytes]:
    """Raw bytes with the kind's name in them (keeps values unique)."""
    return lambda kind: template.replace(b"KIND", kind.encode())


def drop(*path: str) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        target = doc
        for part in path[:-1]:
            target = target[part]
        del target[path[-1]]

    return change


def put(*path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        target = doc
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = copy.deepcopy(value)

    return change


def times(occurred: str, received: str) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        doc["occurred_at"], doc["received_at"] = occurred, received

    return change


def offset_seconds(occurred_minus_received: int) -> Callable[[dict[str, Any]], None]:
    """occurred_at = received_at + the given seconds (received_at as the factory sets it)."""
    from datetime import datetime, timedelta

    def change(doc: dict[str, Any]) -> None:
        received = datetime.fromisoformat(doc["received_at"])
        doc["occurred_at"] = (received + timedelta(seconds=occurred_minus_received)).isoformat()

    return change


def truncated(kind: str) -> bytes:
    whole = event(SCAN)(kind)
    return whole[: len(whole) // 2]


def padded(total_bytes: int) -> Callable[[str], bytes]:
    """A scan made ``total_bytes`` long by an unknown padding field (size is checked first)."""

    def build(kind: str) -> bytes:
        doc = _doc(SCAN, kind)
        doc["padding"] = ""
        base = len(f.encode(doc))
        doc["padding"] = "p" * (total_bytes - base)
        out = f.encode(doc)
        assert len(out) == total_bytes
        return out

    return build


def nested(depth: int) -> Callable[[str], bytes]:
    def build(kind: str) -> bytes:
        whole = event(SCAN)(kind)
        return whole[:-2] + b',"nest":' + b"[" * depth + b"]" * depth + b"}}"

    return build


T = f.T0.isoformat()
RECEIVED = f.T0.replace(second=31).isoformat()

CATALOGUE: tuple[Kind, ...] = (
    # -- framing and encoding --------------------------------------------------------------
    Kind("not_json", SCAN, tagged(b"KIND: hello from a scanner"), BAD_JSON),
    Kind("binary_garbage", SCAN, tagged(bytes(range(255, -1, -1)) + b"KIND"), BAD_JSON),
    Kind("truncated_json", SCAN, truncated, BAD_JSON),
    Kind("utf8_bom_before_json", SCAN, lambda k: b"\xef\xbb\xbf" + event(SCAN)(k), BAD_JSON),
    Kind("trailing_garbage", SCAN, lambda k: event(SCAN)(k) + b" and more", BAD_JSON),
    Kind("two_objects_in_one_message", SCAN, lambda k: event(SCAN)(k) * 2, BAD_JSON),
    Kind("single_quoted_json", SCAN, tagged(b"{'event_id': 'KIND'}"), BAD_JSON),
    Kind("raw_nul_byte_in_string", SCAN, edit(SCAN, b'"qr"', b'"q\x00r"'), BAD_JSON),
    Kind("invalid_utf8_in_string", SCAN, edit(SCAN, b'"qr"', b'"q\xff\xfer"'), BAD_JSON),
    Kind("lone_surrogate_escape", SCAN, edit(SCAN, b'"qr"', b'"q\\ud800r"'), BAD_JSON),
    Kind("deeply_nested_json", SCAN, nested(20_000), BAD_JSON),
    Kind("empty_value", SCAN, raw(b""), BAD_JSON),
    Kind("null_value_tombstone", SCAN, raw(None), BAD_JSON),
    Kind("whitespace_only", SCAN, raw(b" \t\r\n "), BAD_JSON),
    Kind("json_array", SCAN, tagged(b'["KIND", 1, 2]'), NOT_AN_OBJECT),
    Kind("json_string", SCAN, tagged(b'"KIND"'), NOT_AN_OBJECT),
    Kind("json_number", SCAN, raw(b"4711"), NOT_AN_OBJECT),
    Kind("json_null", SCAN, raw(b"null"), NOT_AN_OBJECT),
    Kind("json_true", SCAN, raw(b"true"), NOT_AN_OBJECT),
    # -- missing required fields -----------------------------------------------------------
    Kind("empty_object", SCAN, raw(b"{}"), MISSING),
    Kind("missing_event_id", SCAN, event(SCAN, drop("event_id")), MISSING),
    Kind("missing_event_type", SCAN, event(SCAN, drop("event_type")), MISSING),
    Kind("missing_occurred_at", SCAN, event(SCAN, drop("occurred_at")), MISSING),
    Kind("missing_source", INQUIRY, event(INQUIRY, drop("source")), MISSING),
    Kind("missing_payload", PROCUREMENT, event(PROCUREMENT, drop("payload")), MISSING),
    Kind("scan_missing_badge_id", SCAN, event(SCAN, drop("payload", "badge_id")), MISSING),
    Kind("scan_missing_booth_id", SCAN, event(SCAN, drop("payload", "booth_id")), MISSING),
    Kind("registration_missing_full_name", REGISTRATION,
         event(REGISTRATION, drop("payload", "full_name")), MISSING),
    Kind("inquiry_missing_channel", INQUIRY, event(INQUIRY, drop("payload", "channel")),
         MISSING),
    Kind("procurement_missing_buyer_ref", PROCUREMENT,
         event(PROCUREMENT, drop("payload", "buyer_ref")), MISSING),
    Kind("profile_missing_monthly_capacity", PROFILE,
         event(PROFILE, drop("payload", "monthly_capacity")), MISSING),
    # -- null required fields, wrong types, unknown fields ---------------------------------
    Kind("null_event_id", SCAN, event(SCAN, put("event_id", value=None)), INVALID),
    Kind("null_payload", SCAN, event(SCAN, put("payload", value=None)), INVALID),
    Kind("scan_null_badge_id", SCAN, event(SCAN, put("payload", "badge_id", value=None)),
         INVALID),
    Kind("event_id_is_a_number", SCAN, event(SCAN, put("event_id", value=4712)), INVALID),
    Kind("payload_is_a_list", SCAN, event(SCAN, put("payload", value=["KIND"])), INVALID),
    Kind("quantity_is_text", INQUIRY, event(INQUIRY, put("payload", "quantity", value="lots")),
         INVALID),
    Kind("categories_is_text", INQUIRY,
         event(INQUIRY, put("payload", "categories", value="fabric")), INVALID),
    Kind("rating_not_in_enum", SCAN, event(SCAN, put("payload", "rating", value="lukewarm")),
         INVALID),
    Kind("schema_version_3", SCAN, event(SCAN, put("schema_version", value=3)), INVALID),
    Kind("fair_id_bad_pattern", SCAN, event(SCAN, put("fair_id", value="cifw 2026")), INVALID),
    Kind("source_channel_unknown", SCAN,
         event(SCAN, put("source", "channel", value="carrier-pigeon")), INVALID),
    Kind("currency_lowercase", PROCUREMENT,
         event(PROCUREMENT, put("payload", "currency", value="cny")), INVALID),
    Kind("unknown_envelope_field", SCAN, event(SCAN, put("priority", value="urgent")), INVALID),
    Kind("unknown_payload_field", SCAN, event(SCAN, put("payload", "gps", value=[30.1, 120.5])),
         INVALID),
    Kind("nested_object_where_text_expected", SCAN,
         event(SCAN, put("payload", "note", value={"a": [[[[[[[[[[{}]]]]]]]]]]})), INVALID),
    # -- event types and topics ------------------------------------------------------------
    Kind("unknown_event_type", SCAN, event(SCAN, put("event_type", value="booth_hug")),
         WRONG_TOPIC),
    Kind("event_type_is_a_number", SCAN, event(SCAN, put("event_type", value=7)), WRONG_TOPIC),
    Kind("inquiry_on_the_scans_topic", SCAN, event(INQUIRY), WRONG_TOPIC),
    Kind("scan_on_the_registrations_topic", REGISTRATION, event(SCAN), WRONG_TOPIC),
    Kind("profile_on_the_procurement_topic", PROCUREMENT, event(PROFILE), WRONG_TOPIC),
    # -- timestamps ------------------------------------------------------------------------
    Kind("naive_occurred_at", SCAN, event(SCAN, put("occurred_at", value="2026-03-26T10:15:30")),
         INVALID),
    Kind("occurred_at_not_a_date", SCAN, event(SCAN, put("occurred_at", value="yesterday")),
         INVALID),
    Kind("occurred_at_february_30", SCAN,
         event(SCAN, put("occurred_at", value="2026-02-30T10:00:00+08:00")), INVALID),
    Kind("occurred_at_year_0001_minus_14h", SCAN,
         event(SCAN, put("occurred_at", value="0001-01-01T00:00:00-14:00")), INVALID, True),
    Kind("occurred_at_year_1900_plus_14h", SCAN,
         event(SCAN, put("occurred_at", value="1900-01-01T00:00:00+14:00")), INVALID, True),
    Kind("occurred_at_year_2300", SCAN,
         event(SCAN, put("occurred_at", value="2300-06-01T00:00:00+00:00")), INVALID, True),
    Kind("occurred_at_year_9999_minus_14h", SCAN,
         event(SCAN, put("occurred_at", value="9999-12-31T23:59:59-14:00")), INVALID, True),
    Kind("both_times_year_9999", INQUIRY,
         event(INQUIRY, times("9999-12-31T10:00:00+00:00", "9999-12-31T10:00:01+00:00")),
         INVALID, True),
    Kind("both_times_year_1900", PROCUREMENT,
         event(PROCUREMENT, times("1900-01-01T10:00:00+00:00", "1900-01-01T10:00:01+00:00")),
         INVALID, True),
    Kind("occurred_31_days_before_received", SCAN, event(SCAN, offset_seconds(-31 * DAY)),
         INVALID, True),
    Kind("occurred_2_days_after_received", SCAN, event(SCAN, offset_seconds(2 * DAY)),
         INVALID, True),
    # -- quantities and money --------------------------------------------------------------
    Kind("inquiry_quantity_5e9", INQUIRY,
         event(INQUIRY, put("payload", "quantity", value=5_000_000_000)), INVALID, True),
    Kind("inquiry_quantity_1e20", INQUIRY,
         edit(INQUIRY, rb'"quantity":\d+', b'"quantity":1e20'), INVALID, True),
    Kind("inquiry_quantity_10_pow_30", INQUIRY,
         edit(INQUIRY, rb'"quantity":\d+', b'"quantity":1' + b"0" * 30),
         INVALID, True),
    Kind("inquiry_quantity_negative", INQUIRY,
         event(INQUIRY, put("payload", "quantity", value=-5)), INVALID),
    Kind("inquiry_quantity_zero", INQUIRY, event(INQUIRY, put("payload", "quantity", value=0)),
         INVALID),
    Kind("inquiry_quantity_fraction", INQUIRY,
         event(INQUIRY, put("payload", "quantity", value=2.5)), INVALID),
    Kind("procurement_quantity_5e9", PROCUREMENT,
         event(PROCUREMENT, put("payload", "quantity", value=5_000_000_000)), INVALID, True),
    Kind("profile_capacity_5e9", PROFILE,
         event(PROFILE, put("payload", "monthly_capacity", value=5_000_000_000)), INVALID, True),
    Kind("profile_moq_negative", PROFILE, event(PROFILE, put("payload", "moq", value=-1)),
         INVALID),
    Kind("lead_time_731_days", INQUIRY,
         event(INQUIRY, put("payload", "lead_time_days", value=731)), INVALID),
    Kind("budget_19_digits", INQUIRY,
         event(INQUIRY, put("payload", "budget", value="12345678901234567.00")), INVALID, True),
    Kind("budget_3_decimals", INQUIRY, event(INQUIRY, put("payload", "budget", value="12.345")),
         INVALID),
    Kind("budget_negative", INQUIRY, event(INQUIRY, put("payload", "budget", value="-1.00")),
         INVALID),
    Kind("budget_nan", INQUIRY, event(INQUIRY, put("payload", "budget", value="NaN")), INVALID),
    Kind("value_infinity", PROCUREMENT,
         event(PROCUREMENT, put("payload", "value", value="Infinity")), INVALID),
    # -- reference data and targets --------------------------------------------------------
    Kind("scan_unknown_booth", SCAN, event(SCAN, put("payload", "booth_id", value="NOPE-1")),
         UNKNOWN_BOOTH),
    Kind("scan_unknown_cluster", SCAN,
         event(SCAN, put("payload", "cluster_id", value="atlantis")), UNKNOWN_CLUSTER),
    Kind("inquiry_unknown_cluster", INQUIRY,
         event(INQUIRY, put("payload", "cluster_id", value="atlantis")), UNKNOWN_CLUSTER),
    Kind("inquiry_unknown_exhibitor", INQUIRY,
         event(INQUIRY, put("payload", "exhibitor_id", value="EX-NOPE")), UNKNOWN_EXHIBITOR),
    Kind("procurement_unknown_exhibitor", PROCUREMENT,
         event(PROCUREMENT, put("payload", "exhibitor_id", value="EX-NOPE")),
         UNKNOWN_EXHIBITOR),
    Kind("profile_unknown_cluster", PROFILE,
         event(PROFILE, put("payload", "cluster_id", value="atlantis")), UNKNOWN_CLUSTER),
    Kind("inquiry_without_target", INQUIRY,
         event(INQUIRY, put("payload", "exhibitor_id", value=None)), INVALID),
    # -- sizes -----------------------------------------------------------------------------
    Kind("oversized_100_kib", SCAN, padded(100 * 1024), OVERSIZED),
    Kind("oversized_3_mib", SCAN, padded(3 * 1024 * 1024), OVERSIZED, True),
    Kind("event_id_65_chars", SCAN, event(SCAN, put("event_id", value="e" * 65)), INVALID),
    Kind("note_501_chars", SCAN, event(SCAN, put("payload", "note", value="n" * 501)), INVALID),
    Kind("full_name_20000_chars", REGISTRATION,
         event(REGISTRATION, put("payload", "full_name", value="名" * 20_000)), INVALID),
    # -- hostile-looking but valid: stored exactly as sent ---------------------------------
    Kind("emoji_and_cjk_in_note", SCAN,
         event(SCAN, put("payload", "note", value="热销 🔥 面料 👗 ✓")), STORED),
    Kind("cjk_name_and_city", REGISTRATION,
         event(REGISTRATION, lambda d: d["payload"].update(full_name="欧阳娜娜",
                                                           city="绍兴")), STORED),
    Kind("escaped_nul_in_note", SCAN, event(SCAN, put("payload", "note", value="a\u0000b")),
         STORED),
    Kind("quantity_at_the_bound", INQUIRY,
         event(INQUIRY, put("payload", "quantity", value=1_000_000_000)), STORED),
    Kind("budget_16_digits", INQUIRY,
         event(INQUIRY, put("payload", "budget", value="99999999999999.99")), STORED),
    Kind("times_at_plus_14h", SCAN,
         event(SCAN, times("2026-03-26T16:15:30+14:00", "2026-03-26T16:15:31+14:00")), STORED),
    Kind("occurred_29_days_before_received", PROCUREMENT,
         event(PROCUREMENT, offset_seconds(-29 * DAY)), STORED),
)

BY_NAME = {k.name: k for k in CATALOGUE}
POISON = tuple(k for k in CATALOGUE if k.expect is not STORED)
VALID_LOOKING = tuple(k for k in POISON if k.valid_looking)

# What happened to each kind before the fixes (see the module docstring), each kind sent
# alone between 2+2 valid neighbours. Kinds not listed were already handled as the contract
# says ("ok"). Sent all together, the batch-killing kinds lost 164 valid neighbours of 192.
_STORED = "stored as a valid event (counted as a lead and a buyer event)"
_LOST_BATCH = "lost with its whole batch (4 of 4 neighbours lost), offsets committed"
REPRODUCED: dict[str, str] = {
    "empty_object": "wrong_topic (event_type defaulted to None, not missing_field)",
    "missing_event_type": _STORED + ": event_type defaulted from the topic",
    "occurred_at_year_0001_minus_14h": _STORED + " in minute 2001-01-01 14:00",
    "occurred_at_year_1900_plus_14h": _STORED + " in minute 1970-01-01 00:00",
    "occurred_at_year_2300": _STORED + " in minute 2106-02-07 06:28",
    "occurred_at_year_9999_minus_14h": _LOST_BATCH + " (year 10000 in UTC)",
    "both_times_year_9999": _STORED + " in minute 2106-02-07 06:28",
    "both_times_year_1900": _STORED,
    "occurred_31_days_before_received": _STORED,
    "occurred_2_days_after_received": _STORED,
    "inquiry_quantity_5e9": _STORED + " (UInt32 column)",
    "inquiry_quantity_10_pow_30": _LOST_BATCH,
    "procurement_quantity_5e9": _STORED + " (UInt32 column)",
    "profile_capacity_5e9": "stored as a valid profile (UInt32 column)",
    "oversized_100_kib": "oversized, but the dead letter kept all 100 KiB (unbounded)",
    "oversized_3_mib": "lost: no dead letter (its row exceeds the producer's request limit); "
                       "the neighbours' leads and buyer events lost too",
}


def reproduced(kind: str) -> str:
    return REPRODUCED.get(kind, "ok")

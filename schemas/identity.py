"""Identity record contracts (pydantic v2): what the buyer resolver reads.

Two doors lead into the resolver, with one deliberate difference:

- :class:`IdentityRecord`, one JSON object per line on the internal identity topic, is
  written by the stream workers themselves (``streams.identity.records``) from events
  that already passed validation. It must be exact: an unknown field, a missing one or
  a wrong type means the writer and the reader disagree, and the line is dead-lettered
  (:data:`Reason.IDENTITY_INVALID`) instead of being resolved on a guess. A line that
  is not JSON at all is :data:`Reason.IDENTITY_BAD_JSON`.
- :class:`BuyerRecord`, one JSON object per line given to ``leadloom resolve`` by a
  person (an export of a CRM, a spreadsheet): only ``id`` is required, numbers are taken
  as their text (a postcode typed as ``310076``), and fields the resolver does not read
  are ignored, so a user's extra columns need no clean-up first.

Contact fields are kept as typed: the resolver normalises them (streams.identity.normalize).
Raw contact data travels only on the identity topic and the resolver's changelog; analytics
tables get it hashed or masked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from schemas.deadletter import Reason
from schemas.events import (
    EVENT_CLASSES,
    CountryCode,
    Id,
    InquiryEvent,
    ProcurementEvent,
    RegistrationEvent,
    ScanEvent,
    ShortText,
)

# The events that concern a buyer, and so have an identity record (a supplier profile
# does not). The type names are the events' own, spelled once in schemas.events.
BUYER_EVENT_CLASSES = (RegistrationEvent, ScanEvent, InquiryEvent, ProcurementEvent)
BUYER_EVENT_TYPES = frozenset(
    name for name, cls in EVENT_CLASSES.items() if cls in BUYER_EVENT_CLASSES
)
_DETAIL_MAX = 300  # characters of a validation error kept in a dead letter's detail


class IdentityContact(BaseModel):
    """Contact fields as the person typed them (bounds as in ``schemas.events``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    full_name: ShortText | None = None
    company: ShortText | None = None
    email: ShortText | None = None
    phone: Annotated[str, Field(max_length=40)] | None = None
    wechat: Annotated[str, Field(max_length=64)] | None = None
    country: CountryCode | None = None
    province: ShortText | None = None
    city: ShortText | None = None
    address: Annotated[str, Field(max_length=300)] | None = None
    postcode: Annotated[str, Field(max_length=16)] | None = None


class IdentityRecord(BaseModel):
    """One buyer-bearing event as the resolver needs it; exact (unknown fields refused).

    ``contact`` is set for registrations and inquiries (the fields a person typed) and
    null for scans and procurement steps, which name the buyer by ``badge_id`` only; a
    record with neither identifies nobody and is refused. ``occurred_at`` is the event
    time as the event's row spells it (ISO 8601 with its UTC offset), kept as text so the
    buyer rows repeat it byte for byte.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: Id
    event_type: str
    fair_id: Id
    occurred_at: str
    cluster_id: str = ""
    exhibitor_id: str = ""
    booth_id: str = ""
    badge_id: str = ""
    consent: bool = False
    contact: IdentityContact | None

    @field_validator("event_type")
    @classmethod
    def _a_buyer_event(cls, value: str) -> str:
        if value not in BUYER_EVENT_TYPES:
            raise ValueError(f"{value!r} is not an event about a buyer")
        return value

    @field_validator("occurred_at")
    @classmethod
    def _aware_iso_time(cls, value: str) -> str:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 time") from None
        if moment.tzinfo is None:
            raise ValueError(f"{value!r} has no UTC offset")
        return value

    @model_validator(mode="after")
    def _names_a_buyer(self) -> IdentityRecord:
        if self.contact is None and not self.badge_id:
            raise ValueError("a record without contact fields needs a badge_id")
        return self

    def to_json(self) -> bytes:
        """The record as one line of the identity topic (compact JSON, no newline)."""
        return self.__pydantic_serializer__.to_json(self)


def _as_text(value: object) -> object:
    # Spreadsheets export numbers for postcodes, phones and ids: take them as typed.
    # Objects and arrays stay as they are and fail the ``str`` type.
    if isinstance(value, bool):
        return value  # true/false is not a contact field's text: refused
    if isinstance(value, (int, float)):
        return str(value)
    return value


_Text = Annotated[str | None, BeforeValidator(_as_text)]


class BuyerRecord(BaseModel):
    """One line of ``leadloom resolve``'s input: a buyer record from outside the stream.

    Only ``id`` is required. Unknown fields are ignored (a CRM export brings its own
    columns); a known field holding an object, an array or a boolean is refused.
    ``country`` is an ISO 3166 alpha-2 code, the default region of ``phone``; ``badge_id``
    is a fair badge (one person: matches outright).
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: Annotated[str, StringConstraints(min_length=1), BeforeValidator(_as_text)]
    badge_id: _Text = None
    full_name: _Text = None
    given_name: _Text = None
    family_name: _Text = None
    company: _Text = None
    email: _Text = None
    phone: _Text = None
    wechat: _Text = None
    country: _Text = None
    province: _Text = None
    city: _Text = None
    address: _Text = None
    postcode: _Text = None


@dataclass(frozen=True)
class IdentityRejected:
    """Why an identity line was not resolved: a dead-letter reason and its detail."""

    reason: Reason
    detail: str


def parse_identity(line: bytes) -> IdentityRecord | IdentityRejected:
    """Parse one identity-topic line; never raises for bad data.

    Not UTF-8 or not JSON -> ``IDENTITY_BAD_JSON``; JSON that breaks the schema
    (including a top-level value that is not an object) -> ``IDENTITY_INVALID``.
    """
    try:
        return IdentityRecord.model_validate_json(line)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        if any(e["type"] == "json_invalid" for e in errors):
            return IdentityRejected(Reason.IDENTITY_BAD_JSON, _describe(errors))
        return IdentityRejected(Reason.IDENTITY_INVALID, _describe(errors))


def _describe(errors: list) -> str:
    parts = []
    for e in errors:
        where = ".".join(str(p) for p in e["loc"])
        parts.append(f"{where}: {e['msg']}" if where else str(e["msg"]))
    return "; ".join(parts)[:_DETAIL_MAX]

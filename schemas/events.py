"""Event contracts (pydantic v2).

Every message on a raw topic is one JSON object: an envelope (``event_id`` minted at
the edge and kept end to end, ``event_type``, ``schema_version``, ``fair_id``,
``occurred_at`` device time, ``received_at`` edge time, ``source``) plus a typed
``payload``. Times are timezone-aware; naive datetimes are rejected.

Versions (``schema_version``): every event type is at version 1, except ``booth_scan``,
which producers may send at version 1 or 2 while either is in flight:

- version 1: the payload as it always was (``scanner_device`` names the scanner);
- version 2: ``scanner_device`` is renamed ``scanner_id`` (the old name is still accepted:
  exactly one of the two, or both with the same value; both with different values is an
  ``invalid_field``), and ``dwell_seconds`` is new and optional (seconds the buyer spent at
  the booth, an integer in 0..86,400). ``dwell_seconds`` in a version 1 event is an
  ``invalid_field``: a worker still on version 1 code refuses it too (an extra field), so an
  event has one outcome whichever worker reads it during a rolling upgrade.

Both versions validate into one model (:class:`BoothScan`, the scanner under
``scanner_id``); the stored row keeps the column name ``scanner_device`` (the table's
contract for readers does not change) and carries ``dwell_seconds`` only when given
(``streams.rows``, ARCHITECTURE.md "Schema evolution").
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, model_validator
from pydantic_core import PydanticCustomError

SCHEMA_VERSION: Literal[1] = 1  # every event type's version but booth_scan's newest
SCAN_SCHEMA_VERSIONS: tuple[int, ...] = (1, 2)  # booth_scan versions workers accept
SCAN_SCHEMA_VERSION: Literal[2] = 2  # booth_scan's newest version
MAX_DWELL_SECONDS = 86_400  # a day: a buyer cannot stay at a booth longer


class EventType(StrEnum):
    """The event types, spelled once: each names one raw topic (``schemas.registry``) and one
    ClickHouse table. Members are ``str``: they compare, hash, format and serialise (orjson,
    json) as their value, so ``"booth_scan" == EventType.BOOTH_SCAN``."""

    BUYER_REGISTRATION = "buyer_registration"
    BOOTH_SCAN = "booth_scan"
    ONLINE_INQUIRY = "online_inquiry"
    PROCUREMENT_STEP = "procurement_step"
    SUPPLIER_PROFILE = "supplier_profile"

    def __repr__(self) -> str:
        # Validation errors quote the expected literal with repr(): keep them reading
        # "Input should be 'booth_scan'", as before the enum (dead-letter details show them).
        return repr(self.value)

# Every value the schema accepts must fit its ClickHouse column and every later
# computation (minutes, JSON, sums), so the bounds are the columns' and a bit tighter:
# times within DateTime64/DateTime ranges, counts within UInt32, money within Decimal(18, 2).
EARLIEST_TIME = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(2100, 1, 1, tzinfo=UTC)
# An offline scanner may sync weeks late; a device clock may run ahead (a wrong time zone
# is up to 14 h). Outside this window of ``received_at`` the device time is not credible.
MAX_LATE = timedelta(days=30)
MAX_AHEAD = timedelta(days=1)
MAX_COUNT = 1_000_000_000  # quantities, capacities, MOQs (column UInt32)

# Professional buyers (the seed's "+35% professional buyers" KPI): trade buyers, not the
# press or unclassified visitors.
PROFESSIONAL_BUYER_TYPES: tuple[str, ...] = (
    "brand", "retailer", "wholesaler", "designer", "agent", "ecommerce",
)
# The procurement funnel, in the order a buyer climbs it: a scan at the booth, an online
# inquiry, then the procurement steps (ProcurementStep.step).
FUNNEL_STAGES: tuple[str, ...] = (
    "scan", "inquiry", "sample_request", "quote_request", "cooperation_intent",
    "purchase_order",
)

Id = Annotated[str, Field(min_length=1, max_length=64)]
ShortText = Annotated[str, Field(max_length=200)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Source(_Strict):
    """Where the event entered the system."""

    channel: Literal["scanner", "web", "wechat", "gateway", "kiosk", "ops", "simulator"]
    device_id: Id | None = None


class ContactFields(_Strict):
    """Buyer contact fields as typed by a person; all optional, normalised later."""

    full_name: ShortText | None = None
    company: ShortText | None = None
    email: ShortText | None = None
    phone: Annotated[str, Field(max_length=40)] | None = None
    wechat_id: Annotated[str, Field(max_length=64)] | None = None
    country: CountryCode | None = None
    province: ShortText | None = None
    city: ShortText | None = None
    address: Annotated[str, Field(max_length=300)] | None = None
    postcode: Annotated[str, Field(max_length=16)] | None = None
    consent: bool = False


class BuyerRegistration(ContactFields):
    badge_id: Id
    full_name: ShortText
    buyer_type: Literal[
        "brand", "retailer", "wholesaler", "designer", "agent", "ecommerce", "media", "other"
    ] = "other"


class BoothScan(_Strict):
    """A booth scan's payload, versions 1 and 2 (see the module docstring).

    The scanner arrives as ``scanner_id`` (version 2's name) or ``scanner_device`` (version
    1's, accepted in both); the model holds it as ``scanner_id``. ``dwell_seconds``: whole
    seconds, 0..86,400, a JSON integer (``12.0`` and ``"12"`` are refused)."""

    badge_id: Id
    booth_id: Id
    exhibitor_id: Id | None = None
    cluster_id: Id | None = None
    scanner_id: Id
    staff_id: Id | None = None
    method: Literal["qr", "nfc", "wedge", "manual"]
    rating: Literal["hot", "warm", "cold"] | None = None
    note: Annotated[str, Field(max_length=500)] | None = None
    dwell_seconds: Annotated[int, Field(ge=0, le=MAX_DWELL_SECONDS, strict=True)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _old_scanner_name(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data  # not an object: the model's own error says so
        if "scanner_device" not in data:
            if "scanner_id" not in data:
                # "missing" (-> missing_field), naming both names: a version 1 producer
                # knows only the old one
                raise PydanticCustomError(
                    "missing", "Field required: scanner_id (or its old name scanner_device)")
            return data
        data = dict(data)
        old = data.pop("scanner_device")
        if "scanner_id" not in data:
            data["scanner_id"] = old
        elif data["scanner_id"] != old:
            raise PydanticCustomError(
                "scanner_names_differ",
                "scanner_id {new} and its old name scanner_device {old} differ: give one of"
                " them (or both with the same value)",
                {"new": repr(data["scanner_id"])[:80], "old": repr(old)[:80]},
            )
        return data


class OnlineInquiry(ContactFields):
    cluster_id: Id | None = None
    exhibitor_id: Id | None = None
    categories: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list)
    quantity: Annotated[int, Field(gt=0, le=MAX_COUNT)] | None = None
    budget: Annotated[Decimal, Field(ge=0, max_digits=16, decimal_places=2)] | None = None
    currency: Currency = "CNY"
    lead_time_days: Annotated[int, Field(ge=0, le=730)] | None = None
    message: Annotated[str, Field(max_length=2000)] | None = None
    language: Annotated[str, Field(min_length=2, max_length=8)] = "zh"
    channel: Literal["web", "wechat"]

    @model_validator(mode="after")
    def _has_target(self) -> OnlineInquiry:
        if not self.cluster_id and not self.exhibitor_id:
            raise ValueError("an inquiry names a target cluster_id and/or exhibitor_id")
        return self


class ProcurementStep(_Strict):
    step: Literal["sample_request", "quote_request", "cooperation_intent", "purchase_order"]
    buyer_ref: Id
    exhibitor_id: Id
    cluster_id: Id | None = None
    category: Annotated[str, Field(max_length=64)] | None = None
    quantity: Annotated[int, Field(gt=0, le=MAX_COUNT)] | None = None
    value: Annotated[Decimal, Field(ge=0, max_digits=16, decimal_places=2)] | None = None
    currency: Currency = "CNY"


class SupplierProfile(_Strict):
    exhibitor_id: Id
    cluster_id: Id
    categories: list[Annotated[str, Field(max_length=64)]]
    crafts: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list)
    monthly_capacity: Annotated[int, Field(ge=0, le=MAX_COUNT)]
    moq: Annotated[int, Field(ge=0, le=MAX_COUNT)]
    lead_time_days: Annotated[int, Field(ge=0, le=730)]
    certifications: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list)


class _Envelope(_Strict):
    event_id: Id
    schema_version: Literal[1] = SCHEMA_VERSION
    fair_id: Annotated[str, Field(pattern=r"^[A-Z]{2,8}-\d{4}-[A-Z]{2}$")]
    occurred_at: AwareDatetime
    received_at: AwareDatetime
    source: Source

    @model_validator(mode="after")
    def _credible_times(self) -> _Envelope:
        received = _utc(self.received_at, "received_at")
        occurred = _utc(self.occurred_at, "occurred_at")
        if not EARLIEST_TIME <= received < LATEST_TIME:
            raise ValueError(f"received_at {self.received_at.isoformat()} is outside "
                             f"[{EARLIEST_TIME:%Y-%m-%d}, {LATEST_TIME:%Y-%m-%d})")
        if not received - MAX_LATE <= occurred <= received + MAX_AHEAD:
            raise ValueError(f"occurred_at {self.occurred_at.isoformat()} is more than "
                             f"{MAX_LATE.days} days before or {MAX_AHEAD.days} day after "
                             "received_at")
        return self


def _utc(value: datetime, name: str) -> datetime:
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):  # e.g. 9999-12-31T23:59:59-14:00 is year 10000 in UTC
        raise ValueError(
            f"{name} {value.isoformat()} is outside the representable range"
        ) from None


class RegistrationEvent(_Envelope):
    event_type: Literal[EventType.BUYER_REGISTRATION]
    payload: BuyerRegistration


class ScanEvent(_Envelope):
    # Widens the envelope's Literal[1] for this type only (pydantic takes the override).
    schema_version: Literal[1, 2] = SCHEMA_VERSION  # type: ignore[assignment]
    event_type: Literal[EventType.BOOTH_SCAN]
    payload: BoothScan

    @model_validator(mode="after")
    def _fields_of_its_version(self) -> ScanEvent:
        if self.schema_version == 1 and self.payload.dwell_seconds is not None:
            raise ValueError("payload.dwell_seconds is a schema_version 2 field; this event "
                             "declares schema_version 1")
        return self


class InquiryEvent(_Envelope):
    event_type: Literal[EventType.ONLINE_INQUIRY]
    payload: OnlineInquiry


class ProcurementEvent(_Envelope):
    event_type: Literal[EventType.PROCUREMENT_STEP]
    payload: ProcurementStep


class ProfileEvent(_Envelope):
    event_type: Literal[EventType.SUPPLIER_PROFILE]
    payload: SupplierProfile


Event = Annotated[
    RegistrationEvent | ScanEvent | InquiryEvent | ProcurementEvent | ProfileEvent,
    Field(discriminator="event_type"),
]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)

EVENT_CLASSES: dict[str, type[_Envelope]] = {
    EventType.BUYER_REGISTRATION: RegistrationEvent,
    EventType.BOOTH_SCAN: ScanEvent,
    EventType.ONLINE_INQUIRY: InquiryEvent,
    EventType.PROCUREMENT_STEP: ProcurementEvent,
    EventType.SUPPLIER_PROFILE: ProfileEvent,
}
EVENT_TYPES: tuple[EventType, ...] = tuple(EventType)

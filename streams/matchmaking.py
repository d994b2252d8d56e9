"""The matchmaking stream: one fair's supplier profiles and online inquiries, in order, to
the top suppliers of each inquiry (``matches`` rows). Pure: the Faust agent hands blocks of
``matchmaking.requests`` here with its table's ``get``/``items`` and does the I/O.

Contract
--------
* Requests are JSON lines built by :func:`request_line` in the validate agent: a profile or
  an inquiry with its event id, fair, event time and payload. Every request of one fair
  is in one partition (keyed by ``fair_id``), so the fair's profiles and inquiries meet in
  one ordered log.
* State (the changelog-backed ``matchmaking_state`` table, see ``schemas.registry``), per
  fair: ``P|<fair>|<exhibitor>`` the exhibitor's newest profile (greatest ``(occurred_at,
  event_id)``, as ``streams.matching.SupplierIndex`` keeps it), ``V|<fair>`` how many
  profile changes were applied (tells a cached index it is stale, e.g. after a rebalance
  brought state written by another worker), ``M|<fair>|<inquiry>`` the rows an inquiry
  was given.
* An inquiry is matched once: its first result is kept in the table, and a re-read
  inquiry (a restart before the commit, a replay) re-sends those rows, whatever profiles
  arrived since. So a restart reproduces the matches of an uninterrupted run (the rows
  collapse on ``(inquiry_event_id, rank)`` in the store).
* ``matched_at`` is the inquiry's event time: scans and procurement steps between its buyer
  and a matched supplier from then on are credited to the match (migration 011).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson

from schemas.events import (
    EventType,
    InquiryEvent,
    OnlineInquiry,
    ProfileEvent,
    SupplierProfile,
)
from streams.matching import SupplierIndex, top_matches

log = logging.getLogger(__name__)

TOP_K = 3  # suppliers recommended per inquiry (the "top 3")

Get = Callable[[str], object]
Items = Callable[[], Iterable[tuple[str, object]]]


def request_line(event: ProfileEvent | InquiryEvent) -> bytes:
    """The ``matchmaking.requests`` line of a valid profile or inquiry event."""
    kind = "profile" if event.event_type == EventType.SUPPLIER_PROFILE else "inquiry"
    return orjson.dumps({
        "kind": kind,
        "event_id": event.event_id,
        "fair_id": event.fair_id,
        "occurred_at": _ts(event.occurred_at),
        "payload": event.payload.model_dump(mode="json", exclude_none=True),
    })


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds")


def profile_key(fair_id: str, exhibitor_id: str) -> str:
    return f"P|{fair_id}|{exhibitor_id}"


def version_key(fair_id: str) -> str:
    return f"V|{fair_id}"


def result_key(fair_id: str, inquiry_event_id: str) -> str:
    return f"M|{fair_id}|{inquiry_event_id}"


@dataclass
class MatchOutput:
    """What one block produced: table writes (in order) and ``matches`` rows."""

    writes: list[tuple[str, object]] = field(default_factory=list)
    rows: list[bytes] = field(default_factory=list)
    failed: list[tuple[bytes, str]] = field(default_factory=list)  # (line, why)
    matched: int = 0  # inquiries matched now (not re-sent)


@dataclass
class _Cached:
    version: int
    index: SupplierIndex


class Matchmaker:
    """Applies request blocks against the table; caches each fair's supplier index."""

    def __init__(self) -> None:
        self._cache: dict[str, _Cached] = {}

    def apply_block(self, block: bytes, get: Get, items: Items, now: datetime | None = None
                    ) -> MatchOutput:
        """Apply one ``matchmaking.requests`` message (newline-joined request lines).

        ``get`` and ``items`` read the table as it was before the block; the block's own
        writes are seen through ``out.writes``, which the caller then applies in order. A
        line that cannot be read is reported in ``failed`` and the block goes on.
        """
        now = now or datetime.now(UTC)
        out = MatchOutput()
        pending: dict[str, object] = {}

        def read(key: str) -> object:
            return pending[key] if key in pending else get(key)

        def write(key: str, value: object) -> None:
            pending[key] = value
            out.writes.append((key, value))

        for line in block.split(b"\n"):
            if not line.strip():
                continue
            try:
                request = orjson.loads(line)
                if request["kind"] == "profile":
                    self._profile(request, read, write)
                else:
                    self._inquiry(request, read, write, lambda: _overlay(items(), pending),
                                  now, out)
            except Exception as exc:  # noqa: BLE001 - one bad line never stops the others
                out.failed.append((line, f"{type(exc).__name__}: {exc}"[:300]))
        return out

    # -- requests -------------------------------------------------------------------------
    def _profile(self, request: dict, read: Get, write: Callable[[str, object], None]) -> None:
        fair = request["fair_id"]
        profile = SupplierProfile.model_validate(request["payload"])
        key = profile_key(fair, profile.exhibitor_id)
        held = read(key)
        version = (request["occurred_at"], request["event_id"])
        if isinstance(held, dict) and (held["occurred_at"], held["event_id"]) >= version:
            return  # an older (or the same) profile: the index keeps the newest by event time
        write(key, {"occurred_at": request["occurred_at"], "event_id": request["event_id"],
                    "payload": request["payload"]})
        changes = _int(read(version_key(fair))) + 1
        write(version_key(fair), changes)
        cached = self._cache.get(fair)
        if cached is not None and cached.version == changes - 1:
            cached.index.upsert(profile, _time(request["occurred_at"]), request["event_id"])
            cached.version = changes

    def _inquiry(self, request: dict, read: Get, write: Callable[[str, object], None],
                 items: Items, now: datetime, out: MatchOutput) -> None:
        fair, inquiry_id = request["fair_id"], request["event_id"]
        key = result_key(fair, inquiry_id)
        kept = read(key)
        if isinstance(kept, list):  # matched before: the same rows again
            out.rows.extend(orjson.dumps(row) for row in kept)
            return
        index = self._index(fair, read, items)
        inquiry = OnlineInquiry.model_validate(request["payload"])
        rows = []
        for match in top_matches(inquiry, index, TOP_K):
            profile_id = read(profile_key(fair, match.exhibitor_id))
            rows.append({
                "inquiry_event_id": inquiry_id,
                "rank": match.rank,
                "fair_id": fair,
                "matched_at": request["occurred_at"],
                "exhibitor_id": match.exhibitor_id,
                "cluster_id": match.cluster_id,
                "score": match.score,
                "explanation": orjson.dumps(match.explanation.to_json()).decode(),
                "profile_event_id": profile_id["event_id"] if isinstance(profile_id, dict)
                else "",
                "made_at": _ts(now),
            })
        write(key, rows)
        out.rows.extend(orjson.dumps(row) for row in rows)
        out.matched += 1

    def _index(self, fair: str, read: Get, items: Items) -> SupplierIndex:
        """The fair's index, rebuilt from the table when the cache is missing or stale."""
        version = _int(read(version_key(fair)))
        cached = self._cache.get(fair)
        if cached is not None and cached.version == version:
            return cached.index
        prefix = f"P|{fair}|"
        index = SupplierIndex()
        for key, value in items():
            if isinstance(key, str) and key.startswith(prefix) and isinstance(value, dict):
                index.upsert(SupplierProfile.model_validate(value["payload"]),
                             _time(value["occurred_at"]), value["event_id"])
        self._cache[fair] = _Cached(version, index)
        log.info("matchmaking: supplier index of %s built from state (%d suppliers)", fair,
                 len(index))
        return index


def _overlay(items: Iterable[tuple[str, object]], pending: dict[str, object]
             ) -> Iterable[tuple[str, object]]:
    """The table's entries with this block's writes over them."""
    for key, value in items:
        if key not in pending:
            yield key, value
    yield from pending.items()


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)

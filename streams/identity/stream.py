"""The identity resolver of one fair as the stream runs it: log, outputs, recovery. Pure.

The Faust agent feeds identity records (:mod:`streams.identity.records`) of one fair, in
the order of its identity-topic partition, to :meth:`FairIdentity.apply` and does the
I/O with the result. Each line is parsed against :class:`schemas.identity.IdentityRecord`
first: a line that is not JSON (``identity_bad_json``) or breaks the schema
(``identity_invalid``) is rejected with its reason and never reaches the resolver.

- every record the resolver applies is appended to the fair's *log* (a changelog-backed
  Faust table). An entry holds the records one message applied, a *run*: key
  ``<fair_id>|<seq>`` with ``seq`` its first record's position, value that record (a run
  of one) or a JSON array of them; the next entry's key is the position after its last
  record. One entry a message rather than one a record: a fair's opening makes a new
  record of nearly every event, and each entry is a changelog message that Faust sends
  one at a time once its producer buffer is full. The resolver is deterministic, so
  replaying the log in order rebuilds exactly the state it had: same buyer ids, same
  merges. A worker that takes the partition over (restart, rebalance) rebuilds before its
  first record.
- a registration or inquiry is a record of its own (id = its event id); a scan or
  procurement step belongs to the record that holds its badge, and creates a badge-only
  record (``badge:<id>``) when the badge is new.
- outputs: a ``buyer_events`` row per event (its record as ``alias`` and its buyer now);
  ``buyer_aliases`` rows for each record whose buyer changed; a ``buyers`` profile row
  for the buyer touched (and one per absorbed buyer, ``merged_into`` the survivor);
  ``buyer_merges`` rows.

Delivery is at least once: a message is re-read if its offset was not committed, and the
log may already hold what it applied. Re-applying a known record changes nothing, so
outputs that a crash lost are re-sent from the current state: after a rebuild, the first
time each restored record is touched, its alias, profile and merge rows go out again. A
record whose outputs were lost was applied from an uncommitted message, which is re-read,
so every such record is touched again. Alias versions are the log length, which only
grows, so a re-sent row never overrides a newer one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache

import orjson

from schemas.deadletter import Reason
from schemas.identity import IdentityRecord, IdentityRejected, parse_identity
from streams.identity import normalize as norm
from streams.identity.resolver import Merge, Resolver
from streams.rows import mask_name, pseudonym

BADGE_RECORD_PREFIX = "badge:"
BUYER_ID_PREFIX = "buyer:"


def log_key(fair_id: str, seq: int) -> str:
    return f"{fair_id}|{seq:09d}"


# A log entry: one record, or a run of them (a JSON array).
LogEntry = dict | list[dict]


def entry_records(entry: LogEntry | None) -> list[dict]:
    """The records of one log entry: a run of one is the record itself."""
    if entry is None:
        return []
    return entry if isinstance(entry, list) else [entry]


def buyer_id(root: str) -> str:
    return BUYER_ID_PREFIX + root


@dataclass
class Outputs:
    """Rows for the output topics, and the entries to write to the log (key, entry):
    :meth:`FairIdentity.apply` adds a run of one per record, and
    :meth:`IdentityStreams.resolve_block` joins a message's runs into one per fair."""

    events: list[bytes] = field(default_factory=list)
    aliases: list[bytes] = field(default_factory=list)
    buyers: list[bytes] = field(default_factory=list)
    merges: list[bytes] = field(default_factory=list)
    logged: list[tuple[str, LogEntry]] = field(default_factory=list)  # (key, entry)
    rejected: list[tuple[Reason, bytes, str]] = field(default_factory=list)  # (why, line, detail)
    failed: list[tuple[bytes, str]] = field(default_factory=list)  # engine faults (line, why)


class IdentityStreams:
    """Every fair's resolver in one worker; the agent hands it identity-topic messages."""

    def __init__(self) -> None:
        self.fairs: dict[str, FairIdentity] = {}

    def resolve_block(self, block: bytes, read_log: Callable[[str], LogEntry | None],
                      out: Outputs) -> None:
        """Resolve one message (newline-joined identity records) into ``out``.

        The caller writes ``out.logged`` to the log table before the next block: the
        resolver checks itself against the log once per block.
        """
        synced: set[str] = set()
        now = datetime.now(UTC)
        first_logged = len(out.logged)
        for line in block.split(b"\n"):
            ident = parse_identity(line)
            if isinstance(ident, IdentityRejected):
                out.rejected.append((ident.reason, line, ident.detail))
                continue
            fair_id = ident.fair_id
            try:
                engine = self.fairs.get(fair_id)
                if engine is None:
                    engine = self.fairs[fair_id] = FairIdentity(fair_id)
                if fair_id not in synced:
                    engine.catch_up(read_log)
                    synced.add(fair_id)
                engine.apply(ident, out, now)
            except Exception as exc:  # noqa: BLE001 (one record must not stop the fair)
                # The record is valid, so this is a fault inside the engine, which may have
                # left it half-applied: reject the record and rebuild the fair from its log
                # (durable, plus what this block applied), so the state stays the log's.
                out.failed.append((line, f"{type(exc).__name__}: {exc}"))
                broken = self.fairs.get(fair_id)
                if broken is not None:
                    pending = dict(out.logged)
                    broken._reset()
                    broken.catch_up(lambda key, pending=pending: pending.get(key) or read_log(key))
        out.logged[first_logged:] = self._join_runs(out.logged[first_logged:])

    def _join_runs(self, logged: list[tuple[str, LogEntry]]) -> list[tuple[str, LogEntry]]:
        """One entry per fair for what a message applied: its runs of one, in order, as one
        run keyed by the first. Positions follow on within a fair (a record that failed
        was never logged, and the fair was rebuilt to exactly what was); a fair whose
        positions did not would keep its runs of one, which are a valid log too."""
        by_fair: dict[str, list[tuple[int, LogEntry]]] = {}
        for key, entry in logged:
            fair_id, _, seq = key.rpartition("|")
            by_fair.setdefault(fair_id, []).append((int(seq), entry))
        joined: list[tuple[str, LogEntry]] = []
        for fair_id, entries in by_fair.items():
            start = entries[0][0]
            records = [r for _, entry in entries for r in entry_records(entry)]
            if len(entries) == 1 or [seq for seq, _ in entries] != list(
                    range(start, start + len(entries))) or len(records) != len(entries):
                joined += [(log_key(fair_id, seq), entry) for seq, entry in entries]
                continue
            joined.append((log_key(fair_id, start), records))
            self.fairs[fair_id].last_entry = start
        return joined


class FairIdentity:
    """One fair's resolver, the records it applied (in order) and what each one caused."""

    def __init__(self, fair_id: str) -> None:
        self.fair_id = fair_id
        self._reset()

    def _reset(self) -> None:
        self.resolver = Resolver()
        self.log: list[dict] = []  # applied records; index = seq
        self.records: dict[str, dict] = {}
        self.merges_by_record: dict[str, list[Merge]] = {}
        self._unconfirmed: set[str] = set()  # restored records whose outputs may be lost
        self.last_entry = 0  # position of the log entry that holds the last record

    # -- recovery --------------------------------------------------------------------
    def catch_up(self, read_log: Callable[[str], LogEntry | None]) -> int:
        """Make this resolver equal to the durable log; return records replayed.

        ``read_log(key)`` reads the changelog-backed table. If the log's entry that should
        hold the last records applied here holds other ones (another worker owned the fair
        meanwhile, or this one's writes never became durable), start again from empty.
        """
        if self.log:
            held = entry_records(read_log(log_key(self.fair_id, self.last_entry)))
            mine = self.log[self.last_entry:]
            if len(held) != len(mine) or held[-1].get("id") != mine[-1]["id"]:
                self._reset()
        replayed = 0
        while records := entry_records(read_log(log_key(self.fair_id, len(self.log)))):
            self.last_entry = len(self.log)
            for record in records:
                self._apply_record(record)
                self._unconfirmed.add(record["id"])
            replayed += len(records)
        return replayed

    # -- the stream ------------------------------------------------------------------
    def apply(self, ident: IdentityRecord, out: Outputs, now: datetime | None = None) -> None:
        """Resolve one identity record of this fair into ``out``.

        The schema guarantees what the engine relies on (an event id, type and time; a
        contact or a badge), so anything raised here is a fault of the engine.
        """
        now_text = _iso(now or datetime.now(UTC))
        contact = ident.contact.model_dump() if ident.contact is not None else None
        badge = ident.badge_id
        if contact is not None:
            record_id = ident.event_id
        else:
            holders = self.resolver.index.get(("b", badge)) if badge else None
            record_id = holders[0] if holders else BADGE_RECORD_PREFIX + badge
        if record_id in self.records:
            root = self.resolver.find(record_id)
            if record_id in self._unconfirmed:
                self._unconfirmed.discard(record_id)
                self._resend(record_id, root, out, now_text)
        else:
            record = {"id": record_id, "badge_id": badge or None, "consent": ident.consent,
                      "occurred_at": ident.occurred_at, **(contact or {})}
            before = len(self.resolver.merges)
            root = self._apply_record(record)
            self.last_entry = len(self.log) - 1
            out.logged.append((log_key(self.fair_id, self.last_entry), record))
            merges = self.resolver.merges[before:]
            self._changed_rows(record_id, root, merges, out, now_text)
        out.events.append(orjson.dumps({
            "event_id": ident.event_id, "event_type": ident.event_type,
            "fair_id": self.fair_id, "occurred_at": ident.occurred_at,
            "cluster_id": ident.cluster_id, "exhibitor_id": ident.exhibitor_id,
            "booth_id": ident.booth_id,
            "alias": record_id, "buyer_id": buyer_id(root), "resolved_at": now_text,
        }))

    def buyer_of(self, record_id: str) -> str:
        return buyer_id(self.resolver.find(record_id))

    # -- internals -------------------------------------------------------------------
    def _apply_record(self, record: dict) -> str:
        before = len(self.resolver.merges)
        root = self.resolver.add(record)
        self.log.append(record)
        self.records[record["id"]] = record
        merges = self.resolver.merges[before:]
        if merges:
            self.merges_by_record[record["id"]] = merges
        return root

    def _resend(self, record_id: str, root: str, out: Outputs, now: str) -> None:
        merges = self.merges_by_record.get(record_id, [])
        self._changed_rows(record_id, root, merges, out, now, every_alias=True)

    def _changed_rows(self, record_id: str, root: str, merges: list[Merge], out: Outputs,
                      now: str, every_alias: bool = False) -> None:
        """Alias, profile and merge rows after a record was applied. A merge need not
        involve the record: when the weighed path's model is (re-)estimated, records seen
        before it are weighed again and may merge two other buyers, so every survivor's
        aliases are written, not only the record's buyer's."""
        survivors = {self.resolver.find(m.survivor) for m in merges}
        own = every_alias or root in survivors
        self._alias_rows(self.resolver.members[root] if own else [record_id], root, out, now)
        for other in sorted(survivors - {root}):
            self._alias_rows(self.resolver.members[other], other, out, now)
            out.buyers.append(orjson.dumps(self._profile(other, len(self.log), now)))
        self._profile_rows(root, merges, out, now)
        out.merges.extend(self._merge_row(m, now) for m in merges)

    def _alias_rows(self, aliases: list[str], root: str, out: Outputs, now: str) -> None:
        version = len(self.log)
        target = buyer_id(root)
        out.aliases.extend(
            orjson.dumps({"fair_id": self.fair_id, "alias": a, "buyer_id": target,
                          "version": version, "updated_at": now})
            for a in aliases
        )

    def _profile_rows(self, root: str, merges: list[Merge], out: Outputs, now: str) -> None:
        version = len(self.log)
        out.buyers.append(orjson.dumps(self._profile(root, version, now)))
        for m in merges:
            out.buyers.append(orjson.dumps({
                **_EMPTY_PROFILE, "fair_id": self.fair_id, "buyer_id": buyer_id(m.absorbed),
                "merged_into": buyer_id(self.resolver.find(m.survivor)),
                "first_seen": self.records[m.absorbed]["occurred_at"],
                "last_seen": self.records[m.absorbed]["occurred_at"],
                "version": version, "updated_at": now,
            }))

    def _profile(self, root: str, version: int, now: str) -> dict[str, object]:
        """The buyer's latest profile: personal data only hashed or masked, with consent."""
        members = [self.records[m] for m in self.resolver.members[root]]
        members.sort(key=lambda r: r["occurred_at"])
        consented = [r for r in members if r.get("consent")]
        emails = {norm.email(r.get("email")) for r in consented} - {None}
        phones = {norm.phone(r.get("phone"), r.get("country")) for r in consented} - {None}
        wechats = {norm.wechat(r.get("wechat")) for r in consented} - {None}
        names = [r["full_name"] for r in consented if r.get("full_name")]
        return {
            "fair_id": self.fair_id,
            "buyer_id": buyer_id(root),
            "merged_into": "",
            "records": len(members),
            "badges": sorted({r["badge_id"] for r in members if r.get("badge_id")}),
            "consent": bool(consented),
            "name_masked": mask_name(names[-1]) if names else "",
            "email_hashes": sorted(pseudonym(v) for v in emails),
            "phone_hashes": sorted(pseudonym(v) for v in phones),
            "wechat_hashes": sorted(pseudonym(v) for v in wechats),
            "company": _latest(members, "company"),
            "country": _latest(members, "country"),
            "city": _latest(members, "city"),
            "first_seen": members[0]["occurred_at"],
            "last_seen": members[-1]["occurred_at"],
            "version": version,
            "updated_at": now,
        }

    def _merge_row(self, m: Merge, now: str) -> bytes:
        return orjson.dumps({
            "fair_id": self.fair_id, "survivor": buyer_id(m.survivor),
            "absorbed": buyer_id(m.absorbed), "record_id": m.record_id,
            "evidence": list(m.evidence), "score": m.score,
            "merged_at": now,
        })


_EMPTY_PROFILE: dict[str, object] = {
    "merged_into": "", "records": 0, "badges": [], "consent": False, "name_masked": "",
    "email_hashes": [], "phone_hashes": [], "wechat_hashes": [], "company": "",
    "country": "", "city": "",
}


@lru_cache(maxsize=64)
def _iso(moment: datetime) -> str:
    # One block shares one resolution time: format it once, not per event.
    return moment.isoformat(timespec="milliseconds")


def _latest(records: list[dict], key: str) -> str:
    for record in reversed(records):
        if record.get(key):
            return str(record[key])
    return ""

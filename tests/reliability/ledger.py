"""What was sent against what the store holds: lost, doubled, misfiled, stored wrong.

``audit`` compares the messages a test sent (and where they landed, read back from the
broker) with the store: every poison message must be a dead letter with its reason and its
``topic[partition]@offset``; every valid event stored once in its raw table with the values
sent, counted once in leads (per cluster and event-time minute) and once in buyer events.
The figures (``lost``, ``doubled``) are what the reliability table reports.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from kafka.errors import KafkaError

from core import queries as q
from core.queries import Query
from leadloom.pipeline import Pipeline
from schemas.registry import (
    BUYER_EVENTS_TABLE,
    DEAD_LETTER_TABLE,
    LEADS_PER_CLUSTER_MINUTE,
    TABLE_BY_EVENT_TYPE,
)
from tests.reliability.kcat import Landed
from tests.reliability.traffic import (
    BUYER_EVENT_TYPES,
    LEAD_COUNTER,
    SCAN,
    Message,
    distinct_docs,
    lead_cluster,
)

# Columns compared between what was sent and what is stored, per event type:
# column -> how to read the expected value from the event document.
CHECKED_COLUMNS: dict[str, dict[str, Any]] = {
    "booth_scan": {"badge_id": ("payload", "badge_id"), "booth_id": ("payload", "booth_id"),
                   "note": ("payload", "note"), "method": ("payload", "method")},
    "buyer_registration": {"badge_id": ("payload", "badge_id"), "city": ("payload", "city")},
    "online_inquiry": {"quantity": ("payload", "quantity"), "budget": ("payload", "budget")},
    "procurement_step": {"buyer_ref": ("payload", "buyer_ref"),
                         "quantity": ("payload", "quantity"), "value": ("payload", "value")},
    "supplier_profile": {"monthly_capacity": ("payload", "monthly_capacity"),
                         "moq": ("payload", "moq")},
}
TIME_COLUMNS = ("occurred_at", "received_at")


def settle(pipe: Pipeline, timeout_s: float) -> tuple[bool, float, str]:
    """Wait until everything sent is stored or dead-lettered: (idle, seconds, diagnosis).

    Does not fail by itself: a test first audits what did arrive, so a wedged pipeline
    still reports which messages it lost or held up.
    """
    start = time.monotonic()
    deadline = start + timeout_s
    while True:
        try:
            if pipe.wait_idle(max(0.0, deadline - time.monotonic())):
                return True, time.monotonic() - start, ""
            break
        except KafkaError as exc:
            # On a broker started seconds ago the group coordinator may not be ready yet
            # (CoordinatorNotAvailable, NotCoordinator): wait_idle raises; ask again.
            if not getattr(exc, "retriable", False) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    raw, derived = pipe.lag()
    logs = "".join(f"\n--- {p.name}\n" + p.read_text(errors="replace")[-2000:]
                   for p in sorted(pipe.log_dir.glob("*.log")))
    why = (f"not idle after {timeout_s:.0f}s: raw lag {raw}, sink lag {derived}, "
           f"workers {pipe.worker_pids()}, restarts {pipe.restarts}, "
           f"sink retries {pipe.sink.stats.insert_retries if pipe.sink else '?'}{logs}")
    return False, time.monotonic() - start, why


@dataclass
class Audit:
    """Everything that differs from what was sent; empty lists mean exact."""

    lost_events: list[str] = field(default_factory=list)  # valid, not stored
    lost_poison: list[str] = field(default_factory=list)  # neither dead letter nor stored
    wrong_reason: list[str] = field(default_factory=list)  # dead letter, other reason
    poison_stored: list[str] = field(default_factory=list)  # accepted instead of rejected
    valid_dead_lettered: list[str] = field(default_factory=list)
    duplicate_rows: list[str] = field(default_factory=list)
    wrong_values: list[str] = field(default_factory=list)
    dead_letter_rows: list[str] = field(default_factory=list)  # raw bytes, size, hash, detail
    leads: list[str] = field(default_factory=list)  # (cluster, minute, counter): got != expected
    buyer_events: list[str] = field(default_factory=list)
    doubled: int = 0  # events counted more than once: lead counters over the truth, dupe rows
    reasons: Counter = field(default_factory=Counter)  # dead letters by reason
    fate: dict[str, str] = field(default_factory=dict)  # label -> last outcome seen

    @property
    def lost(self) -> int:
        return len(self.lost_events) + len(self.lost_poison)

    def problems(self) -> dict[str, list[str]]:
        return {name: items for name, items in (
            ("valid events not stored", self.lost_events),
            ("poison neither dead-lettered nor stored", self.lost_poison),
            ("poison dead-lettered with another reason", self.wrong_reason),
            ("poison stored as valid", self.poison_stored),
            ("valid messages dead-lettered", self.valid_dead_lettered),
            ("duplicate rows", self.duplicate_rows),
            ("values stored wrong", self.wrong_values),
            ("dead-letter rows incomplete", self.dead_letter_rows),
            ("leads per cluster and minute", self.leads),
            ("buyer events", self.buyer_events),
        ) if items}

    def report(self, limit: int = 12) -> str:
        lines = []
        for name, items in self.problems().items():
            lines.append(f"{name} ({len(items)}):")
            lines += [f"  {item}" for item in items[:limit]]
            if len(items) > limit:
                lines.append(f"  ... and {len(items) - limit} more")
        return "\n".join(lines)

    def figures(self) -> dict[str, int]:
        """More columns for the reliability table (lost and doubled are its own)."""
        return {"misfiled": len(self.wrong_reason) + len(self.poison_stored)
                + len(self.valid_dead_lettered),
                "wrong_values": len(self.wrong_values)}


def audit(pipe: Pipeline, sent: list[Message], landed: list[Landed],
          max_message_bytes: int | None = None, check_values: bool = True) -> Audit:
    """Compare ``sent`` (labelled ``landed`` on the broker) with the store.

    ``landed`` labels are message kinds: ``"valid"`` or a poison kind; ``sent`` gives each
    poison kind its expected reason (one reason per kind).
    """
    assert pipe.store is not None
    query, db = pipe.store.query, pipe.settings.clickhouse_database
    limit = max_message_bytes or pipe.settings.max_message_bytes
    out = Audit()
    expect_of = {m.kind: m.expect for m in sent}
    docs = distinct_docs(sent)
    kind_of_event = {m.event_id: m.kind for m in sent if m.event_id}

    # -- dead letters: exactly the poison, each with its reason, where it landed ----------
    # dead_letters keeps one row per origin (the first reading: where the message landed;
    # nothing here replays, so each row's source is its origin too).
    result = query(f"SELECT * FROM {db}.{DEAD_LETTER_TABLE.name} FINAL")
    dead = {(r["origin_topic"], r["origin_partition"], r["origin_offset"]): r
            for r in (dict(zip(result.columns, row, strict=True)) for row in result.rows)}
    out.reasons = Counter(r["reason"] for r in dead.values())
    stored_ids = _stored_ids(query, db)
    for at in landed:
        expected = expect_of.get(at.label)
        row = dead.pop((at.topic, at.partition, at.offset), None)
        out.fate[at.label] = row["reason"] if row is not None else "stored or lost"
        if expected is None:  # valid, or hostile-looking but valid
            if row is not None:
                out.valid_dead_lettered.append(f"{at.label} at {at.where}: {row['reason']} "
                                               f"({row['detail']})")
            continue
        if row is None:
            what = f"{at.label} at {at.where} (expected {expected})"
            event_id = f"poison-{at.label}"[:64]
            if any(event_id in ids for ids in stored_ids.values()):
                out.poison_stored.append(what)
                out.fate[at.label] = "stored"
            else:
                out.lost_poison.append(what)
                out.fate[at.label] = "lost"
            continue
        if row["reason"] != expected:
            out.wrong_reason.append(f"{at.label} at {at.where}: {row['reason']} "
                                    f"(expected {expected}; {row['detail']})")
        problem = _dead_letter_row_problem(row, at, limit)
        if problem:
            out.dead_letter_rows.append(f"{at.label} at {at.where}: {problem}")
    for (topic, partition, offset), row in dead.items():
        out.valid_dead_lettered.append(f"unknown message at {topic}[{partition}]@{offset}: "
                                       f"{row['reason']} ({row['detail']})")

    # -- raw tables: every valid event once, with the values sent --------------------------
    for doc in docs:
        table = TABLE_BY_EVENT_TYPE[doc["event_type"]].name
        label = kind_of_event.get(doc["event_id"], "valid")
        if doc["event_id"] in stored_ids[table]:
            out.fate.setdefault(label, "stored")
            if out.fate[label] == "stored or lost":
                out.fate[label] = "stored"
        else:
            out.fate[label] = "lost"
            out.lost_events.append(f"{kind_of_event.get(doc['event_id'])} "
                                   f"{doc['event_id']} ({table})")
    expected_ids = {d["event_id"] for d in docs}
    for table, ids in stored_ids.items():
        for event_id in sorted(ids - expected_ids):
            if not event_id.startswith("poison-"):
                out.poison_stored.append(f"unknown event {event_id} stored in {table}")
        dupes = query(f"SELECT event_id, count() AS n FROM {db}.{table} FINAL "
                      f"GROUP BY event_id HAVING n > 1 LIMIT 20").rows
        out.duplicate_rows += [f"{table}: {e} x{n}" for e, n in dupes]
        out.doubled += sum(n - 1 for _, n in dupes)
    if check_values:
        out.wrong_values += _value_problems(query, db, docs)

    # -- leads: per cluster and event-time minute, from the stream's aggregate ------------
    expected = _expected_leads_by_minute(docs)
    got: dict[tuple[str, str], dict[str, int]] = {}
    for cluster, minute, *counts in query(
        f"SELECT cluster_id, minute, scans, inquiries, procurement_steps, distinct_badges "
        f"FROM {db}.{LEADS_PER_CLUSTER_MINUTE.name}"
    ).rows:
        got[(cluster, _minute(minute))] = dict(
            zip(_LEAD_COLUMNS, (int(c) for c in counts), strict=True)
        )
    for key in sorted(set(expected) | set(got)):
        want = expected.get(key, dict.fromkeys(_LEAD_COLUMNS, 0))
        have = got.get(key, dict.fromkeys(_LEAD_COLUMNS, 0))
        for column in _LEAD_COLUMNS:
            if have[column] != want[column]:
                out.leads.append(f"{key[0]} {key[1]} {column}: {have[column]} "
                                 f"(expected {want[column]})")
                if column != "distinct_badges":  # doubled counts events, not badges
                    out.doubled += max(0, have[column] - want[column])
    raw_leads = q.run(q.LEADS_BY_CLUSTER, query, db)
    for cluster, counts in _expected_leads_by_cluster(docs).items():
        for column, n in counts.items():
            if raw_leads.get(cluster, {}).get(column, 0) != n:
                out.leads.append(f"{cluster} {column} from the raw tables: "
                                 f"{raw_leads.get(cluster, {}).get(column, 0)} (expected {n})")

    # -- buyer events: every buyer-bearing event once --------------------------------------
    want_buyer = {d["event_id"] for d in docs if d["event_type"] in BUYER_EVENT_TYPES}
    have_buyer = {r[0] for r in query(
        f"SELECT DISTINCT event_id FROM {db}.{BUYER_EVENTS_TABLE.name}").rows}
    out.buyer_events += [f"missing {e}" for e in sorted(want_buyer - have_buyer)]
    out.buyer_events += [f"unexpected {e}" for e in sorted(have_buyer - want_buyer)]
    return out


_LEAD_COLUMNS = ("scans", "inquiries", "procurement_steps", "distinct_badges")


def _stored_ids(query: Query, db: str) -> dict[str, set[str]]:
    return {t.name: {r[0] for r in query(f"SELECT DISTINCT event_id FROM {db}.{t.name}").rows}
            for t in TABLE_BY_EVENT_TYPE.values()}


def _dead_letter_row_problem(row: dict[str, Any], at: Landed, limit: int) -> str:
    """A dead letter keeps the raw bytes (a bounded prefix when large), the size and a hash."""
    kept = base64.b64decode(row["raw_base64"])
    if not row.get("detail"):
        return "no detail"
    source = (row["source_topic"], row["source_partition"], row["source_offset"])
    if source != (at.topic, at.partition, at.offset):
        return f"read at {source}, not where it landed (no replay here)"
    if int(row["raw_size"]) != at.size:
        return f"raw_size {row['raw_size']} != {at.size}"
    if at.size <= limit:
        same = hashlib.sha256(kept).hexdigest() == at.sha256
        return "" if same else f"raw bytes differ ({len(kept)} kept of {at.size})"
    if len(kept) > limit or not kept or kept[:64] != at.head:
        return f"kept {len(kept)} bytes of {at.size}: not a bounded prefix (limit {limit})"
    if not any(isinstance(v, str) and len(v) >= 16 and at.sha256.startswith(v.lower())
               for v in row.values()):
        return "no SHA-256 of the whole message"
    return ""


def _value_problems(query: Query, db: str, docs: list[dict[str, Any]]) -> list[str]:
    problems = []
    by_type: dict[str, list[dict[str, Any]]] = {}
    for doc in docs:
        by_type.setdefault(doc["event_type"], []).append(doc)
    for event_type, group in by_type.items():
        table = TABLE_BY_EVENT_TYPE[event_type].name
        columns = ["event_id", *TIME_COLUMNS, *CHECKED_COLUMNS[event_type]]
        rows = {r[0]: dict(zip(columns, r, strict=True)) for r in query(
            f"SELECT {', '.join(columns)} FROM {db}.{table} FINAL").rows}
        for doc in group:
            row = rows.get(doc["event_id"])
            if row is None:
                continue  # counted as lost
            for column in TIME_COLUMNS:
                want = _utc_ms(datetime.fromisoformat(doc[column]))
                if _utc_ms(row[column]) != want:
                    problems.append(f"{doc['event_id']} {column}: {row[column]} (sent {want})")
            for column, path in CHECKED_COLUMNS[event_type].items():
                want = doc[path[0]].get(path[1]) if len(path) == 2 else doc[path[0]]
                if not _same(row[column], want):
                    problems.append(f"{doc['event_id']} {table}.{column}: {row[column]!r} "
                                    f"(sent {want!r})")
    return problems


def _same(stored: Any, sent: Any) -> bool:
    if sent is None:
        return stored in (None, "")
    if isinstance(stored, Decimal) or isinstance(sent, str) and isinstance(stored, float):
        return Decimal(str(stored)) == Decimal(str(sent))
    return stored == sent


def _utc_ms(value: datetime) -> datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _minute(value: Any) -> str:
    if isinstance(value, datetime):
        return _utc_ms(value).strftime("%Y-%m-%d %H:%M")
    return str(value)[:16]


def _expected_leads_by_minute(docs: list[dict[str, Any]]) -> dict[tuple[str, str], dict]:
    events: dict[tuple[str, str], dict[str, set[str]]] = {}
    for doc in docs:
        cluster = lead_cluster(doc)
        if cluster is None:
            continue
        minute = _minute(datetime.fromisoformat(doc["occurred_at"]))
        sets = events.setdefault((cluster, minute), {c: set() for c in _LEAD_COLUMNS})
        sets[LEAD_COUNTER[doc["event_type"]]].add(doc["event_id"])
        if doc["event_type"] == SCAN:
            sets["distinct_badges"].add(doc["payload"]["badge_id"])
    return {k: {c: len(s) for c, s in v.items()} for k, v in events.items()}


def _expected_leads_by_cluster(docs: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    sets: dict[str, dict[str, set[str]]] = {}
    for doc in docs:
        cluster = lead_cluster(doc)
        if cluster is None:
            continue
        entry = sets.setdefault(cluster, {c: set() for c in _LEAD_COLUMNS})
        entry[LEAD_COUNTER[doc["event_type"]]].add(doc["event_id"])
        if doc["event_type"] == SCAN:
            entry["distinct_badges"].add(doc["payload"]["badge_id"])
    return {k: {c: len(s) for c, s in v.items()} for k, v in sets.items()}


def fail_unless_exact(idle: bool, why: str, found: Audit, what: str) -> None:
    """One failure message with every difference (and the wedge, if it did not settle)."""
    problems = found.report()
    if idle and not problems:
        return
    head = f"{what}: lost {found.lost}, doubled {found.doubled}"
    pytest.fail("\n".join(x for x in (head, problems, why) if x), pytrace=False)

"""``leadloom deadletters list|show``: dead letters with their retry status, read from the store.

A dead letter is one ``dead_letters`` row (``FINAL``: the newest failure per key), keyed by
its origin ``topic[partition]@offset[#line]`` (where the message was first read, and the
line of a batched message, migration 018; a replayed or retried message that fails again
replaces its dead letter) and ``raw_sha256`` (one message of a derived topic may hold
several failed rows). Its retry status comes from
``dead_letter_retries`` (migration 016; ``leadloom deadletters retry``, see
``leadloom.commands.deadletters_retry``):

- ``never retried``: no retry row;
- ``republished``: the last retry sent it again and it has not failed since;
- ``dead again``: the last retry republished it, and the pipeline refused it again
  afterwards (the dead letter's ``failed_at`` is after that retry);
- ``still invalid`` / ``not retryable``: the last retry's outcome.

Every status but ``republished`` is *still dead*; ``retry`` selects only those.

Reads go through :func:`core.owner.read_query` in the ops scope (the raw archive is
ops-only): the running owner's HTTP interface, or the store directly when nothing runs.
Values in the SQL are literals escaped here (the owner's interface takes one statement
without parameters); filters are checked before anything is read. Failure modes:
:class:`DeadLetterError` (one line) for a bad filter or reference, ``StoreError`` when the
store cannot answer.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.owner import read_query
from core.reads import QueryResult
from core.settings import Settings
from leadloom.commands.times import TimeError, aware_time
from schemas.deadletter import Reason
from schemas.registry import (
    DEAD_LETTER_RETRIES,
    DEAD_LETTER_TABLE,
    ORIGIN_HEADER,
    RAW_ARCHIVE,
    RetryOutcome,
)
from schemas.scope import OPS_SCOPE
from streams.rows import SourceRef, origin_of

DEFAULT_LIMIT = 50
DETAIL_CHARS = 80  # the listing's short detail
PREVIEW_CHARS = 4096  # text shown by `show`
PREVIEW_HEX_BYTES = 256  # bytes shown as hex by `show` when they are not UTF-8

# The status of a dead letter d joined with its retries r (the module docstring).
STILL_DEAD = ("never retried", "dead again", "still invalid", "not retryable")
_REPUBLISHED = RetryOutcome.REPUBLISHED.value
STATUS_SQL = (
    "multiIf(r.retries = 0, 'never retried',"
    f" r.last_outcome = '{_REPUBLISHED}' AND d.failed_at > r.last_at, 'dead again',"
    f" r.last_outcome = '{_REPUBLISHED}', 'republished',"
    f" r.last_outcome = '{RetryOutcome.STILL_INVALID.value}', 'still invalid',"
    " 'not retryable')"
)
KEY = ("origin_topic", "origin_partition", "origin_offset", "origin_line", "raw_sha256")


class DeadLetterError(RuntimeError):
    """A refused filter or reference, or a refused retry (one line: what to do instead)."""


@dataclass(frozen=True)
class Filters:
    """Which dead letters: any of ``reasons``, any of ``topics`` (full origin topic names),
    failed in [``since``, ``until``), at most ``limit`` (None: all), newest first."""

    reasons: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    limit: int | None = DEFAULT_LIMIT

    def params(self) -> dict[str, Any]:
        """As the audit row records them."""
        return {"reasons": list(self.reasons), "topics": list(self.topics),
                "since": self.since.isoformat() if self.since else None,
                "until": self.until.isoformat() if self.until else None,
                "limit": self.limit}


def parse_time(text: str, flag: str) -> datetime:
    """An aware ISO-8601 time (a naive one is refused: the zone decides which failures)."""
    try:
        return aware_time(text, flag).astimezone(UTC)
    except TimeError as exc:
        raise DeadLetterError(str(exc)) from exc


def make_filters(settings: Settings, reasons: list[str] | None, topics: list[str] | None,
                 since: str | None, until: str | None, limit: int | None) -> Filters:
    """Checked filters from the command line: reasons must be reason codes; a topic is a
    full name or a suffix of the namespace (``raw.scans``); times carry a zone."""
    known = {r.value for r in Reason}
    wrong = [r for r in reasons or () if r not in known]
    if wrong:
        raise DeadLetterError(f"unknown reason {wrong[0]!r} (reasons: {', '.join(sorted(known))})")
    names = settings.topics.all()
    full = tuple(t if t in names or f"{settings.namespace}.{t}" not in names
                 else f"{settings.namespace}.{t}" for t in topics or ())
    if limit is not None and limit < 1:
        raise DeadLetterError(f"--limit {limit}: give at least 1")
    start = parse_time(since, "--since") if since else None
    end = parse_time(until, "--until") if until else None
    if start and end and end <= start:
        raise DeadLetterError("--until must be after --since")
    return Filters(tuple(reasons or ()), full, start, end, limit)


def quote(text: str) -> str:
    """``text`` as a ClickHouse string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _time(when: datetime) -> str:
    return f"toDateTime64({quote(when.strftime('%Y-%m-%d %H:%M:%S.%f')[:-3])}, 3, 'UTC')"


def where(filters: Filters) -> str:
    """The filters as a WHERE condition on ``dead_letters``."""
    terms = ["1"]
    if filters.reasons:
        terms.append(f"reason IN ({', '.join(quote(r) for r in filters.reasons)})")
    if filters.topics:
        terms.append(f"origin_topic IN ({', '.join(quote(t) for t in filters.topics)})")
    if filters.since:
        terms.append(f"failed_at >= {_time(filters.since)}")
    if filters.until:
        terms.append(f"failed_at < {_time(filters.until)}")
    return " AND ".join(terms)


def selection_sql(db: str, filters: Filters, still_dead_only: bool = False) -> str:
    """Dead letters matching ``filters`` with their retry status, newest failure first
    (without the raw bytes)."""
    key = ", ".join(KEY)
    status = f"WHERE status IN ({', '.join(quote(s) for s in STILL_DEAD)})" \
        if still_dead_only else ""
    limit = f" LIMIT {int(filters.limit)}" if filters.limit is not None else ""
    return (
        "SELECT * FROM ("
        "SELECT d.origin_topic AS origin_topic, d.origin_partition AS origin_partition,"
        " d.origin_offset AS origin_offset, d.origin_line AS origin_line,"
        " d.raw_sha256 AS raw_sha256, d.reason AS reason,"
        " d.failed_at AS failed_at, d.raw_size AS raw_size, d.event_id AS event_id,"
        f" left(d.detail, {DETAIL_CHARS}) AS detail, d.source_topic AS source_topic,"
        " d.source_partition AS source_partition, d.source_offset AS source_offset,"
        " d.source_line AS source_line,"
        " r.retries AS retries, r.last_at AS last_retried_at,"
        f" {STATUS_SQL} AS status"
        f" FROM (SELECT * FROM {db}.{DEAD_LETTER_TABLE.name} FINAL WHERE {where(filters)}) AS d"
        f" LEFT JOIN (SELECT {key}, count() AS retries, max(retried_at) AS last_at,"
        " argMax(outcome, retried_at) AS last_outcome"
        f" FROM {db}.{DEAD_LETTER_RETRIES.name} FINAL GROUP BY {key}) AS r"
        f" USING ({key})) {status}"
        " ORDER BY failed_at DESC, origin_topic, origin_partition, origin_offset, origin_line,"
        " raw_sha256"
        f"{limit}"
    )


def read(settings: Settings, sql: str) -> QueryResult:
    """One read in the ops scope (:func:`core.owner.read_query`)."""
    return read_query(settings, sql, scope=OPS_SCOPE)


def records(result: QueryResult) -> list[dict[str, Any]]:
    return [dict(zip(result.columns, row, strict=True)) for row in result.rows]


def ref_of(row: dict[str, Any], prefix: str = "origin") -> str:
    """``topic[partition]@offset[#line]`` of a dead letter's origin (or source)."""
    return str(SourceRef(row[f"{prefix}_topic"], int(row[f"{prefix}_partition"]),
                         int(row[f"{prefix}_offset"]), int(row.get(f"{prefix}_line") or 0)))


def list_dead_letters(settings: Settings, filters: Filters) -> dict[str, Any]:
    """The listing ``--json`` prints: ``dead_letters`` (each with ``ref`` and ``status``)
    and ``by_status`` counts of what is listed."""
    rows = records(read(settings, selection_sql(settings.clickhouse_database, filters)))
    out = []
    for row in rows:
        retried = row["last_retried_at"] if int(row["retries"] or 0) else None
        out.append({"ref": ref_of(row), "reason": row["reason"], "failed_at": row["failed_at"],
                    "raw_size": int(row["raw_size"]), "event_id": row["event_id"],
                    "detail": row["detail"], "status": row["status"],
                    "retries": int(row["retries"] or 0), "last_retried_at": retried,
                    "source": ref_of(row, "source"), "raw_sha256": row["raw_sha256"]})
    by_status: dict[str, int] = {}
    for row in out:
        by_status[row["status"]] = by_status.get(row["status"], 0) + 1
    return {"filters": filters.params(), "count": len(out), "by_status": by_status,
            "dead_letters": out}


_NO_REF = SourceRef("", 0, 0)


def parse_ref(text: str) -> SourceRef:
    """``topic[partition]@offset[#line]`` as dead letters and the origin header spell it."""
    # the origin header's own parser: one definition of a valid reference
    ref = origin_of({ORIGIN_HEADER: text.encode("utf-8")}, _NO_REF)
    if ref is _NO_REF:
        raise DeadLetterError(f"{text!r} is not a reference topic[partition]@offset[#line]"
                              " (as 'deadletters list' prints it)")
    return ref


def _at(ref: SourceRef, prefix: str, line: bool = True) -> str:
    """The rows at ``ref``; ``line``: also its line (the archive has none: whole messages)."""
    where = (f"{prefix}topic = {quote(ref.topic)} AND {prefix}partition = {ref.partition}"
             f" AND {prefix}offset = {ref.offset}")
    return f"{where} AND {prefix}line = {ref.line}" if line else where


def archived_event(whole: bytes, line: int, sha256: str) -> bytes | None:
    """The bytes of the event with ``sha256`` in an archived message: the whole message (a
    single event), else its ``line`` (a batched message: ``streams.lines``); None if
    neither has that hash (the archive's copy is not the dead letter's)."""
    if _sha256(whole) == sha256:
        return whole
    lines = whole.split(b"\n")
    if line < len(lines) and _sha256(lines[line]) == sha256:
        return lines[line]
    return None


def archived_bytes(row: dict[str, Any]) -> bytes:
    """The message bytes of a ``raw_archive`` row (value as text, or base64)."""
    value = str(row["value"])
    return base64.b64decode(value) if int(row["value_base64"]) else value.encode("utf-8")


def archive_headers(value: Any) -> list[tuple[str, bytes]]:
    """``raw_archive.headers`` as read (named tuples come as objects or as pairs)."""
    out = []
    for item in value or ():
        name, encoded = (item["name"], item["value_base64"]) if isinstance(item, dict) \
            else (item[0], item[1])
        out.append((str(name), base64.b64decode(str(encoded))))
    return out


def safe_text(text: str) -> str:
    """``text`` with every character a terminal could act on escaped (control characters,
    bidirectional and other format characters), newlines and tabs kept."""
    return "".join(ch if ch.isprintable() or ch in "\n\t"
                   else ch.encode("unicode_escape").decode("ascii") for ch in text)


def preview(raw: bytes) -> dict[str, Any]:
    """How ``show`` prints bytes: UTF-8 text (escaped, at most :data:`PREVIEW_CHARS`
    characters), else the first :data:`PREVIEW_HEX_BYTES` bytes as hex."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return {"encoding": "binary", "hex": raw[:PREVIEW_HEX_BYTES].hex(" "),
                "truncated": len(raw) > PREVIEW_HEX_BYTES}
    return {"encoding": "utf-8", "text": safe_text(text[:PREVIEW_CHARS]),
            "truncated": len(text) > PREVIEW_CHARS}


def show(settings: Settings, text: str) -> dict[str, Any]:
    """Every dead letter at origin ``text`` (usually one), each whole with its bytes shown
    safely (the archive's copy when there is one: whole; else the dead letter's prefix),
    and the retries of each."""
    ref = parse_ref(text)
    db = settings.clickhouse_database
    letters = records(read(
        settings, f"SELECT * FROM {db}.{DEAD_LETTER_TABLE.name} FINAL WHERE {_at(ref, 'origin_')}"
        " ORDER BY failed_at DESC, raw_sha256"))
    if not letters:
        raise DeadLetterError(f"no dead letter at {ref} (see 'leadloom deadletters list')")
    archive = records(read(
        settings, f"SELECT key_base64, value, value_base64, headers, kafka_timestamp"
        f" FROM {db}.{RAW_ARCHIVE.name} WHERE {_at(ref, '', line=False)} LIMIT 1"))
    retries = records(read(
        settings, f"SELECT raw_sha256, retried_at, audit_id, outcome, reason, published_to"
        f" FROM {db}.{DEAD_LETTER_RETRIES.name} FINAL WHERE {_at(ref, 'origin_')}"
        " ORDER BY retried_at, audit_id"))
    whole = archived_bytes(archive[0]) if archive else None
    out = []
    for letter in letters:
        prefix = base64.b64decode(str(letter.pop("raw_base64")))
        sha = letter["raw_sha256"]
        event = archived_event(whole, ref.line, sha) if whole is not None else None
        from_archive = event is not None
        raw = event if event is not None else prefix
        out.append({
            **letter, "ref": str(ref), "source": ref_of(letter, "source"),
            "raw": {"from": "raw_archive" if from_archive else "dead_letter",
                    "whole": from_archive or len(prefix) == int(letter["raw_size"]),
                    "size": int(letter["raw_size"]), **preview(raw),
                    "base64": base64.b64encode(raw).decode("ascii")},
            "retries": [r for r in retries if r["raw_sha256"] == sha],
        })
    return {"ref": str(ref), "dead_letters": out,
            "archived": {"kafka_timestamp": archive[0]["kafka_timestamp"],
                         "key_base64": archive[0]["key_base64"],
                         "headers": [n for n, _ in archive_headers(archive[0]["headers"])]}
            if archive else None}


def _sha256(raw: bytes) -> str:
    import hashlib

    return hashlib.sha256(raw).hexdigest()

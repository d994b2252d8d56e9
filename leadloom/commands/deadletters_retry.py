"""``leadloom deadletters retry``: re-validate still-dead dead letters with the current schemas
and republish the ones that now pass.

For each selected dead letter (the listing's filters; only *still dead* ones, see
``leadloom.commands.deadletters``), in chunks of :data:`CHUNK`:

1. **Retryable?** Only a dead letter whose origin is a raw topic of the namespace, failed on
   its own bytes: a derived stage's dead letter (``store_refused``, ``identity_*``, one from
   ``leads.contributions``, ``identity.records``, ``matchmaking.requests`` ...) is
   ``not_retryable`` (``leadloom replay reprocess`` rebuilds derived state).
2. **The whole bytes**: the raw archive's copy at the origin coordinates (its SHA-256 must be
   the dead letter's; of a batched message, the origin line's), else the dead letter's own
   ``raw_base64`` when ``raw_size`` says it is whole; else ``not_retryable`` (truncated).
   A bad line of a batch is re-sent alone, as a message of one event.
3. **Re-validated** by ``streams.validate.validate`` with the origin topic's event type and
   ``settings.max_message_bytes``: a rejection is ``still_invalid`` with today's reason.
4. **Republished** to the origin topic with the archived key (else the registry's
   ``key_of``; a batch's line: always ``key_of``, the batch's key belongs to its first
   event), the archived headers and ``leadloom-origin`` = the origin reference (with
   ``#line`` for a batch's line after the first): if the
   pipeline refuses it again, its dead letter is replaced, not added; if it passes, it is
   stored once (rows collapse on ``event_id``, leads count event ids).
5. One ``dead_letter_retries`` row per dead letter (``send_ops_rows``), after the chunk's
   sends are acknowledged: a row says ``republished`` only for a message the broker holds.

Ctrl-C / SIGTERM: the chunk in hand is flushed and its rows written, then the command stops
(the summary's ``interrupted``; the CLI exits 130; audit ``interrupted``): every retry it
reports is complete, and a re-run skips what was republished. A message republished whose
row was not written (a crash, not an interrupt) is republished again by the next run: the
same ``event_id``, counted once.
A dry run reads and re-validates, republishes and writes nothing but its audit row.

Failure modes: ``KafkaUnavailable`` (no broker: nothing is sent, or the audit cannot be
written), ``StoreError`` (the store cannot answer), :class:`DeadLetterError` when sends
failed (the rest went on; the failed ones stay still dead, without a retry row).
"""

from __future__ import annotations

import base64
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.settings import Settings
from leadloom.commands.audit import Result, audited, send_ops_rows
from leadloom.commands.deadletters import (
    DeadLetterError,
    Filters,
    archive_headers,
    archived_bytes,
    archived_event,
    quote,
    read,
    records,
    selection_sql,
)
from leadloom.commands.progress_bar import ProgressBar
from producers.publisher import Publisher, Sent
from schemas.deadletter import Reason
from schemas.registry import (
    DEAD_LETTER_RETRIES,
    DEAD_LETTER_TABLE,
    ORIGIN_HEADER,
    RAW_ARCHIVE,
    RAW_TOPICS,
    OpsCommand,
    RetryOutcome,
)
from streams.rows import SourceRef
from streams.validate import Accepted, validate

COMMAND = OpsCommand.DEADLETTERS_RETRY.value
CHUNK = 200  # dead letters read, judged, sent and recorded at a time
FLUSH_TIMEOUT_S = 60.0
# Reasons of derived stages: the row or record a worker or the sink wrote was refused, never
# the input as sent, so re-validating the input says nothing about them.
DERIVED_REASONS = frozenset({Reason.STORE_REFUSED.value, Reason.IDENTITY_BAD_JSON.value,
                             Reason.IDENTITY_INVALID.value})

Confirm = Callable[[int], str | None]  # number to republish -> None (go) or why not


@dataclass(frozen=True)
class LetterKey:
    """A dead letter's key (dead_letters' sorting key; the origin carries its line)."""

    origin: SourceRef
    raw_sha256: str


@dataclass
class Decision:
    """What the retry does with one dead letter."""

    key: LetterKey
    outcome: RetryOutcome
    reason: str = ""
    raw: bytes = b""
    event_type: str = ""
    message_key: bytes | None = None
    archived_key: bool = False  # message_key comes from the archive (else key_of)
    headers: dict[str, bytes] | None = None
    published_to: str = ""
    sent: Sent | None = None


def retry_row(key: LetterKey, retried_at: datetime, audit_id: str, outcome: RetryOutcome,
              reason: str = "", published_to: str = "") -> dict[str, object]:
    """The ``dead_letter_retries`` row of one dead letter in one retry run."""
    return {
        "origin_topic": key.origin.topic,
        "origin_partition": key.origin.partition,
        "origin_offset": key.origin.offset,
        **({"origin_line": key.origin.line} if key.origin.line else {}),
        "raw_sha256": key.raw_sha256,
        "retried_at": retried_at.isoformat(timespec="milliseconds"),
        "audit_id": audit_id,
        "outcome": outcome.value,
        "reason": reason[:300],
        "published_to": published_to,
    }


def _key_of(row: dict[str, Any]) -> LetterKey:
    return LetterKey(SourceRef(str(row["origin_topic"]), int(row["origin_partition"]),
                               int(row["origin_offset"]), int(row.get("origin_line") or 0)),
                     str(row["raw_sha256"]))


def _message_of(origin: SourceRef) -> SourceRef:
    """The archived message holding ``origin`` (the archive keeps whole messages)."""
    return SourceRef(origin.topic, origin.partition, origin.offset)


def _bytes_of(settings: Settings, keys: list[LetterKey]) -> tuple[dict[LetterKey, tuple[bytes,
                                                                                          int]],
                                                                 dict[SourceRef, dict]]:
    """The dead letters' stored prefixes (with raw_size) and the archive rows at their
    origins, for one chunk."""
    db = settings.clickhouse_database
    tuples = ", ".join(f"({quote(k.origin.topic)}, {k.origin.partition}, {k.origin.offset},"
                       f" {k.origin.line}, {quote(k.raw_sha256)})" for k in keys)
    letters = records(read(
        settings, f"SELECT origin_topic, origin_partition, origin_offset, origin_line,"
        f" raw_sha256, raw_base64, raw_size FROM {db}.{DEAD_LETTER_TABLE.name} FINAL"
        " WHERE (origin_topic, origin_partition, origin_offset, origin_line, raw_sha256)"
        f" IN ({tuples})"))
    prefixes = {_key_of(r): (base64.b64decode(str(r["raw_base64"])), int(r["raw_size"]))
                for r in letters}
    origins = ", ".join(sorted({f"({quote(k.origin.topic)}, {k.origin.partition},"
                                f" {k.origin.offset})" for k in keys}))
    archived = records(read(
        settings, f"SELECT topic, partition, offset, key_base64, value, value_base64, headers"
        f" FROM {db}.{RAW_ARCHIVE.name} WHERE (topic, partition, offset) IN ({origins})"
        " LIMIT 1 BY topic, partition, offset"))
    return prefixes, {SourceRef(str(r["topic"]), int(r["partition"]), int(r["offset"])): r
                      for r in archived}


def judge(settings: Settings, row: dict[str, Any], prefix: tuple[bytes, int] | None,
          archived: dict | None) -> Decision:
    """Steps 1-3 of the module docstring for one selected dead letter (no side effect)."""
    key = _key_of(row)
    topic = key.origin.topic
    raw_topics = {settings.topics.name(s): s.value_schema for s in RAW_TOPICS}
    suffix = topic[len(settings.namespace) + 1:] \
        if topic.startswith(f"{settings.namespace}.") else ""
    if topic not in raw_topics:
        if topic in settings.topics.all():
            why = (f"a dead letter of the derived stage {suffix} ({row['reason']}), not of a raw"
                   " input: rebuild derived state with 'leadloom replay reprocess'")
        else:
            why = f"origin {topic} is not a raw topic of namespace {settings.namespace}"
        return Decision(key, RetryOutcome.NOT_RETRYABLE, why)
    if row["reason"] in DERIVED_REASONS:
        return Decision(key, RetryOutcome.NOT_RETRYABLE,
                        f"{row['reason']}: a derived stage refused it, not the input's"
                        " validation: rebuild derived state with 'leadloom replay reprocess'")
    raw: bytes | None = None
    message_key: bytes | None = None
    headers: dict[str, bytes] = {}
    from_archive = False
    if archived is not None:
        whole = archived_bytes(archived)
        raw = archived_event(whole, key.origin.line, key.raw_sha256)
        if raw is not None:
            # a batch's line goes alone: keyed by key_of (the batch's key is its first
            # event's), with the batch's headers
            from_archive = raw is whole
            encoded = archived["key_base64"]
            if from_archive:
                message_key = None if encoded is None else base64.b64decode(str(encoded))
            headers = dict(archive_headers(archived["headers"]))
    if raw is None and prefix is not None and len(prefix[0]) == prefix[1]:
        raw = prefix[0]
    if raw is None:
        kept = len(prefix[0]) if prefix else 0
        size = prefix[1] if prefix else int(row["raw_size"])
        return Decision(key, RetryOutcome.NOT_RETRYABLE,
                        f"truncated: the raw archive has no copy at {key.origin} and the dead"
                        f" letter keeps {kept:,} of its {size:,} bytes")
    event_type = raw_topics[topic]
    outcome = validate(raw, event_type, settings.max_message_bytes)
    if not isinstance(outcome, Accepted):
        return Decision(key, RetryOutcome.STILL_INVALID,
                        f"{outcome.reason.value}: {outcome.detail}")
    headers[ORIGIN_HEADER] = str(key.origin).encode("utf-8")
    return Decision(key, RetryOutcome.REPUBLISHED, "", raw, event_type, message_key,
                    from_archive, headers)


@dataclass
class Tally:
    """What a run did (or, dry, would do)."""

    selected: int = 0
    republished: int = 0
    still_invalid: int = 0
    not_retryable: int = 0
    send_failed: int = 0
    items: list[dict[str, Any]] | None = None

    def add(self, d: Decision) -> None:
        field = d.outcome.value if d.outcome is not RetryOutcome.REPUBLISHED or \
            d.published_to or d.sent is None else "send_failed"
        setattr(self, field, getattr(self, field) + 1)
        if self.items is not None:
            self.items.append({"ref": str(d.key.origin), "raw_sha256": d.key.raw_sha256,
                               "outcome": field, "reason": d.reason,
                               "published_to": d.published_to})

    def counts(self) -> dict[str, int]:
        return {"selected": self.selected, "republished": self.republished,
                "still_invalid": self.still_invalid, "not_retryable": self.not_retryable,
                "send_failed": self.send_failed}


def select(settings: Settings, filters: Filters) -> list[dict[str, Any]]:
    """The still-dead dead letters matching ``filters`` (newest ``limit``), in origin order:
    republished messages keep their original order per partition."""
    rows = records(read(settings, selection_sql(settings.clickhouse_database, filters,
                                                      still_dead_only=True)))
    return sorted(rows, key=lambda r: (r["origin_topic"], int(r["origin_partition"]),
                                       int(r["origin_offset"]), int(r.get("origin_line") or 0),
                                       r["raw_sha256"]))


def run_retry(settings: Settings, filters: Filters, *, dry_run: bool, confirm: Confirm,
              progress: Callable[[str], None]) -> dict[str, Any]:
    """Retry the selected dead letters (module docstring); the summary ``--json`` prints.

    ``confirm(n)`` is asked once, before anything is sent (not on a dry run): None goes on,
    a reason declines (audited ``refused``; the summary's ``refused`` holds the reason)."""
    tally = Tally(items=[])
    summary: dict[str, Any] = {"dry_run": dry_run, "filters": filters.params(),
                               "interrupted": False, "refused": None}
    with audited(settings, COMMAND, filters.params(), dry_run=dry_run) as audit:
        summary["audit_id"] = audit.audit_id
        rows = select(settings, filters)  # in the block: a failed read is audited too
        tally.selected = len(rows)
        if not dry_run and rows:
            refused = confirm(len(rows))
            if refused is not None:
                audit.result, audit.detail = Result.REFUSED, refused
                summary["refused"] = refused
                audit.counts = tally.counts()
                return {**summary, **tally.counts(), "items": []}
        progress(f"{len(rows)} still-dead dead letter(s) selected"
                 + (" (dry run: nothing is sent)" if dry_run else ""))
        bar = ProgressBar("retry", len(rows), unit="dead letters")
        publisher = None if dry_run else Publisher(settings)
        try:
            for start in range(0, len(rows), CHUNK):
                _chunk(settings, rows[start:start + CHUNK], publisher, audit.audit_id, tally,
                       bar)
        except KeyboardInterrupt:
            # stopped at a clean point: the chunk in hand is recorded (_chunk); say so,
            # audit it, and let the command exit 130 with its summary
            summary["interrupted"] = True
            audit.result = Result.INTERRUPTED
        finally:
            bar.close()
            if publisher is not None:
                publisher.close(timeout=10)
            audit.counts = tally.counts()
            audit.detail = audit.detail or _line(tally, dry_run)
            summary.update(tally.counts(), items=tally.items)
            progress(_line(tally, dry_run) + (" (interrupted)" if summary["interrupted"]
                                              else ""))
        if tally.send_failed and not summary["interrupted"]:
            raise DeadLetterError(f"{tally.send_failed} republish(es) failed (the broker did"
                                  " not take them): they stay dead; run the retry again")
    return summary


def _line(tally: Tally, dry_run: bool) -> str:
    verb = "would republish" if dry_run else "republished"
    return (f"{tally.selected} selected: {verb} {tally.republished}, still invalid"
            f" {tally.still_invalid}, not retryable {tally.not_retryable}"
            + (f", send failed {tally.send_failed}" if tally.send_failed else ""))


def _chunk(settings: Settings, rows: list[dict[str, Any]], publisher: Publisher | None,
           audit_id: str, tally: Tally, bar: ProgressBar) -> None:
    """Judge, send and record one chunk; on an interrupt, record what was done of it."""
    prefixes, archive = _bytes_of(settings, [_key_of(r) for r in rows])
    decided: list[Decision] = []
    retried_at = datetime.now(UTC)  # before any send: a later failure is after it
    try:
        for row in rows:
            d = judge(settings, row, prefixes.get(_key_of(row)),
                      archive.get(_message_of(_key_of(row).origin)))
            if d.outcome is RetryOutcome.REPUBLISHED and publisher is not None:
                kwargs: dict[str, Any] = {"key": d.message_key} if d.archived_key else {}
                d.sent = publisher.publish(d.raw, d.event_type, headers=d.headers, **kwargs)
            decided.append(d)
    finally:
        # what was decided (and sent) is completed and recorded, interrupted or not
        _record(settings, decided, publisher, audit_id, retried_at, tally)
        bar.advance(len(decided))


@contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C / SIGTERM until the block is done, then raise ``KeyboardInterrupt``: what
    a chunk sent is recorded whole, or the summary would report rows never written.
    Outside the main thread (where handlers cannot be set) the block runs as it is."""
    held: list[int] = []
    try:
        previous = {s: signal.signal(s, lambda signum, _frame: held.append(signum))
                    for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:
        yield
        return
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if held:
            raise KeyboardInterrupt(f"signal {held[0]}")


def _record(settings: Settings, decided: list[Decision], publisher: Publisher | None,
            audit_id: str, retried_at: datetime, tally: Tally) -> None:
    with _interrupts_deferred():
        _record_now(settings, decided, publisher, audit_id, retried_at, tally)


def _record_now(settings: Settings, decided: list[Decision], publisher: Publisher | None,
                audit_id: str, retried_at: datetime, tally: Tally) -> None:
    if publisher is not None:
        publisher.flush(FLUSH_TIMEOUT_S)
    rows = []
    for d in decided:
        if d.sent is not None:
            delivery = d.sent.result(timeout=FLUSH_TIMEOUT_S)
            d.published_to = delivery.where if delivery.ok else ""
        tally.add(d)
        if publisher is None or (d.sent is not None and not d.published_to):
            continue  # a dry run writes nothing; a failed send stays still dead, unrecorded
        rows.append(retry_row(d.key, retried_at, audit_id, d.outcome, d.reason,
                              d.published_to))
    send_ops_rows(settings, DEAD_LETTER_RETRIES.name, rows)

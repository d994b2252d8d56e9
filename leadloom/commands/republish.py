"""``leadloom replay republish``: re-send selected raw events from ``raw_archive`` to the raw
topics with their original event ids, so the pipeline absorbs them and nothing counts twice.

What is selected and skipped: :mod:`leadloom.commands.republish_select`. Each message goes
out byte for byte (value, key, headers in order) to the topic and partition it was read
from (the partitioner decides when that partition no longer exists), plus
:data:`~schemas.registry.ORIGIN_HEADER` with its first coordinates when it has none; a
selected line of a batched message goes alone (its bytes, keyed by ``key_of``, the batch's
headers, the origin naming its line); in (kafka_timestamp, topic, partition, offset, line)
order, read from the archive in pages of
:data:`PAGE_ROWS`, the next page read while one is sent (memory: two pages). The new
messages carry the send time as their Kafka timestamp.

Contract: ``sent`` counts the messages the broker acknowledged (acks=all). Ctrl-C or
SIGTERM stops at a clean point between messages: what was handed to the producer is
flushed and counted, the run is audited ``interrupted`` and :class:`Interrupted` carries
the result. A re-run sends the same messages again, which the pipeline absorbs (idempotent
on event_id; a dead letter is keyed by its origin). Every run, dry runs and refusals
included, writes one ``replay_audit`` row (``leadloom.commands.audit``).

Failure modes: ``KafkaUnavailable`` (no broker); ``StoreError`` (the archive cannot be
read); :class:`RepublishError` when the broker refused sends (after the flush; the audit
says how many were sent before).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from kafka.errors import KafkaError

from core import kafka as llkafka
from core.owner import read_query
from core.reads import QueryResult
from core.settings import Settings
from leadloom.commands.audit import Result, audited
from leadloom.commands.progress_bar import ProgressBar
from leadloom.commands.republish_select import (
    Counts,
    PageKey,
    Selection,
    SelectionSql,
    decode_message,
    with_origin,
)
from schemas.registry import OpsCommand, key_of
from schemas.scope import OPS_SCOPE
from streams.rows import SourceRef

COMMAND = OpsCommand.REPLAY_REPUBLISH.value
PAGE_ROWS = 20_000
FLUSH_TIMEOUT_S = 60.0

Progress = Callable[[str], None]
Query = Callable[[str], QueryResult]
# Asked once the plan is known, unless --yes: None to go ahead, else why not (refused).
Confirm = Callable[[dict[str, Any]], str | None]


class RepublishError(RuntimeError):
    """Sends the broker refused (one line)."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped the run at a clean point; ``result`` says what was done."""

    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__("interrupted")
        self.result = result


@dataclass
class _Deliveries:
    """Messages handed to the producer and the failures its I/O thread reports; after a
    flush every send has completed, so ``sent`` (handed - failed) is what the broker
    acknowledged. (A callback per success costs more than the rest of a send.)"""

    handed: int = 0
    failed: int = 0
    first_error: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def sent(self) -> int:
        return self.handed - self.failed

    faulted: bool = False  # the producer itself failed (a send refused, a flush timed out)

    def error(self, where: str, exc: BaseException) -> None:
        """One handed message failed."""
        with self.lock:
            self.failed += 1
            self._note(where, exc)

    def fault(self, where: str, exc: BaseException) -> None:
        with self.lock:
            self.faulted = True
            self._note(where, exc)

    def _note(self, where: str, exc: BaseException) -> None:
        if not self.first_error:
            self.first_error = f"{where}: {type(exc).__name__}: {exc}"


@contextmanager
def _deferred_interrupts() -> Iterator[threading.Event]:
    """SIGINT and SIGTERM set the event instead of raising mid-send (restored after); in a
    thread other than the main one signals cannot be caught, and nothing changes."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda _signum, _frame: stop.set())
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _line_key(raw: bytes) -> bytes | None:
    """The registry's key of a batch's line (a stored event: JSON); None if unreadable."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return key_of(doc) if isinstance(doc, dict) else None


def ops_reader(settings: Settings) -> Query:
    """Reads in the ops scope (the raw archive is ops-only), through the store's owner
    when one runs (:func:`core.owner.read_query`)."""
    return lambda sql: read_query(settings, sql, scope=OPS_SCOPE)


def republish(settings: Settings, selection: Selection, *, dry_run: bool = False,
              confirm: Confirm | None = None, progress: Progress = lambda _m: None,
              query: Query | None = None,
              on_page: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Run one republish (module docstring) and return its result: ``result`` (ok,
    refused), ``selected``, ``sent``, ``skipped`` by reason, ``by_topic``, ``elapsed_s``,
    ``events_per_s``, ``audit_id``. ``on_page(sent_so_far)`` is called after each page."""
    run = query or ops_reader(settings)
    # The raw topics for the sends and <ns>.ops for the audit row, on a broker that was
    # rebuilt or never ran the pipeline (a dry run is audited too).
    llkafka.ensure_topics(settings)
    as_of = datetime.now(UTC)
    sql = SelectionSql(selection, settings, as_of=as_of)
    with audited(settings, COMMAND, selection.params(), dry_run=dry_run) as audit:
        counts = Counts.of_rows(run(sql.count_sql()).rows)
        result: dict[str, Any] = {
            "command": COMMAND, "dry_run": dry_run, "selection": selection.params(),
            "as_of": as_of.isoformat(),
            "selected": counts.selected, "by_topic": counts.events_by_topic,
            "skipped": counts.skipped, "sent": 0, "result": Result.OK,
            "audit_id": audit.audit_id, "elapsed_s": 0.0, "events_per_s": 0.0,
        }
        audit.counts.update(selected=counts.selected, sent=0,
                            skipped=sum(counts.skipped.values()),
                            **{f"skipped_{k}": v for k, v in counts.skipped.items()})
        skipped = ", ".join(f"{n} {k}" for k, n in counts.skipped.items() if n) or "none"
        progress(f"{counts.selected} event(s) selected in {sql.archive};"
                 f" skipped: {skipped}")
        if dry_run:
            audit.detail = "dry run: nothing sent"
            progress("dry run: nothing sent")
            return result
        refusal = confirm(result) if confirm is not None else None
        if refusal is not None:
            audit.result, audit.detail = Result.REFUSED, refusal
            result.update(result=Result.REFUSED, reason=refusal)
            return result
        began = time.monotonic()
        sent = _Deliveries()
        try:
            stopped = _send(settings, sql, counts.selected, run, sent, on_page)
        finally:  # whatever stopped it (a failed read too), the audit says what went out
            elapsed = time.monotonic() - began
            result["elapsed_s"] = round(elapsed, 3)
            result["sent"] = audit.counts["sent"] = sent.sent
        result["events_per_s"] = round(sent.sent / elapsed, 1) if elapsed > 0 else 0.0
        if sent.failed or sent.faulted:
            audit.detail = (f"{sent.failed} send(s) failed, {sent.sent} sent;"
                            f" first: {sent.first_error}")
            raise RepublishError(audit.detail)
        if stopped:
            audit.result = Result.INTERRUPTED
            audit.detail = (f"interrupted: {sent.sent} of {counts.selected} sent (a re-run"
                            " sends them again: the pipeline absorbs repeats)")
            result["result"] = Result.INTERRUPTED
            progress(audit.detail)
            raise Interrupted(result)
        audit.detail = f"{sent.sent} sent"
        progress(f"{sent.sent} event(s) republished in {elapsed:.1f} s"
                 f" ({result['events_per_s']:,.0f}/s)")
        return result


def _send(settings: Settings, sql: SelectionSql, total: int, run: Query,
          deliveries: _Deliveries, on_page: Callable[[int], None] | None) -> bool:
    """Send every page, counting in ``deliveries``; whether a signal stopped it. The next
    page is read while this one is sent (two pages in memory at most). Flushes before it
    returns or raises (a failed read), so the counts are final."""
    if total == 0:
        return False
    producer = llkafka.producer(settings, linger_ms=settings.bulk_linger_ms,
                                batch_size=settings.bulk_batch_bytes)
    bar = ProgressBar("republish", total)
    partitions: dict[str, set[int]] = {}
    stopped = False
    reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="republish-read")

    def fetch(after: PageKey | None) -> list[list[Any]]:
        return run(sql.page_sql(after, PAGE_ROWS)).rows

    try:
        with _deferred_interrupts() as stop:
            pending = reader.submit(fetch, None)
            while not stop.is_set():
                page = pending.result()
                if len(page) == PAGE_ROWS:
                    last = page[-1]
                    after: PageKey = (int(last[0]), str(last[1]), int(last[2]), int(last[3]),
                                      int(last[8]))
                    pending = reader.submit(fetch, after)
                for (_ts, topic, partition, offset, key64, value, encoded, headers, line,
                     batched) in page:
                    if stop.is_set() or deliveries.failed or deliveries.faulted:
                        break
                    topic, partition, offset = str(topic), int(partition), int(offset)
                    key, raw, kept = decode_message(key64, value, encoded, headers)
                    if int(batched):  # a line alone: the batch's key is its first event's
                        key = _line_key(raw)
                    source = SourceRef(topic, partition, offset, int(line))
                    if topic not in partitions:
                        partitions[topic] = set(producer.partitions_for(topic) or ())
                    future = producer.send(
                        topic, value=raw, key=key, headers=with_origin(kept, source),
                        partition=partition if partition in partitions[topic] else None)
                    deliveries.handed += 1
                    future.add_errback(lambda exc, where=str(source):
                                       deliveries.error(where, exc))
                    bar.advance()
                if on_page is not None:
                    on_page(bar.done)
                if deliveries.failed or deliveries.faulted or len(page) < PAGE_ROWS:
                    break
            stopped = stop.is_set()
    except KafkaError as exc:  # raised by send itself: that message was not handed
        deliveries.fault("producer", exc)
    finally:
        reader.shutdown(wait=True, cancel_futures=True)
        bar.close()
        try:
            producer.flush(FLUSH_TIMEOUT_S)
        except KafkaError as exc:  # close() then fails what did not complete
            deliveries.fault("flush", exc)
        finally:
            producer.close(timeout=10)
    return stopped

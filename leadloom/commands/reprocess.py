"""``leadloom replay reprocess``: rebuild every derived table into a shadow database, report
the differences against live, and on request swap the shadow in.

Steps (each printed as it starts):

1. **Source**: the raw topics (:class:`~leadloom.commands.replay_sources.KafkaSource`,
   start offsets found by timestamp) or the raw archive (``ArchiveSource``), the whole fair
   or ``[since, until)`` by Kafka timestamp.
2. **Shadow**: the database ``<live>__shadow`` (or ``--into``) is dropped and created by
   the migrations, and the operator's reference data (currency rates, the previous season)
   copied from live; then the raw messages run through the stream stages offline
   (:class:`streams.replay.Rebuild`) in replay order, their rows inserted in blocks; then
   the surge alerts decided on the rebuilt store (as ``leadloom run`` does at the end of a
   stream) and the intelligence snapshots refreshed.
3. **Differences** (:mod:`leadloom.commands.reprocess_diff`): per table and per metric.
4. **Swap** (``--swap``, :mod:`leadloom.commands.reprocess_swap`): only for a whole-fair
   rebuild from Kafka with the pipeline stopped.

Writes go to the store directly: the embedded store has one writer, so while ``leadloom
run`` owns it the command refuses (stop it first; on a server DSN it runs alongside).
Ctrl-C (or SIGTERM) while building drops the half-built shadow: nothing is left half-done.
The run is audited (``replay_audit``).
"""

from __future__ import annotations

import resource
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from clickhouse_connect.driver.client import Client

from core.migrations import load_migrations, migrate
from core.reads import StoreError
from core.settings import Settings
from core.snapshots import refresh as refresh_snapshots
from core.store import INSERT_SETTINGS, Store
from infra.clickhouse import MIGRATIONS_DIR
from leadloom.commands.progress_bar import ProgressBar
from leadloom.commands.replay_sources import ArchiveSource, KafkaSource
from schemas.registry import (
    CURRENCY_RATES,
    LEAD_CONTRIBUTIONS,
    RAW_TOPICS,
    SEASON_BASELINE,
    SURGE_ALERTS_TABLE,
)
from streams.replay import Rebuild, replay_order
from streams.surges import SurgeDecider, candidates_sql, parse_candidates

Progress = Callable[[str], None]
BATCH = 5_000  # messages per process_batch call
FLUSH_ROWS = 100_000  # rows buffered (all tables) before they are inserted
SHADOW_SUFFIX = "__shadow"
REFERENCE_TABLES = (CURRENCY_RATES.name, SEASON_BASELINE.name)


class ReprocessError(RuntimeError):
    """A refused or failed rebuild (one line: why, and what to do)."""


@dataclass(frozen=True)
class Request:
    source: str  # "kafka" | "archive"
    since: datetime | None
    until: datetime | None
    into: str | None
    swap: bool
    dry_run: bool

    def whole_fair(self) -> bool:
        return self.since is None and self.until is None


def shadow_name(settings: Settings, into: str | None) -> str:
    name = into or settings.clickhouse_database + SHADOW_SUFFIX
    if name == settings.clickhouse_database:
        raise ReprocessError("--into names the live database: a rebuild never writes there")
    if not name.replace("_", "").isalnum():
        raise ReprocessError(f"--into {name!r}: letters, digits and '_' only")
    return name


def open_store(settings: Settings) -> Store:
    """The live store, opened by this process (pending migrations applied)."""
    try:
        return Store(settings, migrations=load_migrations(MIGRATIONS_DIR))
    except StoreError:
        if not settings.embedded:
            raise
        raise ReprocessError(
            f"the embedded store in {settings.data_dir} is owned by a running 'leadloom run'"
            " (it has one writer): stop leadloom run first; nothing was changed") from None


def plan(settings: Settings, store: Store, request: Request) -> tuple[Any, dict]:
    """The source opened, and what the rebuild would read and write (the dry run's report)."""
    source: KafkaSource | ArchiveSource
    if request.source == "kafka":
        source = KafkaSource(settings, request.since, request.until)
    else:
        source = ArchiveSource(store.query, settings.clickhouse_database, settings,
                               request.since, request.until)
    return source, {
        "source": source.name,
        "since": request.since.isoformat() if request.since else None,
        "until": request.until.isoformat() if request.until else None,
        "live_database": settings.clickhouse_database,
        "shadow_database": shadow_name(settings, request.into),
        "messages_at_most": source.total(),
        "partitions": source.ranges(),
    }


def build_shadow(settings: Settings, store: Store, source: Any, shadow: str,
                 progress: Progress) -> tuple[dict, dict[str, dict[str, object]]]:
    """Create ``shadow`` and fill it from ``source`` (module docstring, step 2); the
    figures of the build and the stream state it ends with (``Rebuild.stream_state``). On
    any exception (Ctrl-C included) the shadow is dropped."""
    client = store.client
    live = settings.clickhouse_database
    started = time.monotonic()
    client.command(f"DROP DATABASE IF EXISTS {shadow} SYNC")
    try:
        migrate(client, shadow, load_migrations(MIGRATIONS_DIR), settings.clickhouse_cluster)
        for table in REFERENCE_TABLES:
            client.command(f"TRUNCATE TABLE {shadow}.{table}")
            client.command(f"INSERT INTO {shadow}.{table} SELECT * FROM {live}.{table}")
        figures, state = _rebuild(settings, client, source, shadow, progress)
        began = time.monotonic()
        figures["surge_alerts"] = _decide_surges(store, client, shadow)
        figures["snapshots_s"] = round(sum(refresh_snapshots(
            client, shadow, cluster=settings.clickhouse_cluster).values()), 2)
        figures["finish_s"] = round(time.monotonic() - began, 2)
    except BaseException:
        progress(f"dropping the unfinished shadow database {shadow}")
        client.command(f"DROP DATABASE IF EXISTS {shadow} SYNC")
        raise
    figures["elapsed_s"] = round(time.monotonic() - started, 2)
    figures["events_per_s"] = round(figures["messages"] / max(figures["elapsed_s"], 1e-9))
    # ru_maxrss is KiB on Linux; with the embedded engine it includes the engine's memory
    figures["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return figures, state


def _rebuild(settings: Settings, client: Client, source: Any, shadow: str,
             progress: Progress) -> tuple[dict, dict[str, dict[str, object]]]:
    topics = settings.topics
    rebuild = Rebuild(topics, {topics.name(s): s.value_schema for s in RAW_TOPICS},
                      settings.max_message_bytes, LEAD_CONTRIBUTIONS.partitions,
                      datetime.now(UTC))
    pending: dict[str, list[bytes]] = defaultdict(list)
    buffered = 0
    insert_s = 0.0
    bar = ProgressBar("reprocess", source.total())
    progress(f"rebuilding from {source.name}: up to {source.total():,} messages")
    ordered = replay_order(source.partition_streams())
    try:
        while batch := [t.message for t in islice(ordered, BATCH)]:
            for table, rows in rebuild.feed(batch).items():
                pending[table].extend(rows)
                buffered += len(rows)
            bar.advance(len(batch))
            if buffered >= FLUSH_ROWS:
                insert_s += _insert(client, shadow, pending)
                pending, buffered = defaultdict(list), 0
        for table, rows in rebuild.finish().items():
            pending[table].extend(rows)
        insert_s += _insert(client, shadow, pending)
    finally:
        bar.close()
        source.close()
    counts = rebuild.counts
    return ({"messages": counts.messages, "dead_letters": counts.dead_letters,
             "rows": dict(sorted(counts.rows.items())), "insert_s": round(insert_s, 2)},
            rebuild.stream_state())


def _insert(client: Client, database: str, pending: dict[str, list[bytes]]) -> float:
    began = time.monotonic()
    for table, rows in pending.items():
        for start in range(0, len(rows), FLUSH_ROWS):
            client.raw_insert(f"{database}.{table}", column_names=None,
                              insert_block=b"\n".join(rows[start:start + FLUSH_ROWS]),
                              fmt="JSONEachRow", settings=INSERT_SETTINGS)
    return time.monotonic() - began


def _decide_surges(store: Store, client: Client, shadow: str) -> int:
    """The surge alerts of the rebuilt stream, decided as at the end of a stream."""
    import orjson

    decider = SurgeDecider()
    alerts = decider.decide(parse_candidates(store.query(candidates_sql(shadow))),
                            datetime.now(UTC), flush=True)
    if alerts:
        client.raw_insert(f"{shadow}.{SURGE_ALERTS_TABLE.name}", column_names=None,
                          insert_block=b"\n".join(orjson.dumps(a) for a in alerts),
                          fmt="JSONEachRow", settings=INSERT_SETTINGS)
    return len(alerts)


def run_reprocess(settings: Settings, request: Request, progress: Progress,
                  confirm: Callable[[dict], bool] | None = None) -> dict:
    """The command (module docstring): plan, build, compare, swap on request. ``confirm``
    is asked before the swap (None: no confirmation needed). The report as a dict."""
    from leadloom.commands.audit import Result, audited
    from leadloom.commands.reprocess_diff import differences
    from schemas.registry import OpsCommand

    params = {"source": request.source, "since": request.since, "until": request.until,
              "into": request.into, "swap": request.swap}
    with audited(settings, OpsCommand.REPLAY_REPROCESS.value, params,
                 request.dry_run) as audit:
        if request.swap and (request.source != "kafka" or not request.whole_fair()):
            audit.result = Result.REFUSED
            raise ReprocessError("--swap needs a whole-fair rebuild from Kafka (no --since/"
                                 "--until, --source kafka): a partial rebuild is a check")
        store = open_store(settings)
        try:
            source, report = plan(settings, store, request)
            audit.counts["messages_at_most"] = report["messages_at_most"]
            if request.dry_run:
                source.close()
                progress(f"dry run: would rebuild {report['shadow_database']} from"
                         f" {report['source']} (up to {report['messages_at_most']:,} messages)")
                return {**report, "dry_run": True}
            shadow = report["shadow_database"]
            report["build"], state = build_shadow(settings, store, source, shadow, progress)
            audit.counts["messages"] = report["build"]["messages"]
            progress(f"rebuilt {shadow}: {report['build']['messages']:,} messages in"
                     f" {report['build']['elapsed_s']} s; comparing with live")
            report["diff"] = differences(store.query, settings.clickhouse_database, shadow)
            audit.counts["differences"] = report["diff"]["differences"]
            report["swapped"] = False
            if request.swap:
                from leadloom.commands.reprocess_swap import swap

                if confirm is not None and not confirm(report):
                    audit.result = Result.REFUSED
                    audit.detail = "swap declined"
                    return report
                report["swap"] = swap(settings, store, shadow, report["partitions"], state,
                                      progress)
                report["swapped"] = True
            return report
        finally:
            store.close()

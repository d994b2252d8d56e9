"""Every panel of every dashboard, as Grafana would send it, on the real embedded engine.

A simulated fair day built by the project's own row builders (``fair_day_rows``), a
previous season imported, the pipeline's own metrics of the last hour (rows of
``pipeline_metrics`` as its contract defines them: the table keeps 30 days, so they are
recent), the snapshots refreshed; then for each of the 20 dashboards: its variables take
the value Grafana would start with, each panel's ``rawSql`` from the JSON model is expanded
(``dashboards.macros``) over the fair day's span (ops: the last hour, its default range) and
run through the store owner's ClickHouse HTTP interface with clickhouse-connect's http client,
logged in as the user of the dashboard's Grafana org (organizer, ops, the delegation: its
filters, ``readonly=1`` and the pre-check), and its answer must have the panel's
shape (time series: a time column and numeric values; tables: the declared columns) and at
least one row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import clickhouse_connect
import orjson
import pytest

from core.owner import QueryServer
from core.reads import QueryResult
from core.settings import Settings
from core.store import Store
from core.users import Users
from dashboards.build import WALL_UID, BuiltDashboard, build_all
from dashboards.macros import TimeRange
from dashboards.ops import NO_RUN, OPS_COMMANDS, OPS_UID, RESULTS
from dashboards.panel_sql import run_panels, shape_problems, variable_values
from leadloom.commands.audit import Audit, Result
from leadloom.commands.deadletters_retry import LetterKey, retry_row
from schemas.reference import CLUSTERS
from schemas.registry import (
    DEAD_LETTER_RETRIES,
    DEAD_LETTER_TABLE,
    EVENT_TABLES,
    PIPELINE_METRICS,
    RAW_TOPICS,
    REPLAY_AUDIT,
    SCANS,
    SEASON_BASELINE,
    SINK_TOPICS,
    Metric,
    MetricSource,
    RetryOutcome,
    TopicNames,
    worker_source,
)
from schemas.scope import OPS_SCOPE, ORGANIZER_SCOPE, delegation_scope
from streams.rows import SourceRef
from tests.factories.rows import DayRows, fair_day_rows
from tests.factories.stores import open_store

pytestmark = pytest.mark.integration

EVENTS = 20_000  # enough that every cluster has scans, leads, matches and a funnel
SEED = 3
METRICS_EVERY = timedelta(seconds=5)  # about the sink's metrics interval
NAMESPACE = "leadloom"


def _ts(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


def metric_rows(start: datetime, end: datetime) -> list[bytes]:
    """``pipeline_metrics`` rows of a running pipeline between ``start`` and ``end``, one
    flush interval every 30 s, as the table's contract defines them (source, metric, topic,
    consumer group, partition, value, interval): two workers' consumed events per raw
    topic, the resolver's merges, the sink's batches and end-to-end latency, and the lag
    sampler's samples per group, topic and partition."""
    topics = TopicNames(NAMESPACE)
    rows: list[dict[str, object]] = []
    at, i = start, 0
    while at <= end:
        def add(source: str, metric: str, value: float, topic: str = "", group: str = "",
                partition: int = -1, interval: float = METRICS_EVERY.total_seconds(),
                at: datetime = at) -> None:
            rows.append({"at": _ts(at), "source": source, "metric": metric, "topic": topic,
                         "consumer_group": group, "partition": partition, "value": value,
                         "interval_s": interval})

        for w in range(2):
            for n, spec in enumerate(RAW_TOPICS):
                add(worker_source(w), Metric.EVENTS_CONSUMED, float(200 + 37 * n + (i * 13) % 50),
                    topics.name(spec))
        add(worker_source(0), Metric.RESOLVER_MERGES, float(i % 4))
        for n, table in enumerate(("scans", "buyer_events", "dead_letters")):
            add(MetricSource.SINK, Metric.SINK_BATCH_MS, 8.0 + n + (i % 5), table, interval=0)
        add(MetricSource.SINK, Metric.E2E_LATENCY_P50_MS, 180.0 + i % 40)
        add(MetricSource.SINK, Metric.E2E_LATENCY_P99_MS, 450.0 + i % 90)
        for group, specs in ((f"{NAMESPACE}-streams", RAW_TOPICS), (f"{NAMESPACE}-sink",
                                                                     SINK_TOPICS)):
            for spec in specs[:2]:
                for partition in range(spec.partitions):
                    add(MetricSource.LAG_SAMPLER, Metric.CONSUMER_LAG,
                        float((i * 7 + partition) % 120), topics.name(spec), group, partition,
                        interval=0)
        at, i = at + METRICS_EVERY, i + 1
    return [orjson.dumps(r) for r in rows]


@pytest.fixture(scope="module")
def day() -> DayRows:
    return fair_day_rows(events=EVENTS, seed=SEED)


@pytest.fixture(scope="module")
def span(day: DayRows) -> TimeRange:
    """The fair day's span: its first to its last event (event time)."""
    times = [_parse(r["occurred_at"]) for t in EVENT_TABLES for r in day.decoded(t.name)]
    return TimeRange(min(times), max(times), interval_s=60)


@pytest.fixture(scope="module")
def recent() -> TimeRange:
    """The ops dashboard's default range: the last hour, 5 s interval."""
    now = datetime.now(UTC).replace(microsecond=0)
    return TimeRange(now - timedelta(hours=1), now, interval_s=5)


def _spread(letters: list[dict], over: TimeRange) -> list[bytes]:
    step = (over.end - over.start) / max(len(letters), 1)
    return [orjson.dumps({**r, "failed_at": _ts(over.start + step * n)})
            for n, r in enumerate(letters)]


RETRIED = 40  # dead letters given retries; one in four of them retried for good


def _key(letter: dict) -> LetterKey:
    return LetterKey(SourceRef(letter["origin_topic"], letter["origin_partition"],
                               letter["origin_offset"]), letter["raw_sha256"])


def retry_rows(letters: list[bytes]) -> list[bytes]:
    """``dead_letter_retries`` rows as ``deadletters retry`` writes them (its row builder),
    for the first :data:`RETRIED` dead letters in turn: republished after the failure (the
    pipeline took it: retried), republished before the failure (failed again: still dead),
    still invalid, no retry at all."""
    out = []
    for n, raw in enumerate(letters[:RETRIED]):
        letter = orjson.loads(raw)
        failed = _parse(letter["failed_at"])
        if n % 4 in (0, 1):
            at = failed + timedelta(minutes=1 if n % 4 == 0 else -1)
            out.append(retry_row(_key(letter), at, "audit-1", RetryOutcome.REPUBLISHED,
                                 published_to=f"{letter['origin_topic']}[0]@{n}"))
        elif n % 4 == 2:
            out.append(retry_row(_key(letter), failed + timedelta(minutes=1), "audit-1",
                                 RetryOutcome.STILL_INVALID, "unknown_booth: booth 'X'"))
    return [orjson.dumps(r) for r in out]


def audit_runs(recent: TimeRange) -> list[Audit]:
    """``replay_audit`` runs (the audit's own row builder): one per known command and
    result in turn, started a minute apart in the last hour, every other one a dry run; a
    rebuild that began before the range and ended inside it (in the range: it overlaps);
    one that ended before the range (not in it)."""
    runs = []
    for n, (command, result) in enumerate((c, r) for c in OPS_COMMANDS for r in RESULTS):
        run = Audit(command, {"n": n}, dry_run=n % 2 == 1,
                    started_at=recent.end - timedelta(minutes=20 + n))
        run.result, run.detail = result, f"run {n}"
        run.counts.update(sent=n, failed=n % 3)
        runs.append(run)
    runs.append(Audit("replay reprocess", {}, False,
                      started_at=recent.start - timedelta(minutes=30), detail="long rebuild"))
    runs.append(Audit("replay republish", {}, False,
                      started_at=recent.start - timedelta(hours=2), detail="too old"))
    return runs


def audit_rows(runs: list[Audit], recent: TimeRange) -> list[bytes]:
    """Each run's row, finished three seconds after it began, except the long rebuild
    (ten minutes into the range) and the old run (an hour before the range); every row
    delivered twice (at-least-once: the panels read FINAL)."""
    rows = []
    for run in runs:
        finished = (recent.start + timedelta(minutes=10) if run.detail == "long rebuild"
                    else run.started_at + timedelta(seconds=3))
        rows.append(orjson.dumps(run.row(finished)))
    return rows + rows


@pytest.fixture(scope="module")
def store(day: DayRows, span: TimeRange, recent: TimeRange,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    store = open_store(Settings(data_dir=tmp_path_factory.mktemp("dashboards"), http_port=0))
    rows = dict(day.rows)
    # The builders stamp every dead letter with one fixed "now" after the day; in a running
    # fair messages fail while it runs: every other one during the fair day (the wall), the
    # rest in the last hour (the ops view).
    letters = day.decoded(DEAD_LETTER_TABLE.name)
    rows[DEAD_LETTER_TABLE.name] = _spread(letters[::2], span) + _spread(letters[1::2], recent)
    rows[DEAD_LETTER_RETRIES.name] = retry_rows(rows[DEAD_LETTER_TABLE.name])
    places = sorted({(r["pavilion_id"], r["cluster_id"]) for r in day.decoded(SCANS.name)})
    rows[SEASON_BASELINE.name] = [orjson.dumps(
        {"season": "CIFW-2025-AW", "pavilion_id": p, "cluster_id": c,
         "professional_buyers": 5 + n % 9, "source": "test"}) for n, (p, c) in enumerate(places)]
    rows[PIPELINE_METRICS.name] = metric_rows(recent.start, recent.end)
    rows[REPLAY_AUDIT.name] = audit_rows(audit_runs(recent), recent)
    try:
        for table, table_rows in rows.items():
            store.insert_json_rows(table, table_rows)
        store.refresh_snapshots()
        yield store
    finally:
        store.close()


@pytest.fixture(scope="module")
def built(store: Store) -> list[BuiltDashboard]:
    return build_all(store.settings)


PASSWORD = "grafana-org-password"


@pytest.fixture(scope="module")
def interface(store: Store) -> Iterator[int]:
    """The store owner's ClickHouse HTTP interface, with the users Grafana's data sources
    log in as (one per org: organizer, ops, delegation_<cluster>); yields its port."""
    users = Users().add(ORGANIZER_SCOPE.name, ORGANIZER_SCOPE, PASSWORD).add(
        OPS_SCOPE.name, OPS_SCOPE, PASSWORD)
    for cluster in CLUSTERS:
        scope = delegation_scope(cluster.id)
        users = users.add(scope.name, scope, PASSWORD)
    users.save(store.settings.data_dir / "users.json")
    server = QueryServer(store, store.settings)
    server.start()
    assert server.interface is not None
    try:
        yield server.interface.port
    finally:
        server.stop()


def through_interface(port: int, built: BuiltDashboard) -> Callable[[str], QueryResult]:
    """A query as the dashboard's Grafana data source sends it: clickhouse-connect's http
    client, logged in as the user of the dashboard's org."""
    scope = (ORGANIZER_SCOPE if built.file.uid == WALL_UID else OPS_SCOPE
             if built.file.uid == OPS_UID else delegation_scope(str(built.file.cluster_id)))
    client = clickhouse_connect.get_client(host="127.0.0.1", port=port, username=scope.name,
                                           password=PASSWORD, database=NAMESPACE)

    def query(sql: str) -> QueryResult:
        result = client.query(sql)
        return QueryResult(list(result.column_names), [list(r) for r in result.result_rows])

    return query


def test_the_build_has_the_wall_ops_and_every_delegation(built: list[BuiltDashboard]) -> None:
    uids = [b.file.uid for b in built]
    assert uids[:2] == ["leadloom-wall", "leadloom-ops"]
    assert uids[2:] == [f"leadloom-delegation-{c.id}" for c in CLUSTERS]


def test_the_fair_variable_starts_on_the_stored_fair(built: list[BuiltDashboard], store: Store,
                                                     span: TimeRange, day: DayRows) -> None:
    fair = day.decoded(SCANS.name)[0]["fair_id"]
    assert variable_values(built[0], store.query, span) == {"fair": fair}
    cluster = CLUSTERS[3].id
    assert variable_values(built[2 + 3], store.query, span) == {"fair": fair,
                                                                "cluster": cluster}


@pytest.mark.parametrize("index", range(2 + len(CLUSTERS)),
                         ids=["wall", "ops"] + [c.id for c in CLUSTERS])
def test_every_panel_answers_with_its_shape(index: int, built: list[BuiltDashboard],
                                            interface: int, span: TimeRange,
                                            recent: TimeRange) -> None:
    # through the HTTP interface as the dashboard's org user: the filters, readonly=1
    # and the pre-check a Grafana data source meets
    query = through_interface(interface, built[index])
    runs = run_panels(built[index], query, recent if index == 1 else span)
    assert len(runs) == len(built[index].spec.panels)
    problems = [p for run in runs for p in shape_problems(run)]
    assert problems == []


def test_a_delegation_sees_only_its_cluster(built: list[BuiltDashboard], store: Store,
                                            span: TimeRange, day: DayRows) -> None:
    keqiao = next(b for b in built if b.file.cluster_id == "keqiao")
    runs = {r.spec.id: r for r in run_panels(keqiao, store.query, span)}
    booths = {r["booth_id"] for r in day.decoded(SCANS.name) if r["cluster_id"] == "keqiao"}
    traffic = runs[5].result.rows  # traffic per booth and hour
    assert {row[1] for row in traffic} <= booths
    scanned = {r["badge_id"] for r in day.decoded(SCANS.name) if r["cluster_id"] == "keqiao"}
    assert sum(row[2] for row in traffic) >= len(scanned)  # every visitor in some hour
    assert runs[1].result.rows[0][0] > 0


def test_the_walls_ranking_and_counts_match_the_stored_rows(
        built: list[BuiltDashboard], store: Store, span: TimeRange, day: DayRows) -> None:
    runs = {r.spec.id: r for r in run_panels(built[0], store.query, span)}
    leads = runs[8].result.rows  # leads per cluster, ranked
    assert [row[1] for row in leads] == sorted((row[1] for row in leads), reverse=True)
    assert runs[5].result.rows[0][0] == len(day.rows[DEAD_LETTER_TABLE.name][::2])
    per_minute = runs[6].result.rows
    assert sum(row[1] for row in per_minute) == runs[2].result.rows[0][0]  # scans agree


def test_ops_rates_and_lag_follow_the_metrics_contract(
        built: list[BuiltDashboard], store: Store, recent: TimeRange) -> None:
    runs = {r.spec.id: r for r in run_panels(built[1], store.query, recent)}
    intervals = int((recent.end - recent.start) / METRICS_EVERY) + 1
    registrations = TopicNames(NAMESPACE).name(RAW_TOPICS[0])
    # one 5 s interval per bucket: two workers' counts over the bucket's 5 seconds
    rates = [row[2] for row in runs[1].result.rows if row[1] == registrations]
    assert rates == [2 * (200 + (i * 13) % 50) / 5 for i in range(intervals)]
    last = intervals - 1  # the newest sample of each partition is the one shown
    lag = {(row[0], row[1], row[2]): row[3] for row in runs[4].result.rows}
    assert lag[(f"{NAMESPACE}-sink", registrations.replace("raw.registrations",
                                                           SINK_TOPICS[0].suffix), 3)] == (
        (last * 7 + 3) % 120)
    merges = runs[7].result.rows  # per minute: a 5 s bucket's merges times 12
    assert [row[1] for row in merges] == [(i % 4) * 12 for i in range(intervals)]


def test_ops_retried_and_still_dead_follow_the_retries(
        built: list[BuiltDashboard], store: Store, recent: TimeRange, day: DayRows) -> None:
    runs = {r.spec.id: r for r in run_panels(built[1], store.query, recent)}
    letters = [orjson.loads(r) for r in day.rows[DEAD_LETTER_TABLE.name]]
    assert len({_key(d) for d in letters}) == len(letters)  # each its own dead letter
    retried = len(range(0, RETRIED, 4))  # republished after the failure only
    assert runs[8].result.rows == [[retried]]
    # failed again after its republish, still invalid, never retried, the rest: still dead
    assert runs[9].result.rows == [[len(letters) - retried]]


def test_ops_command_runs_by_result_and_the_latest_runs(
        built: list[BuiltDashboard], store: Store, recent: TimeRange) -> None:
    runs = {r.spec.id: r for r in run_panels(built[1], store.query, recent)}
    # every known command once per result; the rebuild begun before the range is in it
    # (it overlaps), the run that ended an hour before the range is not; twice-delivered
    # rows count once
    expected = {c: [1 + (c == "replay reprocess" and r == Result.OK) for r in RESULTS]
                for c in OPS_COMMANDS}
    assert {row[0]: list(row[1:]) for row in runs[10].result.rows} == expected
    latest = runs[11].result.rows
    audits = audit_runs(recent)
    in_range = sorted(audits[:-1], key=lambda a: a.started_at, reverse=True)
    assert [row[1] for row in latest] == [a.command for a in in_range]
    assert [row[5] for row in latest] == [a.detail for a in in_range]
    first = in_range[0]  # the newest: run 0, ok, not a dry run, sent 0, failed 0
    assert latest[0][3:5] == ["", Result.OK] and latest[0][6] == "sent 0, failed 0"
    assert first.detail == "run 0"
    assert [row[3] for row in latest[:2]] == ["", "dry run"]
    assert NO_RUN not in [row[5] for row in latest]


def test_ops_command_panels_on_a_range_without_runs(
        built: list[BuiltDashboard], store: Store, recent: TimeRange) -> None:
    # a day before the fixture's runs: zeros per known command, one placeholder row
    quiet = TimeRange(recent.start - timedelta(days=1), recent.end - timedelta(days=1),
                      interval_s=5)
    runs = {r.spec.id: r for r in run_panels(built[1], store.query, quiet)}
    assert runs[10].result.rows == [[c, 0, 0, 0, 0] for c in sorted(OPS_COMMANDS)]
    assert runs[11].result.rows == [[None, "", "", "", "", NO_RUN, ""]]

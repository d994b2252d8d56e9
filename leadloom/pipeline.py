"""The pipeline as one supervised unit: stream workers (child processes) + sink (this process).

This process owns the store: it holds the embedded engine's lock, applies migrations
(all pending ones at its start; the pending ``online`` ones while running too, checked
every :data:`MIGRATION_CHECK_S` from the migrations folder, so a deployed migration such as
017 lands without a restart: ``core.migrations``), serves read queries to ``leadloom sql``
and runs the sink, the surge watcher, the snapshot refresher and the lag sampler
(``streams.lag_sampler``: consumer lag of the workers' and the sink's groups into
``pipeline_metrics`` every 5 s). Workers are
``leadloom worker`` child processes; one that dies is restarted, and because Faust
commits offsets only after its output is flushed, a restarted worker resumes from the
last durable point without loss (the writes it repeats are idempotent).

Outages of Kafka or the store never stop the pipeline: the sink retries inside (see
``streams.sink``); a worker that dies in one (a Faust worker exits when it cannot reach
a broker) is restarted with a growing delay (1 s doubling to 15 s while it keeps dying
within a minute of its start), so a minutes-long outage neither spins nor is given up
on; ``wait_idle`` counts an unreachable broker as "not idle yet". Each outage is
reported once through ``progress`` when it starts and when it ends.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from kafka.errors import KafkaError

from core.kafka import KafkaUnavailable, LagReader, bootstrap_list, ensure_topics
from core.migrations import load_migrations
from core.owner import QueryServer
from core.settings import Settings, settings_env
from core.snapshots import SnapshotRefresher, threads_beside_the_stream
from core.store import Store
from infra.clickhouse import MIGRATIONS_DIR
from schemas.registry import RAW_TOPICS
from streams.lag_sampler import LagSampler
from streams.metrics import WORKER_INDEX_ENV
from streams.sink import Sink, describe_error
from streams.surges import QUIET_S, SurgeWatcher

log = logging.getLogger(__name__)

RESTART_FIRST_S = 1.0  # delay before restarting a worker that died soon after its start
RESTART_MAX_S = 15.0
STABLE_AFTER_S = 60.0  # a worker that ran this long before dying is restarted at once
MIGRATION_CHECK_S = 30.0  # how often a running owner applies pending online migrations


class Pipeline:
    def __init__(
        self, settings: Settings, workers: int = 1, progress: Callable[[str], None] | None = None,
        migrations_dir: Path = MIGRATIONS_DIR, migration_check_s: float = MIGRATION_CHECK_S,
    ) -> None:
        """``migrations_dir``: where the migrations are read, at the start and again at each
        check for online ones (every ``migration_check_s``)."""
        self.settings = settings
        self.migrations_dir = migrations_dir
        self.migration_check_s = migration_check_s
        self.migrations_applied_running: list[int] = []  # online, while running
        self.workers = workers
        self.progress = progress or (lambda _msg: None)
        self.store: Store | None = None
        self.server: QueryServer | None = None
        self.sink: Sink | None = None
        self.surges: SurgeWatcher | None = None
        self.snapshots: SnapshotRefresher | None = None
        self.lag_sampler: LagSampler | None = None
        self.processes: list[subprocess.Popen[bytes] | None] = [None] * workers
        self.restarts = 0
        self.sink_restarts = 0
        # The last unexpected error of the sink (a bug, not an outage: the sink rides those
        # out itself). The supervisor restarts the sink; wait_idle reports it.
        self.failure: BaseException | None = None
        self._started_at: list[float] = [0.0] * workers
        self._restart_at: list[float | None] = [None] * workers
        self._quick_deaths: list[int] = [0] * workers
        self._reported: dict[str, str] = {}  # outage kind -> what was reported
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self.log_dir = settings.data_dir / "logs"
        # lag readings (wait_idle polls every 0.5 s) on clients kept open between them
        self._lag_reader: LagReader | None = None
        self._lag_lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        created = ensure_topics(self.settings)
        if created:
            self.progress(f"created {len(created)} topics in namespace {self.settings.namespace}")
        self.store = Store(self.settings, migrations=load_migrations(self.migrations_dir),
                           migrations_source=lambda: load_migrations(self.migrations_dir))
        self.server = QueryServer(self.store, self.settings)
        self.server.start()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for index in range(self.workers):
            self.processes[index] = self._spawn_worker(index)
        self.sink = Sink(self.settings, self.store)
        self._start_thread("sink", self._run_sink)
        surges = self.surges = SurgeWatcher(self.settings, self.store.query)
        self._start_thread("surge-watcher",
                           lambda: surges.run(self._stopping, self._stream_quiet))
        # Embedded, the engine shares this machine with the stream: refreshes leave it a CPU.
        store, threads = self.store, \
            threads_beside_the_stream() if self.settings.embedded else None
        snapshots = self.snapshots = SnapshotRefresher(
            lambda: store.refresh_snapshots(max_threads=threads),
            store.snapshot_inputs_signature)
        self._start_thread("snapshot-refresher", lambda: snapshots.run(self._stopping))
        sampler = self.lag_sampler = LagSampler(self.settings, self.consumer_groups(),
                                                self.store.insert_json_rows)
        self._start_thread("lag-sampler", lambda: sampler.run(self._stopping))
        self._start_thread("worker-supervisor", self._supervise)
        self._start_thread("migrations", self._apply_online_migrations)
        self.progress(f"pipeline running: {self.workers} stream worker(s) + sink")

    def stop(self) -> None:
        self._stopping.set()
        for proc in self.processes:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.processes:
            if proc is not None:
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if self.sink is not None:
            self.sink.stop()
        for thread in self._threads:
            thread.join(timeout=30)
        with self._lag_lock:
            self._close_lag_reader()
        if self.snapshots is not None:
            try:  # readers after the stop (leadloom sql) see everything stored
                self.snapshots.refresh_if_changed()
            except Exception:  # noqa: BLE001 - the next owner refreshes at its start
                log.warning("final snapshot refresh failed", exc_info=True)
        if self.surges is not None:
            self.surges.close()
        if self.server is not None:
            self.server.stop()
        if self.store is not None:
            self.store.close()
        for pid_file in self.log_dir.glob("worker-*.pid"):
            pid_file.unlink(missing_ok=True)

    def run_forever(self) -> None:
        """Run until SIGINT/SIGTERM (``leadloom run``); never exits on an outage.

        A broker that is unreachable at the start is waited for; outages while running are
        reported when they start and end, and ridden out (workers restarted, the sink
        retrying); an unexpected sink error is reported and the sink restarted.
        """
        done = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: done.set())
        _quiet_client_connection_logs(self.settings)
        if not self._wait_for_broker(done):
            return
        self.start()
        reported_failure: BaseException | None = None
        try:
            while not done.wait(1.0):
                self._report_sink_faults()
                if self.failure is not None and self.failure is not reported_failure:
                    reported_failure = self.failure
                    self.progress(f"the sink failed ({self.failure}); restarting it")
        finally:
            self.progress("stopping pipeline")
            self.stop()

    def _wait_for_broker(self, done: threading.Event) -> bool:
        """Create the namespace's topics, waiting while no broker answers; False if ``done``
        is set first."""
        delay = 1.0
        while True:
            try:
                _require_broker(self.settings)
                ensure_topics(self.settings)
                self._report("Kafka", None)
                return not done.is_set()
            except (KafkaUnavailable, KafkaError, OSError) as exc:
                self._report("Kafka", f"Kafka unreachable ({describe_error(exc)}); waiting")
            if done.wait(delay):
                return False
            delay = min(delay * 2, RESTART_MAX_S)

    # -- progress --------------------------------------------------------------------
    # raw topics (validate), identity + contributions (resolver, leads), derived (sink)
    STAGES = 3

    def stage_topics(self, stage: int) -> tuple[str, list[str]]:
        """(consumer group, topics) of a stage; stages count from upstream."""
        topics, s = self.settings.topics, self.settings
        if stage == 0:
            return s.faust_app_id, [topics.name(t) for t in RAW_TOPICS]
        if stage == 1:
            return s.faust_app_id, [topics.identity_records, topics.lead_contributions,
                                    topics.match_requests]
        return s.sink_group, topics.sink()

    def consumer_groups(self) -> dict[str, list[str]]:
        """Every consumer group of the pipeline and the topics it consumes (what the lag
        sampler reads)."""
        groups: dict[str, list[str]] = {}
        for stage in range(self.STAGES):
            group, topics = self.stage_topics(stage)
            groups.setdefault(group, []).extend(topics)
        return groups

    def stage_lag(self, stage: int) -> int:
        """Messages a stage has not committed yet; stages count from upstream.

        Read on clients kept open between readings (connecting an admin client and a
        consumer for each reading cost the broker a fifth of a core at wait_idle's pace);
        after an error they are closed, and the next reading connects afresh."""
        group, topics = self.stage_topics(stage)
        with self._lag_lock:
            if self._lag_reader is None:
                self._lag_reader = LagReader(self.settings)
            try:
                return sum(self._lag_reader.partition_lags(group, topics).values())
            except BaseException:
                self._close_lag_reader()
                raise

    def _close_lag_reader(self) -> None:
        reader, self._lag_reader = self._lag_reader, None
        if reader is not None:
            try:
                reader.close()
            except Exception:  # noqa: BLE001 - a broken client: nothing more to read on it
                log.debug("closing the lag reader failed", exc_info=True)

    def lag(self) -> tuple[int, int]:
        """(messages the workers have not committed, messages the sink has not committed)."""
        return self.stage_lag(0) + self.stage_lag(1), self.stage_lag(2)

    def wait_idle(self, timeout_s: float, on_tick: Callable[[int, int], None] | None = None
                  ) -> bool:
        """Wait until everything published so far is processed and stored.

        Each stage commits its input offsets only after its output is flushed, so once a
        stage's lag is zero, a zero lag of the next stage measured *afterwards* means its
        output is processed too; checked in order, the last zero means all is stored.
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.failure is not None:
                raise RuntimeError(f"the sink failed: {self.failure}") from self.failure
            self._report_sink_faults()
            lags: list[int] = []
            try:
                _require_broker(self.settings)
                for stage in range(self.STAGES):
                    lags.append(self.stage_lag(stage))
                    if lags[-1]:
                        break
            except (KafkaUnavailable, KafkaError, OSError) as exc:
                # An unreachable broker: not idle yet. Keep polling until the timeout.
                self._report("reading lag",
                             f"cannot read lag ({describe_error(exc)}); still waiting")
                time.sleep(1.0)
                continue
            self._report("reading lag", None)
            if len(lags) == self.STAGES and lags[-1] == 0:
                return True
            if on_tick:
                workers = sum(lags[:self.STAGES - 1])
                on_tick(workers, lags[-1] if len(lags) == self.STAGES else -1)
            time.sleep(0.5)
        return False

    def refresh_views(self) -> float:
        """Bring every lead intelligence snapshot up to what is stored now; seconds taken."""
        assert self.snapshots is not None
        return self.snapshots.refresh_now()

    def check_surges(self) -> int:
        """Judge every window now (end of stream) and publish the surges due; the count."""
        assert self.surges is not None
        return self.surges.check(flush=True)

    def _stream_quiet(self) -> bool:
        """No rows stored for QUIET_S: the fair's last windows will not fill any further."""
        last = self.sink.stats.last_flush_at if self.sink is not None else 0.0
        return bool(last) and time.time() - last > QUIET_S

    def worker_pids(self) -> list[int]:
        return [p.pid for p in self.processes if p is not None and p.poll() is None]

    # -- internals -------------------------------------------------------------------
    def _spawn_worker(self, index: int) -> subprocess.Popen[bytes]:
        env = {**os.environ, **settings_env(self.settings), WORKER_INDEX_ENV: str(index)}
        log_file = open(self.log_dir / f"worker-{index}.log", "ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "leadloom.cli", "worker"],
            env=env, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
            preexec_fn=_terminate_with_parent,
        )
        log_file.close()
        (self.log_dir / f"worker-{index}.pid").write_text(str(proc.pid))
        self._started_at[index] = time.monotonic()
        return proc

    def _run_sink(self) -> None:
        """Run the sink until stopped; restart it (new consumer, resuming from the committed
        offsets, which is safe: everything below them is stored) if it ever raises."""
        delay = RESTART_FIRST_S
        while not self._stopping.is_set():
            assert self.sink is not None
            try:
                self.sink.run()
                if self.sink.stopped:
                    return
            except Exception as exc:  # a bug, not an outage: reported, and restarted
                log.exception("sink failed; restarting it in %.0fs", delay)
                self.failure = exc
            if self._stopping.wait(delay) or self.store is None:
                return
            delay = min(delay * 2, RESTART_MAX_S)
            self.sink_restarts += 1
            self.sink = Sink(self.settings, self.store)

    def _apply_online_migrations(self) -> None:
        """Every ``migration_check_s``, apply the pending online migrations of the
        migrations folder (a deploy that added one needs no restart); a failure is logged and
        tried again at the next check."""
        while not self._stopping.wait(self.migration_check_s):
            assert self.store is not None
            try:
                applied = self.store.apply_online_migrations()
            except Exception as exc:  # noqa: BLE001 - the next check tries again
                log.warning("applying pending migrations failed (%s)", describe_error(exc))
                continue
            if applied:
                self.migrations_applied_running += applied
                self.progress(f"applied migration(s) {', '.join(map(str, applied))} while"
                              " running")

    def _supervise(self) -> None:
        """Restart workers that exit: at once after a long run, else after a growing delay
        (a worker dies within seconds while the broker is down: no spinning, no giving up)."""
        while not self._stopping.wait(0.5):
            now = time.monotonic()
            for index, proc in enumerate(self.processes):
                if self._stopping.is_set():
                    return
                if proc is not None and proc.poll() is None:
                    continue
                if proc is not None and self._restart_at[index] is None:
                    lived = now - self._started_at[index]
                    quick = lived < STABLE_AFTER_S
                    self._quick_deaths[index] = self._quick_deaths[index] + 1 if quick else 0
                    delay = 0.0 if not quick else min(
                        RESTART_FIRST_S * 2 ** (self._quick_deaths[index] - 1), RESTART_MAX_S)
                    self._restart_at[index] = now + delay
                    log.warning("worker %d (pid %d) exited with %s after %.0fs; restarting in"
                                " %.0fs", index, proc.pid, proc.returncode, lived, delay)
                    self.progress(f"worker {index} exited ({proc.returncode}) after {lived:.0f}s;"
                                  f" restarting in {delay:.0f}s")
                restart_at = self._restart_at[index]
                if restart_at is None or now < restart_at:
                    continue
                try:
                    self.processes[index] = self._spawn_worker(index)
                except OSError as exc:  # e.g. out of processes: try again later
                    log.warning("starting worker %d failed (%s); trying again", index, exc)
                    self._restart_at[index] = now + RESTART_MAX_S
                    continue
                self._restart_at[index] = None
                self.restarts += 1

    def _report_sink_faults(self) -> None:
        """Report the sink's faults (Kafka, offset commits, the store) when they start and
        when they end."""
        sink = self.sink
        faults = dict(sink.faults) if sink is not None else {}
        kinds = {k[len("sink: "):] for k in self._reported if k.startswith("sink: ")}
        for what in kinds | set(faults):
            fault = faults.get(what)
            self._report(f"sink: {what}",
                         f"sink: {what} failing ({fault}); retrying" if fault else None)

    def _report(self, kind: str, message: str | None) -> None:
        """Say ``message`` once while an outage of ``kind`` lasts, and say when it ended."""
        if message is not None:
            if kind not in self._reported:
                self._reported[kind] = message
                log.info("%s", message)  # the sink logs its own faults as warnings
                self.progress(message)
        elif kind in self._reported:
            del self._reported[kind]
            log.info("%s: recovered", kind)
            self.progress(f"{kind}: recovered")

    def _start_thread(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)


# kafka-python loggers that log every failed reconnect (several lines a second per client
# while a broker is down); the sink and the supervisor report an outage themselves.
_CLIENT_CONNECTION_LOGGERS = ("kafka.net", "kafka.cluster", "kafka.coordinator")


def _quiet_client_connection_logs(settings: Settings) -> None:
    """Leave the client's connection lines out unless LEADLOOM_LOG_LEVEL asks for detail."""
    if logging.getLevelName(settings.log_level.upper()) in (logging.DEBUG, logging.INFO):
        return
    for name in _CLIENT_CONNECTION_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _require_broker(settings: Settings) -> None:
    """Raise ``ConnectionRefusedError`` at once when no bootstrap server accepts a
    connection: the admin client and lag queries would block for many seconds."""
    if not _bootstrap_answers(settings):
        raise ConnectionRefusedError(
            f"no broker accepts connections at {settings.kafka_bootstrap}")


def _bootstrap_answers(settings: Settings, timeout_s: float = 1.0) -> bool:
    """Whether any bootstrap server accepts a TCP connection (a broker's client port opens
    only once it serves requests)."""
    for server in bootstrap_list(settings):
        host, _, port = server.rpartition(":")
        try:
            with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)),
                                          timeout=timeout_s):
                return True
        except (OSError, ValueError):
            continue
    return False


def _terminate_with_parent() -> None:
    """In the child: get SIGTERM when the supervisor dies, so no worker is left behind."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:  # not Linux: the supervisor's own shutdown still stops workers
        pass


_PR_SET_PDEATHSIG = 1


def peak_rss_mb(pid: int) -> float | None:
    """Peak resident memory of a live process (VmHWM), in MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None

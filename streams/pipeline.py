"""The pipeline as one supervised unit: stream workers (child processes) + sink (this process).

This process owns the store: it holds the embedded engine's lock, applies migrations,
serves read queries to ``leadloom sql`` and runs the sink. Workers are
``leadloom worker`` child processes; one that dies is restarted, and because Faust
commits offsets only after its output is flushed, a restarted worker resumes from the
last durable point without loss (the writes it repeats are idempotent).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from leadloom.kafka import consumer_lag, ensure_topics
from leadloom.settings import Settings, settings_env
from leadloom.store import QueryServer, Store
from schemas.registry import RAW_TOPICS
from streams.sink import Sink

log = logging.getLogger(__name__)


class Pipeline:
    def __init__(
        self, settings: Settings, workers: int = 1, progress: Callable[[str], None] | None = None
    ) -> None:
        self.settings = settings
        self.workers = workers
        self.progress = progress or (lambda _msg: None)
        self.store: Store | None = None
        self.server: QueryServer | None = None
        self.sink: Sink | None = None
        self.processes: list[subprocess.Popen[bytes] | None] = [None] * workers
        self.restarts = 0
        self.failure: BaseException | None = None  # why the sink stopped, if it did
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self.log_dir = settings.data_dir / "logs"

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        created = ensure_topics(self.settings)
        if created:
            self.progress(f"created {len(created)} topics in namespace {self.settings.namespace}")
        self.store = Store(self.settings)
        self.server = QueryServer(self.store, self.settings)
        self.server.start()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for index in range(self.workers):
            self.processes[index] = self._spawn_worker(index)
        self.sink = Sink(self.settings, self.store)
        self._start_thread("sink", self._run_sink)
        self._start_thread("worker-supervisor", self._supervise)
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
        if self.server is not None:
            self.server.stop()
        if self.store is not None:
            self.store.close()
        for pid_file in self.log_dir.glob("worker-*.pid"):
            pid_file.unlink(missing_ok=True)

    def run_forever(self) -> None:
        """Run until SIGINT/SIGTERM (``leadloom run``)."""
        done = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: done.set())
        self.start()
        try:
            while not done.wait(1.0):
                if self.failure is not None:
                    raise RuntimeError(f"the sink stopped: {self.failure}") from self.failure
        finally:
            self.progress("stopping pipeline")
            self.stop()

    # -- progress --------------------------------------------------------------------
    # raw topics (validate), identity + contributions (resolver, leads), derived (sink)
    STAGES = 3

    def stage_lag(self, stage: int) -> int:
        """Messages a stage has not committed yet; stages count from upstream."""
        topics, s = self.settings.topics, self.settings
        if stage == 0:
            return consumer_lag(s, s.faust_app_id, [topics.name(t) for t in RAW_TOPICS])
        if stage == 1:
            return consumer_lag(s, s.faust_app_id,
                                [topics.identity_records, topics.lead_contributions])
        return consumer_lag(s, s.sink_group, topics.sink())

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
                raise RuntimeError(f"the sink stopped: {self.failure}") from self.failure
            lags: list[int] = []
            for stage in range(self.STAGES):
                lags.append(self.stage_lag(stage))
                if lags[-1]:
                    break
            if len(lags) == self.STAGES and lags[-1] == 0:
                return True
            if on_tick:
                workers = sum(lags[:self.STAGES - 1])
                on_tick(workers, lags[-1] if len(lags) == self.STAGES else -1)
            time.sleep(0.5)
        return False

    def worker_pids(self) -> list[int]:
        return [p.pid for p in self.processes if p is not None and p.poll() is None]

    # -- internals -------------------------------------------------------------------
    def _spawn_worker(self, index: int) -> subprocess.Popen[bytes]:
        env = {**os.environ, **settings_env(self.settings)}
        log_file = open(self.log_dir / f"worker-{index}.log", "ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "leadloom.cli", "worker"],
            env=env, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
            preexec_fn=_terminate_with_parent,
        )
        log_file.close()
        (self.log_dir / f"worker-{index}.pid").write_text(str(proc.pid))
        return proc

    def _run_sink(self) -> None:
        assert self.sink is not None
        try:
            self.sink.run()
        except Exception as exc:  # surfaced by run_forever / wait_idle
            log.exception("sink failed")
            self.failure = exc

    def _supervise(self) -> None:
        while not self._stopping.wait(0.5):
            for index, proc in enumerate(self.processes):
                if proc is not None and proc.poll() is not None and not self._stopping.is_set():
                    log.warning("worker %d (pid %d) exited with %s; restarting",
                                index, proc.pid, proc.returncode)
                    self.progress(f"worker {index} exited ({proc.returncode}); restarting")
                    self.restarts += 1
                    self.processes[index] = self._spawn_worker(index)

    def _start_thread(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)


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

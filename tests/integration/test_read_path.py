"""Reads of the store, on the real embedded engine: read-only, one statement, time-limited,
beside the sink's inserts, and honest about an owner that does not answer (issue 7).

Each test starts the owner's ``Store`` and ``QueryServer`` (ClickHouse's HTTP interface, on
any free port) on its own data directory (no broker needed) and reads as another process
does, through ``read_query``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from core import queries as q
from core.owner import QueryServer, read_query
from core.reads import StoreError, StoreLocked
from core.settings import Settings
from core.store import Store
from tests.factories.stores import open_store

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SLOW_READ = "SELECT sum(number) FROM numbers_mt(1000000000000)"  # minutes of CPU unbounded
LIMIT_S = 2.0


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lead_row(n: int) -> bytes:
    return orjson.dumps({
        "cluster_id": "keqiao", "minute": "2026-03-26 02:15:00", "source_topic": "t",
        "source_partition": n, "scans": 3, "inquiries": 0, "procurement_steps": 0,
        "distinct_badges": 2, "version": 5, "updated_at": "2026-03-26 02:15:00",
    })


@pytest.fixture
def owner(tmp_path: Path) -> Iterator[Store]:
    """The owner process's side: the store (2 s read limit) and its query endpoint."""
    settings = Settings(data_dir=tmp_path / "data", namespace="readpath", http_port=0)
    store = open_store(settings, read_time_limit_s=LIMIT_S)
    server = QueryServer(store, settings)
    server.start()
    try:
        yield store
    finally:
        server.stop()
        store.close()


def snapshot(store: Store) -> tuple:
    db = store.database
    return (store.query(f"SHOW TABLES FROM {db}").rows,
            store.query(f"SELECT count() FROM {db}.leads_minute_parts").rows)


HOSTILE = {
    # one statement at a time: the second never runs after the first
    "select then create": ("SELECT 1; CREATE TABLE {db}.evil (x UInt8) ENGINE = Memory",
                           "one statement at a time"),
    "select then insert": ("SELECT 1; INSERT INTO {db}.leads_minute_parts"
                           " SELECT * FROM {db}.leads_minute_parts", "one statement at a time"),
    "select then alter": ("SELECT 1; ALTER TABLE {db}.leads_minute_parts DELETE WHERE 1",
                          "one statement at a time"),
    "select then drop": ("SELECT 1; DROP TABLE {db}.leads_minute_parts",
                         "one statement at a time"),
    # not reads
    "insert select": ("INSERT INTO {db}.leads_minute_parts SELECT * FROM {db}.leads_minute_parts",
                      "only read queries"),
    "create": ("CREATE TABLE {db}.evil (x UInt8) ENGINE = Memory", "only read queries"),
    "alter": ("ALTER TABLE {db}.leads_minute_parts DELETE WHERE 1", "only read queries"),
    "drop": ("DROP TABLE {db}.leads_minute_parts", "only read queries"),
    "kill": ("KILL QUERY WHERE 1", "only read queries"),
    "set": ("SET readonly = 0", "only read queries"),
    # table functions: the engine's readonly=1 refuses them
    "file passwd": ("SELECT * FROM file('/etc/passwd', 'LineAsString')", "read-only"),
    "file shadow": ("SELECT count() FROM file('/etc/shadow', 'LineAsString')", "read-only"),
    "url": ("SELECT * FROM url('http://127.0.0.1:{port}/x', 'LineAsString')", "read-only"),
    "s3": ("SELECT * FROM s3('http://127.0.0.1:{port}/bucket/key', 'LineAsString')",
           "read-only"),
    "remote": ("SELECT * FROM remote('127.0.0.1:{port}', system.one)", "read-only"),
    "python objects": ("SELECT * FROM python(store)", "read-only"),
    # what readonly=1 leaves open in the embedded engine
    "merge": ("SELECT count() FROM merge('{db}', '^leads')", "serves no table function merge()"),
    "mergeTreeIndex": ("SELECT * FROM mergeTreeIndex('{db}', 'leads_minute_parts')",
                       "serves no table function mergetreeindex()"),
    "view": ("SELECT * FROM view(SELECT 1)", "serves no table function view()"),
    "system.parts": ("SELECT sum(rows) FROM system.parts", "grant SELECT ON system.parts"),
    "file function": ("SELECT file('/etc/passwd')", "file() reads files"),
    "describe file": ("DESCRIBE file('/etc/passwd', 'CSVWithNames')",
                      "describing a table function"),
    "into outfile": ("SELECT 1 INTO OUTFILE '{out}'", "no INTO OUTFILE"),
    # setting overrides
    "readonly override": ("SELECT 1 SETTINGS readonly = 0", "Cannot modify 'readonly'"),
    "limit override": ("SELECT 1 SETTINGS max_execution_time = 1000",
                       "Cannot modify 'max_execution_time'"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_query_is_refused_at_once_and_changes_nothing(
    owner: Store, tmp_path: Path, name: str
) -> None:
    owner.insert_json_rows("leads_minute_parts", [lead_row(0), lead_row(1)])
    before = snapshot(owner)
    out = tmp_path / "out.txt"
    template, reason = HOSTILE[name]
    sql = template.format(db=owner.database, port=closed_port(), out=out)

    started = time.monotonic()
    with pytest.raises(StoreError) as refused:
        read_query(owner.settings, sql)
    message = str(refused.value)

    assert reason in message and "\n" not in message
    assert "root:" not in message  # nothing of /etc/passwd or /etc/shadow comes back
    assert time.monotonic() - started < 1.5  # url/s3/remote once held the store for minutes
    assert snapshot(owner) == before
    assert not out.exists()


def test_reads_of_every_served_kind_still_work(owner: Store) -> None:
    db, settings = owner.database, owner.settings
    owner.insert_json_rows("leads_minute_parts", [lead_row(0), lead_row(0), lead_row(1)])

    assert read_query(settings, f"SELECT count() FROM {db}.leads_minute_parts FINAL").rows == [[2]]
    assert read_query(settings, f"SELECT cluster_id, sum(scans) FROM {db}."
                                "leads_per_cluster_minute GROUP BY cluster_id").rows == [
        ["keqiao", 6]]
    assert read_query(settings, "WITH 2 AS k SELECT k * 3;  -- a trailing comment").rows == [[6]]
    described = read_query(settings, f"DESCRIBE TABLE {db}.leads_minute_parts")
    assert described.rows[0][:2] == ["cluster_id", "LowCardinality(String)"]
    assert ["leads_minute_parts"] in read_query(settings, f"SHOW TABLES FROM {db}").rows
    assert read_query(settings, f"EXISTS TABLE {db}.scans").rows == [[1]]
    assert read_query(settings, "SELECT count() FROM numbers(10)").rows == [[10]]
    # the owner's own callers read through the same rules
    assert q.run(q.STREAM_LEADS_BY_CLUSTER, owner.query, db)["keqiao"]["scans"] == 6


def test_a_read_over_the_time_limit_is_stopped_and_says_so(owner: Store) -> None:
    started = time.monotonic()
    with pytest.raises(StoreError, match=r"^query exceeded the 2 s limit \(Timeout exceeded"):
        read_query(owner.settings, SLOW_READ)
    assert LIMIT_S <= time.monotonic() - started < LIMIT_S + 2


def test_inserts_complete_at_once_while_slow_reads_run(owner: Store) -> None:
    reads: list[tuple[float, float]] = []

    def slow_read() -> None:
        started = time.monotonic()
        with pytest.raises(StoreError, match="limit"):
            owner.query(SLOW_READ)
        reads.append((started, time.monotonic()))

    readers = [threading.Thread(target=slow_read) for _ in range(2)]
    for reader in readers:
        reader.start()
    time.sleep(0.3)
    inserts = []
    while any(reader.is_alive() for reader in readers):
        started = time.monotonic()
        owner.insert_json_rows("leads_minute_parts", [lead_row(n) for n in range(500)])
        inserts.append((started, time.monotonic()))
        time.sleep(0.05)
    for reader in readers:
        reader.join()

    during = [end - start for start, end in inserts if end < min(e for _, e in reads)]
    assert len(during) >= 5
    assert max(during) < 0.5, f"insert latencies while reading: {during}"


def test_closing_the_store_cancels_a_running_read_at_once(tmp_path: Path) -> None:
    store = open_store(Settings(data_dir=tmp_path, namespace="readclose"), read_time_limit_s=30)
    failure: list[str] = []

    def slow_read() -> None:
        try:
            store.query(SLOW_READ)
        except StoreError as exc:
            failure.append(str(exc))

    reader = threading.Thread(target=slow_read)
    reader.start()
    time.sleep(0.5)
    started = time.monotonic()
    store.close()
    closed_s = time.monotonic() - started
    reader.join(timeout=5)

    assert closed_s < 2
    assert failure and failure[0].startswith("query cancelled: the store is closing")


OWNER = """
import signal, sys, threading, time
from core.settings import Settings
from core.owner import QueryServer
from tests.factories.stores import open_store
settings = Settings(data_dir=sys.argv[1], namespace="readowner", http_port=0)
store = open_store(settings, read_time_limit_s=float(sys.argv[2]))
print("locked", flush=True)
serve_after_s = float(sys.argv[3])  # as leadloom run: the store locked, then served
done = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: done.set())
server = None
if serve_after_s >= 0 and not done.wait(serve_after_s):
    server = QueryServer(store, settings)
    server.start()
    print("ready", flush=True)
while not done.wait(0.2):  # polled as Pipeline.run_forever does: the signal may reach
    pass                   # another thread, and a bare wait() would never wake
if server is not None:
    server.stop()  # the order Pipeline.stop uses
store.close()
"""


def start_owner(data_dir: Path, limit_s: float, serve_after_s: float = 0.0,
                until: str = "ready") -> subprocess.Popen[str]:
    """An owner in a process of its own, as `leadloom run` is: it locks the store, serves
    reads ``serve_after_s`` later (never if negative); returned once it printed ``until``."""
    proc = subprocess.Popen([sys.executable, "-c", OWNER, str(data_dir), str(limit_s),
                             str(serve_after_s)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip() == until:
            return proc
    raise AssertionError(f"the owner exited ({proc.wait()}) before it printed {until!r}")


def stop_owner(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


def test_a_read_waits_for_an_owner_that_is_starting(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, namespace="readowner")
    proc = start_owner(tmp_path, LIMIT_S, serve_after_s=1.5, until="locked")
    try:
        assert not (tmp_path / "store.endpoint").exists()  # locked, not yet serving
        started = time.monotonic()
        assert read_query(settings, "SELECT 41 + 1").rows == [[42]]
        assert time.monotonic() - started < 10
    finally:
        stop_owner(proc)


def test_a_store_locked_by_an_owner_that_never_serves_is_reported(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("core.owner._OWNER_START_S", 1.0)
    settings = Settings(data_dir=tmp_path, namespace="readowner")
    proc = start_owner(tmp_path, LIMIT_S, serve_after_s=-1, until="locked")
    try:
        started = time.monotonic()
        with pytest.raises(StoreLocked, match="owned by another process"):
            read_query(settings, "SELECT 1")
        assert 1.0 <= time.monotonic() - started < 5
    finally:
        stop_owner(proc)


def test_an_owner_that_does_not_answer_is_reported_not_bypassed(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, namespace="readowner")
    proc = start_owner(tmp_path, LIMIT_S)
    try:
        assert read_query(settings, "SELECT 1").rows == [[1]]
        os.kill(proc.pid, signal.SIGSTOP)  # alive, holding the store, answering nothing
        with pytest.raises(StoreError) as silent:
            read_query(settings, "SELECT 1", timeout_s=1.0)
        assert str(silent.value).startswith(
            f"the store's owner (pid {proc.pid}) did not answer within 1 s")
        assert "owned by another process" not in str(silent.value)
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        proc.terminate()
        proc.wait(timeout=20)


def test_a_stale_endpoint_file_opens_the_store_directly(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, namespace="readstale")
    open_store(settings).close()  # a store its owner made, then left without a clean stop
    (tmp_path / "store.endpoint").write_text(f'{{"pid": 1, "port": {closed_port()}}}')
    assert read_query(settings, "SELECT count() FROM leadloom.scans").rows == [[0]]


def test_a_read_never_creates_the_store(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, namespace="readnothing")
    with pytest.raises(StoreError, match="UNKNOWN_DATABASE"):
        read_query(settings, "SELECT count() FROM leadloom.scans")
    with pytest.raises(StoreError, match="UNKNOWN_DATABASE"):  # still not there
        read_query(settings, "SELECT count() FROM leadloom.scans")


# 0.2 s: SIGTERM while the read is still being vetted (before its statement starts: a
# single KILL at close missed it, and the read held the owner's exit); 1 s: while it runs
@pytest.mark.parametrize("after_s", [0.2, 1.0])
def test_an_owner_stops_at_once_on_sigterm_while_a_read_runs(tmp_path: Path,
                                                                after_s: float) -> None:
    settings = Settings(data_dir=tmp_path, namespace="readowner")
    proc = start_owner(tmp_path, 30)
    failure: list[str] = []

    def slow_read() -> None:
        try:
            read_query(settings, SLOW_READ)
        except StoreError as exc:
            failure.append(str(exc))

    reader = threading.Thread(target=slow_read)
    reader.start()
    try:
        time.sleep(after_s)
        started = time.monotonic()
        proc.terminate()
        proc.wait(timeout=10)
        stopped_s = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(timeout=10)

    assert stopped_s < 3, f"the owner took {stopped_s:.1f} s to stop"
    assert failure and ("cancelled" in failure[0] or "hung up" in failure[0]), failure

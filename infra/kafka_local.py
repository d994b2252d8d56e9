"""A local Apache Kafka cluster (KRaft, 1 or 3 combined broker+controller nodes) without Docker.

Jars come from Maven Central into ``kafka.cache_dir`` (:func:`fetch_jars`); brokers run with
the machine's Java 17+, detached, so they outlive the command that started them. State lives
under ``kafka.data_dir / "kafka"``::

    cluster.id                   KRaft cluster id every node's storage is formatted with
    node-<id>/server.properties  rewritten on every start
    node-<id>/storage/           log.dirs
    node-<id>/broker.log         stdout and stderr of the JVM
    node-<id>/broker.pid

A leaf: it imports nothing of the project; the command hands it a :class:`LocalKafka`.
Ports derive from the port P of the first ``bootstrap`` entry: node i (1-based) serves
clients on P + 2(i-1) and its controller on P + 2(i-1) + 1. Every fault a user can fix raises
:class:`InfraError` with a one-line message that says how.
"""

from __future__ import annotations

import base64
import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Progress = Callable[[str], None] | None

FILES = Path(__file__).parent / "kafka"
INSTALL_JAVA = "apt-get install openjdk-17-jre-headless"
INSTALL_MAVEN = "apt-get install maven"
READY_TIMEOUT_S = 60.0
BROKER_JVM = ["-Xms512m", "-Xmx512m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
              "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true"]
# A short-lived tool JVM starts faster without the optimising JIT and with the serial GC.
TOOL_JVM = ["-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]
LOG_ROTATE_BYTES = 20 * 1024 * 1024
WIPE_HINT = "run 'leadloom infra down --wipe'"
FRESH_HINT = "'leadloom infra down --wipe' starts afresh"
STOP_HINT = "'leadloom infra down' stops what started"

# Brokers this process started: kept so down() can reap them instead of leaving zombies.
_children: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class LocalKafka:
    """The few values the local brokers need (the command builds it from its settings)."""

    bootstrap: str  # host:port[,host:port...]; the first entry's port numbers the nodes
    data_dir: Path  # brokers' storage, logs and pid files go under data_dir / "kafka"
    cache_dir: Path  # Maven-resolved jars, shared by every data dir
    version: str  # Apache Kafka release resolved from Maven Central
    max_message_bytes: int  # the brokers' message.max.bytes (and replica fetch size)
    default_partitions: int = 6  # num.partitions; the command passes the registry's count


class InfraError(RuntimeError):
    """A local-infrastructure fault; the message is one line that includes the way out."""


@dataclass(frozen=True)
class Node:
    """One KRaft node of the local cluster and where its files live."""

    node_id: int
    port: int
    controller_port: int
    dir: Path

    @property
    def properties(self) -> Path:
        return self.dir / "server.properties"

    @property
    def storage(self) -> Path:
        return self.dir / "storage"

    @property
    def log(self) -> Path:
        return self.dir / "broker.log"

    @property
    def pid_file(self) -> Path:
        return self.dir / "broker.pid"


# ---- pure parts: ports, properties, process identity ---------------------------------------


def parse_bootstrap(bootstrap: str) -> tuple[str, int]:
    """Host and port of the first ``host:port`` entry of a bootstrap list."""
    host, sep, port = bootstrap.split(",")[0].strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InfraError(
            f"LEADLOOM_KAFKA_BOOTSTRAP={bootstrap!r} is not host:port; set e.g. 127.0.0.1:9092"
        )
    return host, int(port)


def cluster_nodes(root: Path, bootstrap: str, brokers: int) -> list[Node]:
    """The nodes of a ``brokers``-node local cluster under ``root`` (ports from ``bootstrap``)."""
    if brokers not in (1, 3):
        raise InfraError(f"a local cluster has 1 or 3 brokers, not {brokers}; use --brokers 1|3")
    _, port = parse_bootstrap(bootstrap)
    if port + 2 * brokers - 1 > 65535:
        raise InfraError(f"ports {port}..{port + 2 * brokers - 1} do not fit; use a lower port")
    return [
        Node(i, port + 2 * (i - 1), port + 2 * (i - 1) + 1, root / f"node-{i}")
        for i in range(1, brokers + 1)
    ]


def render_properties(node: Node, nodes: Sequence[Node], max_message_bytes: int,
                      default_partitions: int = 6) -> str:
    """``server.properties`` of ``node`` in a cluster of ``nodes`` (1: replication 1, 3: 3/2)."""
    rf, isr = (1, 1) if len(nodes) == 1 else (3, 2)
    voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in nodes)
    sections: list[tuple[str, dict[str, object]]] = [
        (f"KRaft node {node.node_id} of {len(nodes)}: combined broker and controller", {
            "process.roles": "broker,controller",
            "node.id": node.node_id,
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://127.0.0.1:{node.port},"
                         f"CONTROLLER://127.0.0.1:{node.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.port}",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": node.storage,
        }),
        ("Topics are created explicitly from the registry: a typo must not create one", {
            "auto.create.topics.enable": "false",
            "num.partitions": default_partitions,
        }),
        ("Oversized events must reach the stream workers, which dead-letter them", {
            "message.max.bytes": max_message_bytes,
            "replica.fetch.max.bytes": max_message_bytes,
        }),
        ("Replication", {
            "default.replication.factor": rf,
            "min.insync.replicas": isr,
            "offsets.topic.replication.factor": rf,
            "transaction.state.log.replication.factor": rf,
            "transaction.state.log.min.isr": isr,
            "share.coordinator.state.topic.replication.factor": rf,
            "share.coordinator.state.topic.min.isr": isr,
        }),
        ("Fast tests: few internal partitions, no rebalance delay, short sessions allowed", {
            "offsets.topic.num.partitions": 4,
            "transaction.state.log.num.partitions": 4,
            "group.initial.rebalance.delay.ms": 0,
            "group.min.session.timeout.ms": 1000,
        }),
    ]
    if len(nodes) > 1:
        sections.append(("Fault tests: notice a dead broker within seconds", {
            "broker.session.timeout.ms": 3000,
            "broker.heartbeat.interval.ms": 500,
            "replica.lag.time.max.ms": 5000,
        }))
    lines = ["# Generated by 'leadloom infra up' (infra/kafka_local.py); rewritten on each start."]
    for comment, props in sections:
        lines += ["", f"# {comment}"]
        lines += [f"{k}={str(v).replace(chr(92), chr(92) * 2)}" for k, v in props.items()]
    return "\n".join(lines) + "\n"


def read_properties(path: Path) -> dict[str, str]:
    """``key=value`` lines of a simple Java properties file; {} when it is missing."""
    try:
        text = path.read_text()
    except OSError:
        return {}
    pairs = (ln.split("=", 1) for ln in text.splitlines() if "=" in ln and ln[:1] not in "#!")
    return {k.strip(): v.strip() for k, v in pairs}


def new_cluster_id() -> str:
    """A cluster id as ``StorageTool random-uuid`` makes it (base64url of a v4 UUID), no JVM."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):  # Kafka avoids these: they read as command-line flags
            return cid


def is_broker_cmdline(argv: Sequence[str], properties: Path) -> bool:
    """True when ``argv`` is a JVM running ``kafka.Kafka`` with exactly this properties file."""
    if not argv or Path(argv[0]).name != "java":
        return False
    return "kafka.Kafka" in argv and str(properties) in argv


def broker_pid(node: Node) -> int | None:
    """Pid of the node's running broker, or None. A stale pid file (dead pid, or a process that
    is not this node's broker) is removed; a broker whose pid file was lost is found again."""
    try:
        pid: int | None = int(node.pid_file.read_text().strip())
    except (OSError, ValueError):
        pid = None
    if pid and is_broker_cmdline(_cmdline(pid, patient=True), node.properties):
        return pid
    node.pid_file.unlink(missing_ok=True)
    for proc in Path("/proc").glob("[0-9]*"):
        if is_broker_cmdline(_cmdline(int(proc.name)), node.properties):
            node.pid_file.write_text(f"{proc.name}\n")
            return int(proc.name)
    return None


# ---- public interface ----------------------------------------------------------------------


def fetch_jars(kafka: LocalKafka, progress: Progress = None) -> Path:
    """Resolve the Kafka broker jars with Maven into ``cache_dir/kafka-<version>/libs``.

    Idempotent: a complete cache (marker file written after success) is reused without Maven
    or network; a partial one is fetched again. Raises InfraError when java or mvn is missing
    or Maven Central cannot be reached.
    """
    version = kafka.version
    home = kafka.cache_dir.expanduser().resolve() / f"kafka-{version}"
    libs, marker = home / "libs", home / "libs.complete"
    if _complete(libs, marker):
        return libs
    mvn = shutil.which("mvn")
    if not mvn:
        raise InfraError(f"mvn not found: install Maven ({INSTALL_MAVEN}) to fetch Kafka's jars")
    _java()
    with _locked(home / ".lock"):
        if _complete(libs, marker):  # another process fetched them while we waited
            return libs
        _say(progress, f"fetching Kafka {version} jars from Maven Central into {libs}")
        partial = home / "libs.partial"
        for stale in (partial, libs):
            shutil.rmtree(stale, ignore_errors=True)
        shutil.copyfile(FILES / "pom.xml", home / "pom.xml")
        cmd = [mvn, "-B", "-q", "-Dstyle.color=never", "-f", str(home / "pom.xml"),
               "dependency:copy-dependencies", "-DincludeScope=runtime",
               f"-DoutputDirectory={partial}", f"-Dkafka.version={version}"]
        hint = "check access to Maven Central (proxy: ~/.m2/settings.xml) and retry"
        try:
            done = subprocess.run(cmd, cwd=home, capture_output=True, text=True, timeout=900)
        except subprocess.TimeoutExpired as exc:
            raise InfraError(f"mvn took over 15 min to fetch Kafka's jars; {hint}") from exc
        jars = sorted(p.name for p in partial.glob("*.jar"))
        if done.returncode or f"kafka_2.13-{version}.jar" not in jars:
            why = _interesting(done.stdout + done.stderr) or f"exit {done.returncode}"
            raise InfraError(f"mvn could not fetch kafka_2.13:{version} ({why}); {hint}")
        partial.rename(libs)
        marker.write_text("\n".join(jars) + "\n")
        _say(progress, f"{len(jars)} Kafka jars ready in {libs}")
    return libs


def up(kafka: LocalKafka, brokers: int = 1, progress: Progress = None) -> dict[str, Any]:
    """Start the local cluster of ``brokers`` (1 or 3) nodes and wait until all are live.

    Idempotent: nodes already running are left alone (a node whose process runs but whose port
    is not yet open is waited for, not started twice). Returns :func:`status`. Raises
    InfraError for a missing tool, a port taken by another process, storage of another cluster,
    a layout with another broker count, or a broker that is not ready within 60 s.
    """
    host, _ = parse_bootstrap(kafka.bootstrap)
    if host not in ("127.0.0.1", "localhost"):
        raise InfraError(
            f"LEADLOOM_KAFKA_BOOTSTRAP points at {host}; 'leadloom infra up' runs brokers on"
            " 127.0.0.1 only: set it to 127.0.0.1:<port> or start that cluster yourself"
        )
    java = _java()
    libs = fetch_jars(kafka, progress)
    root = _root(kafka)
    nodes = cluster_nodes(root, kafka.bootstrap, brokers)
    started = time.monotonic()
    with _locked(root / ".lock"):
        existing = len(_node_dirs(root))
        if existing and existing != brokers:
            raise InfraError(
                f"{root} holds a {existing}-broker cluster; {WIPE_HINT} before"
                f" 'leadloom infra up --brokers {brokers}'"
            )
        pids = {n.node_id: broker_pid(n) for n in nodes}
        for n in nodes:
            wanted = render_properties(n, nodes, kafka.max_message_bytes, kafka.default_partitions)
            if pids[n.node_id] and n.properties.read_text() != wanted:
                raise InfraError(
                    f"broker {n.node_id} (pid {pids[n.node_id]}) runs with other settings (ports?)"
                    "; run 'leadloom infra down' first"
                )
        to_start = [n for n in nodes if not pids[n.node_id]]
        for n in to_start:
            _check_ports(n, brokers)
        cluster_id = _cluster_id(root, nodes)
        for n in to_start:
            n.storage.mkdir(parents=True, exist_ok=True)
            n.properties.write_text(
                render_properties(n, nodes, kafka.max_message_bytes, kafka.default_partitions)
            )
        _format([n for n in to_start if not (n.storage / "meta.properties").exists()],
                cluster_id, java, libs)
        for n in nodes:
            if pids[n.node_id]:
                _say(progress, f"Kafka broker {n.node_id} already running (pid {pids[n.node_id]})")
        for n in to_start:
            pids[n.node_id] = _launch(n, java, libs)
            _say(progress, f"starting Kafka broker {n.node_id} on 127.0.0.1:{n.port} (log {n.log})")
        _wait_ready(nodes, pids)
    if to_start:
        took = time.monotonic() - started
        noun = "broker" if brokers == 1 else "brokers"
        _say(progress, f"Kafka ready on {_bootstrap(nodes)} ({brokers} {noun}, {took:.1f} s)")
    return status(kafka)


def down(kafka: LocalKafka, timeout_s: float = 30, wipe: bool = False) -> list[int]:
    """Stop the local brokers: SIGTERM (controlled shutdown), SIGKILL after ``timeout_s``.

    Removes the pid files and returns the stopped pids ([] when nothing ran). ``wipe`` then
    deletes ``data_dir/kafka`` (all topics and offsets).
    """
    root = _root(kafka)
    if not root.exists():
        return []
    with _locked(root / ".lock"):
        nodes = _layout(kafka)
        pids = [pid for n in nodes if (pid := broker_pid(n))]
        for pid in pids:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        if not _wait_gone(pids, timeout_s):
            for pid in pids:
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            _wait_gone(pids, 10)
        for n in nodes:
            n.pid_file.unlink(missing_ok=True)
        if wipe:
            shutil.rmtree(root)
    return pids


def status(kafka: LocalKafka) -> dict[str, Any]:
    """Where the local cluster is and whether it runs.

    ``{"bootstrap", "brokers": [{"node_id", "port", "controller_port", "pid", "alive",
    "data_dir", "log"}], "reachable", "topics": {name: partitions}}``; ``alive`` means the
    process runs and its client port answers. Topics (internal ones left out) are listed only
    when the cluster is reachable, else ``{}``. Without a local layout the configured bootstrap
    is probed.
    """
    nodes = _layout(kafka)
    brokers: list[dict[str, Any]] = []
    for n in nodes:
        pid = broker_pid(n)
        brokers.append({
            "node_id": n.node_id, "port": n.port, "controller_port": n.controller_port,
            "pid": pid, "alive": bool(pid) and _answers("127.0.0.1", n.port),
            "data_dir": str(n.dir), "log": str(n.log),
        })
    alive = [n for n, b in zip(nodes, brokers, strict=True) if b["alive"]]
    if nodes:
        topics = _topics(_bootstrap(alive)) if alive else None
    else:
        probe = _answers(*parse_bootstrap(kafka.bootstrap))
        topics = _topics(kafka.bootstrap) if probe else None
    return {
        "bootstrap": _bootstrap(nodes) if nodes else kafka.bootstrap,
        "brokers": brokers,
        "reachable": topics is not None,
        "topics": topics or {},
    }


def is_up(kafka: LocalKafka) -> bool:
    """True when every node of the local layout is alive; without a local layout, when the
    first configured bootstrap address accepts connections."""
    nodes = _layout(kafka)
    if nodes:
        return all(bool(broker_pid(n)) and _answers("127.0.0.1", n.port) for n in nodes)
    return _answers(*parse_bootstrap(kafka.bootstrap))


# ---- helpers -------------------------------------------------------------------------------


def _say(progress: Progress, line: str) -> None:
    if progress is not None:
        progress(line)


def _root(kafka: LocalKafka) -> Path:
    return kafka.data_dir.expanduser().resolve() / "kafka"


def _bootstrap(nodes: Sequence[Node]) -> str:
    return ",".join(f"127.0.0.1:{n.port}" for n in nodes)


def _node_dirs(root: Path) -> list[Path]:
    dirs = [d for d in root.glob("node-*") if d.is_dir() and d.name[5:].isdigit()]
    return sorted(dirs, key=lambda d: int(d.name[5:]))


def _layout(kafka: LocalKafka) -> list[Node]:
    """The nodes that exist on disk, with the ports they were last configured with."""
    nodes = []
    for d in _node_dirs(_root(kafka)):
        # A node without properties never started: nothing to report or stop.
        listeners = read_properties(d / "server.properties").get("listeners", "")
        ports = dict(re.findall(r"(PLAINTEXT|CONTROLLER)://[^,]*:(\d+)", listeners))
        if len(ports) == 2:
            nodes.append(Node(int(d.name[5:]), int(ports["PLAINTEXT"]),
                              int(ports["CONTROLLER"]), d))
    return nodes


def _complete(libs: Path, marker: Path) -> bool:
    try:
        names = marker.read_text().split()
    except OSError:
        return False
    return bool(names) and all((libs / name).is_file() for name in names)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _java() -> str:
    java = shutil.which("java")
    if not java:
        raise InfraError(f"java not found: install a Java 17+ runtime ({INSTALL_JAVA})")
    out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60).stderr
    match = re.search(r'version "(?:1\.)?(\d+)', out)
    if not match or int(match.group(1)) < 17:
        found = match.group(1) if match else "unknown"
        raise InfraError(f"{java} is Java {found}; Kafka needs Java 17+ ({INSTALL_JAVA})")
    return java


def _jvm(libs: Path) -> list[str]:
    return ["-Djava.net.preferIPv4Stack=true",
            f"-Dlog4j2.configurationFile={FILES / 'log4j2.xml'}", "-cp", f"{libs}/*"]


def _cmdline(pid: int, patient: bool = False) -> list[str]:
    raw = b""
    for attempt in range(3 if patient else 1):
        if attempt:
            time.sleep(0.05)
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return []
        # Empty for a zombie, and for a moment while a process execs (e.g. just launched).
        if raw or not _alive(pid):
            break
    return [arg.decode(errors="replace") for arg in raw.split(b"\0") if arg]


def _answers(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        # Like the JVM: a connection left in TIME_WAIT does not block a new listener.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def port_owner(port: int) -> int | None:
    """Pid holding a socket on ``port``, when /proc shows it (other users' fds may be hidden)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with suppress(OSError):
            for row in Path(table).read_text().splitlines()[1:]:
                cols = row.split()
                if int(cols[1].rsplit(":", 1)[1], 16) == port and cols[9] != "0":
                    inodes.add(f"socket:[{cols[9]}]")
    for fd_dir in Path("/proc").glob("[0-9]*/fd") if inodes else ():
        with suppress(OSError):
            if any(os.readlink(fd) in inodes for fd in fd_dir.iterdir()):
                return int(fd_dir.parent.name)
    return None


def _check_ports(node: Node, brokers: int) -> None:
    for port in (node.port, node.controller_port):
        if _port_free(port):
            continue
        owner = port_owner(port)
        name = Path((_cmdline(owner) or ["?"])[0]).name if owner else ""
        who = f" (pid {owner}, {name})" if owner else ""
        base = next((b for b in range(node.port + 10, 65000, 10)
                     if all(_port_free(b + k) for k in range(2 * brokers))), None)
        raise InfraError(
            f"port {port} is in use by another process{who}; stop it or set"
            f" LEADLOOM_KAFKA_BOOTSTRAP=127.0.0.1:{base or '<free port>'}"
        )


def _cluster_id(root: Path, nodes: Sequence[Node]) -> str:
    """The cluster id of this layout (new, or adopted from formatted storage if the file was
    lost); raises when a node's storage was formatted for another cluster."""
    id_file = root / "cluster.id"
    formatted = {n: read_properties(n.storage / "meta.properties").get("cluster.id") for n in nodes}
    cid = id_file.read_text().strip() if id_file.exists() else ""
    if not cid:
        cid = next((c for c in formatted.values() if c), None) or new_cluster_id()
        id_file.write_text(cid + "\n")
    for n, other in formatted.items():
        if other and other != cid:
            raise InfraError(f"storage in {n.storage} belongs to cluster {other}; {WIPE_HINT}")
    return cid


def _format(nodes: Sequence[Node], cluster_id: str, java: str, libs: Path) -> None:
    """Format the storage of fresh nodes in parallel (one short JVM each)."""
    procs = [
        (n, subprocess.Popen(
            [java, *TOOL_JVM, *_jvm(libs), "kafka.tools.StorageTool", "format",
             "-t", cluster_id, "-c", str(n.properties), "--ignore-formatted"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        ))
        for n in nodes
    ]
    for n, proc in procs:
        out, _ = proc.communicate(timeout=120)
        if proc.returncode:
            why = _interesting(out) or f"exit {proc.returncode}"
            raise InfraError(f"formatting {n.storage} failed ({why}); {WIPE_HINT} and retry")


def _launch(node: Node, java: str, libs: Path) -> int:
    """Start the node's broker detached (own session, no stdin, output to broker.log)."""
    cmd = [java, *BROKER_JVM, *_jvm(libs), "kafka.Kafka", str(node.properties)]
    if node.log.exists() and node.log.stat().st_size > LOG_ROTATE_BYTES:
        node.log.replace(node.log.with_name("broker.log.1"))
    with open(node.log, "ab") as log:
        log.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S%z')} leadloom infra up\n".encode())
        log.flush()
        proc = subprocess.Popen(cmd, cwd=node.dir, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    _children[proc.pid] = proc
    node.pid_file.write_text(f"{proc.pid}\n")
    return proc.pid


def _wait_ready(nodes: Sequence[Node], pids: dict[int, int | None]) -> None:
    """Wait for every client port, then for the cluster to report all brokers unfenced."""
    from kafka import KafkaAdminClient  # deferred: 'infra down' should not pay for the import
    from kafka.errors import KafkaError

    deadline = time.monotonic() + READY_TIMEOUT_S
    pending = list(nodes)
    while pending:
        for n in list(pending):
            pid = pids[n.node_id] or 0
            if not _alive(pid):
                n.pid_file.unlink(missing_ok=True)
                raise InfraError(f"Kafka broker {n.node_id} exited while starting: "
                                 f"{_log_tail(n.log)} (see {n.log}; {FRESH_HINT})")
            if _answers("127.0.0.1", n.port):
                pending.remove(n)
        if pending and time.monotonic() > deadline:
            n = pending[0]
            raise InfraError(f"Kafka broker {n.node_id} did not open port {n.port} within "
                             f"{READY_TIMEOUT_S:.0f} s: {_log_tail(n.log)} (see {n.log}; "
                             f"{STOP_HINT})")
        time.sleep(0.2 if pending else 0)
    live = 0
    while True:
        with suppress(KafkaError, OSError):
            admin = KafkaAdminClient(bootstrap_servers=_bootstrap(nodes).split(","),
                                     client_id="leadloom-infra", request_timeout_ms=5000,
                                     bootstrap_timeout_ms=5000)
            try:
                found = admin.describe_cluster().get("brokers", [])
                live = sum(1 for b in found if not b.get("is_fenced"))
            finally:
                admin.close()
        if live >= len(nodes):
            return
        if time.monotonic() > deadline:
            raise InfraError(f"only {live} of {len(nodes)} Kafka brokers joined within "
                             f"{READY_TIMEOUT_S:.0f} s: {_log_tail(nodes[0].log)}"
                             f" (see {nodes[0].log}; {STOP_HINT})")
        time.sleep(0.5)


def _topics(bootstrap: str) -> dict[str, int] | None:
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","),
                                 client_id="leadloom-infra", request_timeout_ms=5000,
                                 bootstrap_timeout_ms=5000)
    except (KafkaError, OSError):
        return None
    try:
        described = admin.describe_topics()
    except (KafkaError, OSError):
        return None
    finally:
        admin.close()
    return {
        t["name"]: len(t["partitions"])
        for t in sorted(described, key=lambda t: t["name"] or "")
        if t["name"] and not t.get("is_internal") and not t["name"].startswith("__")
    }


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (not a zombie); reaps it first when this process started it."""
    child = _children.get(pid)
    if child is not None:
        if child.poll() is None:
            return True
        del _children[pid]
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[:1] != ["Z"]


def _wait_gone(pids: Sequence[int], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while any(_alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _interesting(text: str, count: int = 2) -> str:
    """The last error-looking lines of some output (else its last lines), as one short line."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("---")]
    errors = [ln for ln in lines if re.search(r"ERROR|FATAL|Exception|Error:", ln)]
    return " | ".join((errors or lines)[-count:])[-400:]


def _log_tail(log: Path) -> str:
    try:
        with open(log, "rb") as fh:
            fh.seek(max(0, log.stat().st_size - 65536))
            text = fh.read().decode(errors="replace")
    except OSError:
        return "no broker.log"
    # Only this start's lines: earlier runs may have logged errors that no longer matter.
    return _interesting(text.rsplit("\n--- ", 1)[-1]) or "broker.log is empty"

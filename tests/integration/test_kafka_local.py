"""`leadloom infra` against real brokers: Kafka jars from Maven Central run with local Java.

Nothing here skips: without java or mvn, or with a broker that cannot start, these tests fail
with the InfraError a user would see.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from core.settings import Settings
from infra import kafka_local as kl
from infra.kafka_local import InfraError, LocalKafka
from leadloom.commands.session import local_kafka

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def free_base_port(count: int) -> int:
    """A base port P with P..P+count-1 free; randomised so parallel runs rarely collide."""
    start = 29000 + 10 * random.randrange(200)
    for base in range(start, start + 3000, 10):
        if all(_bindable(base + k) for k in range(count)):
            return base
    raise AssertionError(f"no {count} free ports from {start}")


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def exited_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def create_topic(bootstrap: str, name: str, partitions: int, replicas: int) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","))
    try:
        admin.create_topics([NewTopic(name, partitions, replicas)])
    finally:
        admin.close()


def eventually_listed(settings: LocalKafka, topic: str, timeout_s: float = 15) -> dict:
    """Status once ``topic`` shows up (metadata reaches every broker a moment after creation)."""
    deadline = time.monotonic() + timeout_s
    while True:
        st = kl.status(settings)
        if topic in st["topics"] or time.monotonic() > deadline:
            return st
        time.sleep(0.3)


@pytest.fixture
def local_settings(tmp_path: Path) -> Iterator[Callable[[int], LocalKafka]]:
    """Local-broker values (from the settings) for a fresh layout on free ports; every
    cluster is stopped and wiped after."""
    made: list[LocalKafka] = []

    def make(brokers: int) -> LocalKafka:
        port = free_base_port(2 * brokers)
        settings = local_kafka(Settings(kafka_bootstrap=f"127.0.0.1:{port}",
                                        data_dir=tmp_path / f"data-{len(made)}"))
        made.append(settings)
        return settings

    yield make
    for settings in made:
        kl.down(settings, timeout_s=10, wipe=True)


def test_one_broker_starts_once_survives_stale_pid_files_and_stops(local_settings):
    settings = local_settings(1)
    port = int(settings.bootstrap.rsplit(":", 1)[1])
    node_dir = settings.data_dir / "kafka" / "node-1"
    pid_file = node_dir / "broker.pid"

    st = kl.up(settings)
    [broker] = st["brokers"]
    assert broker["alive"] and broker["port"] == port and broker["controller_port"] == port + 1
    assert broker["data_dir"] == str(node_dir.resolve())
    assert st["bootstrap"] == f"127.0.0.1:{port}" and st["reachable"]
    pid = broker["pid"]
    assert running(pid) and kl.is_up(settings)
    assert (settings.data_dir / "kafka" / "cluster.id").is_file()
    assert (node_dir / "storage" / "meta.properties").is_file()

    started = time.monotonic()
    assert kl.up(settings)["brokers"][0]["pid"] == pid, "a running broker is left alone"
    assert time.monotonic() - started < 10

    create_topic(st["bootstrap"], "probe", 3, 1)
    assert eventually_listed(settings, "probe")["topics"] == {"probe": 3}

    pid_file.write_text(f"{exited_pid()}\n")
    assert kl.status(settings)["brokers"][0]["pid"] == pid, "a lost pid is found again"
    assert pid_file.read_text().strip() == str(pid)

    assert kl.down(settings) == [pid]
    assert not running(pid) and not answers(port) and not pid_file.exists()
    assert not kl.is_up(settings)
    stopped = kl.status(settings)["brokers"][0]
    assert stopped["pid"] is None and not stopped["alive"]
    assert kl.down(settings) == [], "stopping a stopped cluster is fine"

    pid_file.write_text(f"{os.getpid()}\n")  # stale: a live process that is no broker
    st = kl.up(settings)
    restarted = st["brokers"][0]["pid"]
    assert restarted not in (pid, os.getpid()) and st["brokers"][0]["alive"]
    assert eventually_listed(settings, "probe")["topics"] == {"probe": 3}, "data survives"
    assert kl.down(settings) == [restarted]
    assert not running(restarted)


def test_a_port_taken_by_another_process_is_named(local_settings):
    settings = local_settings(1)
    port = int(settings.bootstrap.rsplit(":", 1)[1])
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        with pytest.raises(InfraError) as err:
            kl.up(settings)
    message = str(err.value)
    assert f"port {port} is in use by another process (pid {os.getpid()}" in message
    assert "LEADLOOM_KAFKA_BOOTSTRAP=127.0.0.1:" in message and "\n" not in message
    assert kl.status(settings)["brokers"] == [], "nothing was started or laid out"


def test_a_layout_of_another_cluster_node_or_size_is_refused_until_wiped(local_settings):
    settings = local_settings(1)
    kl.up(settings)
    kl.down(settings)
    root = settings.data_dir / "kafka"

    with pytest.raises(InfraError, match=r"1-broker cluster; run 'leadloom infra down --wipe'"):
        kl.up(settings, brokers=3)

    meta = root / "node-1" / "storage" / "meta.properties"
    kafka_wrote = meta.read_text()
    meta.write_text(kafka_wrote.replace("node.id=1", "node.id=7"))  # storage of another node
    with pytest.raises(InfraError, match="exited while starting") as err:
        kl.up(settings)
    assert "Stored node id 7 doesn't match" in str(err.value), "the broker's reason is quoted"
    assert "broker.log" in str(err.value) and "\n" not in str(err.value)
    assert not kl.is_up(settings)
    meta.write_text(kafka_wrote)

    formatted_for = (root / "cluster.id").read_text().strip()
    (root / "cluster.id").write_text(kl.new_cluster_id() + "\n")
    with pytest.raises(InfraError) as err:
        kl.up(settings)
    assert f"belongs to cluster {formatted_for}" in str(err.value)
    assert "leadloom infra down --wipe" in str(err.value)
    assert not kl.is_up(settings)

    assert kl.down(settings, wipe=True) == []
    assert not root.exists()


def test_three_brokers_form_one_cluster_and_stop_together(local_settings):
    settings = local_settings(3)
    port = int(settings.bootstrap.rsplit(":", 1)[1])

    st = kl.up(settings, brokers=3)
    brokers = st["brokers"]
    assert [b["node_id"] for b in brokers] == [1, 2, 3]
    assert [b["port"] for b in brokers] == [port, port + 2, port + 4]
    assert [b["controller_port"] for b in brokers] == [port + 1, port + 3, port + 5]
    assert all(b["alive"] for b in brokers)
    pids = [b["pid"] for b in brokers]
    assert len(set(pids)) == 3 and kl.is_up(settings)

    create_topic(st["bootstrap"], "replicated", 6, 3)
    assert eventually_listed(settings, "replicated")["topics"] == {"replicated": 6}

    assert sorted(kl.down(settings)) == sorted(pids)
    assert not any(running(pid) for pid in pids)
    assert not any(answers(port + k) for k in range(6))

"""The local Kafka layout without running anything: ports, server.properties, pid files, tools."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

import pytest

from infra import kafka_local as kl
from infra.kafka_local import InfraError, Node, cluster_nodes, render_properties


def parse(text: str) -> dict[str, str]:
    """A Java properties file as Kafka reads it; fails on a comment sharing a line."""
    props = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        assert "#" not in line, f"inline comment would become part of the value: {line}"
        key, _, value = line.partition("=")
        props[key] = value
    return props


def rendered(tmp_path: Path, brokers: int) -> list[dict[str, str]]:
    nodes = cluster_nodes(tmp_path, "127.0.0.1:9092", brokers)
    return [parse(render_properties(n, nodes, 4 * 1024 * 1024)) for n in nodes]


class TestPorts:
    def test_default_bootstrap_gives_client_9092_and_controller_9093(self, tmp_path: Path):
        [node] = cluster_nodes(tmp_path, "127.0.0.1:9092", 1)
        assert (node.node_id, node.port, node.controller_port) == (1, 9092, 9093)
        assert node.dir == tmp_path / "node-1"

    def test_three_nodes_take_consecutive_port_pairs(self, tmp_path: Path):
        nodes = cluster_nodes(tmp_path, "127.0.0.1:9092", 3)
        assert [(n.node_id, n.port, n.controller_port) for n in nodes] == [
            (1, 9092, 9093), (2, 9094, 9095), (3, 9096, 9097)
        ]

    def test_the_first_bootstrap_entry_sets_the_base_port(self, tmp_path: Path):
        nodes = cluster_nodes(tmp_path, " 127.0.0.1:29092 ,127.0.0.1:1", 3)
        assert [n.port for n in nodes] == [29092, 29094, 29096]

    @pytest.mark.parametrize("bootstrap", ["nohost", "127.0.0.1:", ":9092", "h:0", "h:70000"])
    def test_a_bootstrap_that_is_not_host_port_is_refused(self, tmp_path: Path, bootstrap):
        with pytest.raises(InfraError, match="LEADLOOM_KAFKA_BOOTSTRAP"):
            cluster_nodes(tmp_path, bootstrap, 1)

    @pytest.mark.parametrize("brokers", [0, 2, 4])
    def test_a_local_cluster_has_one_or_three_brokers(self, tmp_path: Path, brokers):
        with pytest.raises(InfraError, match="1 or 3"):
            cluster_nodes(tmp_path, "127.0.0.1:9092", brokers)

    def test_ports_past_65535_are_refused(self, tmp_path: Path):
        with pytest.raises(InfraError, match="do not fit"):
            cluster_nodes(tmp_path, "127.0.0.1:65533", 3)


class TestSingleNodeProperties:
    def test_is_a_combined_kraft_node_on_loopback(self, tmp_path: Path):
        [p] = rendered(tmp_path, 1)
        assert p["process.roles"] == "broker,controller"
        assert p["node.id"] == "1"
        assert p["controller.quorum.voters"] == "1@127.0.0.1:9093"
        assert p["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
        assert p["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9092"
        assert p["controller.listener.names"] == "CONTROLLER"
        assert p["inter.broker.listener.name"] == "PLAINTEXT"
        assert p["log.dirs"] == str(tmp_path / "node-1" / "storage")

    def test_replicates_nothing(self, tmp_path: Path):
        [p] = rendered(tmp_path, 1)
        for key in ("default.replication.factor", "min.insync.replicas",
                    "offsets.topic.replication.factor", "transaction.state.log.replication.factor",
                    "transaction.state.log.min.isr",
                    "share.coordinator.state.topic.replication.factor",
                    "share.coordinator.state.topic.min.isr"):
            assert p[key] == "1", key

    def test_is_tuned_for_fast_tests(self, tmp_path: Path):
        [p] = rendered(tmp_path, 1)
        assert p["offsets.topic.num.partitions"] == "4"
        assert p["transaction.state.log.num.partitions"] == "4"
        assert p["group.initial.rebalance.delay.ms"] == "0"
        assert p["group.min.session.timeout.ms"] == "1000"
        assert "broker.session.timeout.ms" not in p

    def test_topics_are_explicit_and_may_carry_4_mib_messages(self, tmp_path: Path):
        [p] = rendered(tmp_path, 1)
        assert p["auto.create.topics.enable"] == "false"
        assert p["num.partitions"] == "6"
        assert p["message.max.bytes"] == str(4 * 1024 * 1024)
        assert int(p["replica.fetch.max.bytes"]) >= int(p["message.max.bytes"])


class TestThreeNodeProperties:
    def test_every_node_has_its_own_listeners_and_the_same_voters(self, tmp_path: Path):
        props = rendered(tmp_path, 3)
        voters = "1@127.0.0.1:9093,2@127.0.0.1:9095,3@127.0.0.1:9097"
        for i, p in enumerate(props):
            port = 9092 + 2 * i
            assert p["node.id"] == str(i + 1)
            assert p["controller.quorum.voters"] == voters
            listeners = f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{port + 1}"
            assert p["listeners"] == listeners
            assert p["advertised.listeners"] == f"PLAINTEXT://127.0.0.1:{port}"
            assert p["log.dirs"] == str(tmp_path / f"node-{i + 1}" / "storage")

    def test_replicates_three_ways_and_acks_need_two(self, tmp_path: Path):
        for p in rendered(tmp_path, 3):
            assert p["default.replication.factor"] == "3"
            assert p["offsets.topic.replication.factor"] == "3"
            assert p["transaction.state.log.replication.factor"] == "3"
            assert p["min.insync.replicas"] == "2"
            assert p["transaction.state.log.min.isr"] == "2"

    def test_notices_a_dead_broker_within_seconds(self, tmp_path: Path):
        for p in rendered(tmp_path, 3):
            assert p["broker.session.timeout.ms"] == "3000"
            assert p["broker.heartbeat.interval.ms"] == "500"
            assert p["replica.lag.time.max.ms"] == "5000"


class TestPidFiles:
    @pytest.fixture
    def node(self, tmp_path: Path) -> Node:
        node = Node(1, 29092, 29093, tmp_path / "node-1")
        node.dir.mkdir()
        return node

    def test_no_pid_file_means_no_broker(self, node: Node):
        assert kl.broker_pid(node) is None

    def test_the_pid_of_an_exited_process_is_stale_and_removed(self, node: Node):
        proc = subprocess.Popen(["true"])
        proc.wait()
        node.pid_file.write_text(f"{proc.pid}\n")
        assert kl.broker_pid(node) is None
        assert not node.pid_file.exists()

    def test_a_live_process_that_is_not_this_broker_is_stale(self, node: Node):
        node.pid_file.write_text(f"{os.getpid()}\n")
        assert kl.broker_pid(node) is None
        assert not node.pid_file.exists()

    def test_a_garbled_pid_file_is_stale(self, node: Node):
        node.pid_file.write_text("not a pid")
        assert kl.broker_pid(node) is None
        assert not node.pid_file.exists()

    def test_only_kafka_on_this_nodes_properties_counts_as_its_broker(self, node: Node):
        props = node.properties
        java = ["/usr/lib/jvm/java-17/bin/java", "-Xmx512m", "-cp", "/libs/*"]
        assert kl.is_broker_cmdline([*java, "kafka.Kafka", str(props)], props)
        assert not kl.is_broker_cmdline([*java, "kafka.Kafka", "server.properties"], props)
        assert not kl.is_broker_cmdline([*java, "kafka.Kafka", "/other/server.properties"], props)
        assert not kl.is_broker_cmdline([*java, "kafka.tools.StorageTool", str(props)], props)
        assert not kl.is_broker_cmdline(["python", "kafka.Kafka", str(props)], props)
        assert not kl.is_broker_cmdline([], props)


def test_cluster_ids_look_like_kafka_uuids():
    for _ in range(200):
        cid = kl.new_cluster_id()
        assert len(cid) == 22 and not cid.startswith("-")
        assert len(base64.urlsafe_b64decode(cid + "==")) == 16


class TestMissingTools:
    @pytest.fixture
    def bare_path(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        empty = tmp_path / "bin"
        empty.mkdir()
        monkeypatch.setenv("PATH", str(empty))

    def settings(self, tmp_path: Path, bootstrap: str = "127.0.0.1:9092") -> kl.LocalKafka:
        return kl.LocalKafka(bootstrap=bootstrap, data_dir=tmp_path / "data",
                             cache_dir=tmp_path / "cache", version="4.1.2",
                             max_message_bytes=4 * 1024 * 1024)

    def test_fetching_without_maven_says_what_to_install(self, tmp_path: Path, bare_path):
        with pytest.raises(InfraError, match="apt-get install maven"):
            kl.fetch_jars(self.settings(tmp_path))

    def test_a_complete_cache_needs_no_maven(self, tmp_path: Path, bare_path):
        settings = self.settings(tmp_path)
        libs = settings.cache_dir / f"kafka-{settings.version}" / "libs"
        libs.mkdir(parents=True)
        (libs / "kafka_2.13.jar").write_bytes(b"jar")
        (libs.parent / "libs.complete").write_text("kafka_2.13.jar\n")
        assert kl.fetch_jars(settings) == libs

    def test_a_partial_download_is_fetched_again(self, tmp_path: Path, bare_path):
        settings = self.settings(tmp_path)
        libs = settings.cache_dir / f"kafka-{settings.version}" / "libs"
        libs.mkdir(parents=True)
        (libs / "kafka_2.13.jar").write_bytes(b"jar")  # no marker: mvn was interrupted
        with pytest.raises(InfraError, match="apt-get install maven"):
            kl.fetch_jars(settings)

    def test_starting_without_java_says_what_to_install(self, tmp_path: Path, bare_path):
        with pytest.raises(InfraError, match="apt-get install openjdk-17-jre-headless"):
            kl.up(self.settings(tmp_path))

    def test_a_remote_bootstrap_is_not_started_locally(self, tmp_path: Path):
        settings = self.settings(tmp_path, bootstrap="kafka.example.com:9092")
        with pytest.raises(InfraError, match="127.0.0.1"):
            kl.up(settings)
        assert not (tmp_path / "data").exists()

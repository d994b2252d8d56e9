"""Shared fixtures: one real Kafka broker per test session, fresh namespaces per test."""

from __future__ import annotations

import itertools
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from core.settings import Settings

_counter = itertools.count(1)


def free_port_pair(start: int = 39092) -> int:
    """An even port P with P and P+1 free (client and controller listeners)."""
    for port in range(start, start + 400, 2):
        ok = True
        for p in (port, port + 1):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
        if ok:
            return port
    raise RuntimeError("no free port pair for the test broker")


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A real single-node Kafka broker for the whole session (started and stopped here)."""
    from infra import kafka_local
    from leadloom.commands.session import local_kafka

    port = free_port_pair()
    settings = Settings(
        kafka_bootstrap=f"127.0.0.1:{port}", data_dir=tmp_path_factory.mktemp("broker")
    )
    kafka_local.up(local_kafka(settings), brokers=1)
    try:
        yield settings
    finally:
        kafka_local.down(local_kafka(settings), wipe=True)


@pytest.fixture
def pipeline_settings(broker: Settings, tmp_path: Path) -> Settings:
    """Settings for one test: its own namespace (topics, groups, app id) and store."""
    namespace = f"t{os.getpid()}-{next(_counter)}"
    return Settings(
        kafka_bootstrap=broker.kafka_bootstrap,
        namespace=namespace,
        data_dir=tmp_path / "data",
        cache_dir=broker.cache_dir,
        http_port=0,  # the store owner's HTTP interface on any free port: tests run side by side
    )


@contextmanager
def running_pipeline(settings: Settings, workers: int = 1) -> Iterator:
    """The pipeline (workers + sink) on the test broker, stopped on the way out."""
    from core.kafka import ensure_topics
    from leadloom.pipeline import Pipeline

    ensure_topics(settings)
    pipe = Pipeline(settings, workers=workers)
    pipe.start()
    try:
        yield pipe
    finally:
        pipe.stop()

"""What demo and bench share: a local broker if none runs, and a pipeline in a fresh
namespace, both stopped again on the way out."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from core.settings import Settings
from infra import kafka_local
from leadloom.pipeline import Pipeline


def local_kafka(settings: Settings) -> kafka_local.LocalKafka:
    """The values the local brokers take from the settings (``infra`` is a leaf)."""
    return kafka_local.LocalKafka(
        bootstrap=settings.kafka_bootstrap, data_dir=settings.data_dir,
        cache_dir=settings.cache_dir, version=settings.kafka_version,
        max_message_bytes=settings.kafka_wire_max_bytes,
    )


@contextmanager
def pipeline_session(
    settings: Settings, label: str, workers: int, progress: Callable[[str], None],
    allow_server_database: bool = False, **overrides: object,
) -> Iterator[Pipeline]:
    """Run a started pipeline in namespace ``<namespace>-<label>-<time>``.

    Starts a local broker if none answers (and stops it afterwards); ``overrides``
    replace further settings of the run (e.g. a data directory of its own).
    """
    started_broker = False
    if not kafka_local.is_up(local_kafka(settings)):
        progress("starting the local Kafka broker")
        kafka_local.up(local_kafka(settings), brokers=1, progress=progress)
        started_broker = True
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    run_settings = settings.model_copy(
        update={"namespace": f"{settings.namespace}-{label}-{stamp}", **overrides}
    )
    pipeline = Pipeline(run_settings, workers=workers, progress=progress)
    try:
        pipeline.start()
        yield pipeline
    finally:
        pipeline.stop()
        if started_broker:
            progress("stopping the local Kafka broker")
            kafka_local.down(local_kafka(settings))

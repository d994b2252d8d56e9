"""What demo and bench share: a local broker if none runs, and a pipeline in a fresh
namespace and a database of its own, both stopped again on the way out.

A run never touches the configured database (``LEADLOOM_CLICKHOUSE_DATABASE``): it writes
into ``<namespace>_<label>_<time>`` (the run's namespace with ``-`` as ``_``, a ClickHouse
identifier), created by its own migrations, and leaves it for ``leadloom sql``. The only
databases it drops are earlier runs' of the same kind (same prefix, a 14-digit time), and
it deletes their topics (:func:`delete_earlier_run_topics`). Against a ClickHouse server
it refuses to start without ``--allow-server-database``: creating databases there is the
server owner's call.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from urllib.parse import urlparse

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import Error as ClickHouseError

from core.kafka import admin
from core.migrations import on_cluster
from core.settings import Settings
from core.store import Store
from infra import kafka_local
from leadloom.pipeline import Pipeline
from schemas.registry import RAW_PARTITIONS

STAMP_FORMAT = "%Y%m%d%H%M%S"  # a run's time in its namespace and database name (UTC)


class ServerDatabaseRefused(RuntimeError):
    """A demo or benchmark was pointed at a ClickHouse server without the explicit flag."""


def local_kafka(settings: Settings) -> kafka_local.LocalKafka:
    """The values the local brokers take from the settings (``infra`` is a leaf)."""
    return kafka_local.LocalKafka(
        bootstrap=settings.kafka_bootstrap, data_dir=settings.data_dir,
        cache_dir=settings.cache_dir, version=settings.kafka_version,
        max_message_bytes=settings.kafka_wire_max_bytes, default_partitions=RAW_PARTITIONS,
    )


def run_database(namespace: str) -> str:
    """The database of a run in ``namespace``: ``leadloom-demo-20261128031500`` ->
    ``leadloom_demo_20261128031500`` (namespaces are ``[a-z][a-z0-9-]*``)."""
    return namespace.replace("-", "_")


def refuse_server_database(settings: Settings, allowed: bool, command: str) -> None:
    """Raise :class:`ServerDatabaseRefused` (one line) if ``settings`` point at a ClickHouse
    server and ``allowed`` (``--allow-server-database``) is not given. The embedded store
    is the user's own machine: always allowed."""
    if settings.embedded or allowed:
        return
    url = urlparse(settings.resolved_dsn)  # host and port only: the DSN may hold a password
    where = f"{url.hostname}:{url.port}" if url.port else str(url.hostname)
    raise ServerDatabaseRefused(
        f"{command} would create a database of its own on the ClickHouse server {where}"
        " (LEADLOOM_CLICKHOUSE_DSN); pass --allow-server-database to allow it"
    )


def drop_earlier_run_databases(client: Client, settings: Settings, label: str, keep: str
                               ) -> list[str]:
    """Drop the databases of earlier ``label`` runs of ``settings.namespace``; return them.

    Only ``<namespace>_<label>_<14 digits>`` names older than ``keep`` (this run's) are
    dropped: a later run's (started meanwhile) and the configured database never are.
    """
    pattern = re.compile(rf"^{re.escape(run_database(f'{settings.namespace}-{label}-'))}\d{{14}}$")
    names = [r[0] for r in client.query("SELECT name FROM system.databases").result_rows]
    earlier = sorted(n for n in names if pattern.match(n) and n < keep
                     and n != settings.clickhouse_database)
    for name in earlier:
        statement = f"DROP DATABASE IF EXISTS {name}"
        client.command(on_cluster(statement, settings.clickhouse_cluster)
                       if settings.clickhouse_cluster else statement)
    return earlier


@contextmanager
def pipeline_session(
    settings: Settings, label: str, workers: int, progress: Callable[[str], None],
    allow_server_database: bool = False, **overrides: object,
) -> Iterator[Pipeline]:
    """Run a started pipeline in namespace ``<namespace>-<label>-<time>`` and database
    ``<namespace>_<label>_<time>`` (``pipeline.settings.clickhouse_database``).

    Refuses a server DSN without ``allow_server_database`` before anything starts. Starts
    a local broker if none answers (and stops it afterwards); drops earlier ``label`` runs'
    databases; ``overrides`` replace further settings of the run (e.g. a data directory of
    its own).
    """
    refuse_server_database(settings, allow_server_database, f"leadloom {label}")
    namespace = f"{settings.namespace}-{label}-{datetime.now(UTC).strftime(STAMP_FORMAT)}"
    run_settings = settings.model_copy(
        update={"namespace": namespace, "clickhouse_database": run_database(namespace),
                **overrides}
    )
    _tidy(run_settings, settings, label, progress)
    started_broker = False
    if not kafka_local.is_up(local_kafka(settings)):
        progress("starting the local Kafka broker")
        kafka_local.up(local_kafka(settings), brokers=1, progress=progress)
        started_broker = True
    pipeline = Pipeline(run_settings, workers=workers, progress=progress)
    try:
        pipeline.start()
        delete_earlier_run_topics(settings, label, keep=namespace)
        progress(f"storing into database {run_settings.clickhouse_database}")
        yield pipeline
    finally:
        pipeline.stop()
        if started_broker:
            progress("stopping the local Kafka broker")
            kafka_local.down(local_kafka(settings))


def earlier_run_topics(topics: Iterable[str], namespace: str, label: str, keep: str
                       ) -> list[str]:
    """The topics of earlier ``label`` runs among ``topics``: those of a namespace
    ``<namespace>-<label>-<14-digit time>`` (its own topics ``<ns>.<name>``, Faust's
    ``<ns>-streams-...``) older than ``keep``, this run's (a later run's never are)."""
    pattern = re.compile(rf"({re.escape(namespace)}-{re.escape(label)}-\d{{14}})[.-]")
    return sorted(t for t in topics
                  if (m := pattern.match(t)) is not None and m.group(1) < keep)


def delete_earlier_run_topics(settings: Settings, label: str, keep: str) -> None:
    """Best effort: earlier runs' topics are of no further use (their databases stay for
    ``leadloom sql`` until the next run), and a broker left with thousands of their
    partitions spends more CPU on every request: in ``leadloom bench`` the broker spent
    48-55 µs per event after about 40 runs on it, 18-19 when fresh."""
    try:
        client = admin(settings)
    except Exception:  # noqa: BLE001 - leftover topics are harmless
        return
    try:
        old = earlier_run_topics(client.list_topics(), settings.namespace, label, keep)
        if old:
            client.delete_topics(old)
    except Exception:  # noqa: BLE001 - leftover topics are harmless
        pass
    finally:
        client.close()


def _tidy(run_settings: Settings, settings: Settings, label: str,
          progress: Callable[[str], None]) -> None:
    """Best effort: earlier runs' databases are of no further use; one that cannot be
    dropped (a server user without the right) stays, and the run goes on."""
    store = Store(run_settings, migrations=())  # the run's store, opened as it is
    try:
        dropped = drop_earlier_run_databases(store.client, settings, label,
                                             keep=run_settings.clickhouse_database)
        if dropped:
            progress(f"dropped {len(dropped)} earlier {label} database(s)")
    except ClickHouseError as exc:
        progress(f"earlier {label} databases left in place: {str(exc).splitlines()[0]}")
    finally:
        store.close()

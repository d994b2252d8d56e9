"""The ops commands' audit (``replay_audit``) and their other ops rows, sent through Kafka.

Every ops command that changes or rebuilds state (replay reprocess and republish,
dead-letter retry, consumer-group reset) runs inside :func:`audited`: one
``replay_audit`` row when it ends, whatever the ending: ``ok``, ``failed`` (an exception,
its one-line reason in ``detail``), ``interrupted`` (Ctrl-C or SIGTERM, which the command
turns into an interrupt) or ``refused`` (the command declined before acting: set
``audit.result``). Dry runs are audited too (``dry_run`` 1).

Rows go to ``<ns>.ops`` (header ``table``) and the sink stores them (``send_ops_rows``), so
a command needs no write access to the store: the embedded store has one writer, its
owner. A row waits in Kafka while no sink runs. Failure mode: ``send_ops_rows`` raises
``KafkaUnavailable`` when the broker does not take the rows within its timeout; the audit
then reports the failure on stderr and the command exits non-zero (an unaudited change
is not a success).
"""

from __future__ import annotations

import getpass
import json
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
from kafka.errors import KafkaError

from core.kafka import KafkaUnavailable, producer
from core.settings import Settings
from schemas.registry import REPLAY_AUDIT, AuditResult
from streams.batch import chunk_rows

SEND_TIMEOUT_S = 30.0


Result = AuditResult  # the commands' short name for it


def send_ops_rows(settings: Settings, table: str, rows: list[dict]) -> None:
    """Send ``rows`` of the ops table ``table`` to ``<ns>.ops`` (newline-joined blocks of
    at most ~900 KB, header ``table``) and wait until the broker has them all."""
    if not rows:
        return
    blocks = chunk_rows([orjson.dumps(row) for row in rows])
    client = producer(settings)
    try:
        futures = [client.send(settings.topics.ops, value=block,
                               headers=[("table", table.encode())]) for block in blocks]
        for future in futures:
            future.get(timeout=SEND_TIMEOUT_S)
    except KafkaError as exc:
        raise KafkaUnavailable(f"could not send {table} rows to {settings.topics.ops}: "
                               f"{type(exc).__name__}") from exc
    finally:
        client.close(timeout=5)


def _ts(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds")


@dataclass
class Audit:
    """One run of an ops command; the command fills ``counts``, ``detail`` and, when it
    declines to act, ``result = Result.REFUSED``."""

    command: str
    params: dict
    dry_run: bool
    audit_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    result: str = Result.OK
    detail: str = ""
    counts: dict[str, int] = field(default_factory=dict)

    def row(self, finished_at: datetime) -> dict:
        return {
            "audit_id": self.audit_id,
            "command": self.command,
            "who": _who(),
            "host": socket.gethostname(),
            "started_at": _ts(self.started_at),
            "finished_at": _ts(finished_at),
            "dry_run": int(self.dry_run),
            "params": json.dumps(self.params, ensure_ascii=False, sort_keys=True, default=str),
            "result": self.result,
            "detail": self.detail[:2000],
            "counts": {k: int(v) for k, v in self.counts.items()},
        }


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container's numeric uid)
        return "uid-unknown"


@contextmanager
def audited(settings: Settings, command: str, params: dict,
            dry_run: bool = False) -> Iterator[Audit]:
    """Run the block as one audited ops command (module docstring); re-raises what the
    block raised after the row is sent."""
    audit = Audit(command, params, dry_run)
    try:
        yield audit
    except KeyboardInterrupt:
        audit.result, audit.detail = Result.INTERRUPTED, audit.detail or "interrupted"
        raise
    except BaseException as exc:
        if audit.result != Result.REFUSED:  # a refusal may raise its one-line reason
            audit.result = Result.FAILED
        audit.detail = audit.detail or (str(exc) or type(exc).__name__).splitlines()[0]
        raise
    finally:
        send_ops_rows(settings, REPLAY_AUDIT.name, [audit.row(datetime.now(UTC))])

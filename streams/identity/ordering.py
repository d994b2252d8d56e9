"""Which identity message the resolver may apply now: strict offset order per partition. Pure.

Buyer ids depend on the order records are applied, so a partition's messages are applied
strictly in offset order. The resolver's log table keeps, per partition, the next offset
to apply (``NEXT_OFFSET_PREFIX<partition>``); it is written with the records each message
applied, so the two are durable together. For each message the ``resolve-buyers`` agent
asks :func:`decide`:

- first message ever (nothing logged, nothing committed): apply; next = offset + 1.
- the expected offset: apply; next = offset + 1.
- below it (a re-read after a crash or a rewind): apply again (re-applying a known record
  changes nothing and re-sends outputs a crash may have lost); next unchanged.
- above it (a hole: Faust dropped a re-read message, see streams/faust_seam.py): apply
  nothing of this partition for the rest of the batch, never ack it, and re-read from the
  expected offset.
- nothing logged although progress was committed (the log table lost its changelog): the
  expected offset is the partition's first one, so the whole identity topic is replayed
  rather than resolving on a partial state.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

NEXT_OFFSET_PREFIX = "@next-offset|"  # log-table key: next identity offset to apply


def next_offset_key(partition: int) -> str:
    """The log-table key of ``partition``'s next offset to apply."""
    return f"{NEXT_OFFSET_PREFIX}{partition}"


class Action(Enum):
    APPLY = "apply"
    HOLE = "hole"  # skip: an earlier offset has not been applied yet; re-read from it
    REPLAY = "replay"  # skip: the log lost committed progress; re-read from the start


@dataclass(frozen=True)
class Decision:
    action: Action
    next_offset: int | None = None  # APPLY: the log's new next offset; None = leave it
    reread_from: int | None = None  # HOLE/REPLAY: the offset to re-read the partition from


def needs_log_start(logged_next: int | None, committed: bool) -> bool:
    """Whether :func:`decide` needs the partition's first offset (ask the broker only then)."""
    return logged_next is None and committed


def decide(offset: int, logged_next: int | None, committed: bool,
           log_start: int | None = None) -> Decision:
    """What to do with the message at ``offset`` of an identity partition.

    ``logged_next``: the partition's next offset to apply, from the log table (None if it
    holds none). ``committed``: the consumer has committed progress on the partition.
    ``log_start``: the partition's first offset, required when :func:`needs_log_start`.
    Once a partition skipped a message in a batch, the caller skips the rest of that
    partition's messages in the batch too (they are re-read after the first).
    """
    if needs_log_start(logged_next, committed):
        if log_start is None:
            raise ValueError("committed progress but no logged offset: log_start is needed")
        if offset > log_start:
            return Decision(Action.REPLAY, reread_from=log_start)
        return Decision(Action.APPLY, next_offset=offset + 1)
    if logged_next is None or offset == logged_next:
        return Decision(Action.APPLY, next_offset=offset + 1)
    if offset < logged_next:
        return Decision(Action.APPLY)
    return Decision(Action.HOLE, reread_from=logged_next)

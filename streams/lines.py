"""The events of one raw message: one JSON object, or a batch of them as NDJSON. Pure.

The wire format (``schemas.registry``, ARCHITECTURE.md "Batched messages"): a raw message's
value is either

- **one JSON document**, as it always was: the message is one event, line 0, judged whole
  exactly as before batches existed (the same checks, the same reason, the same raw bytes
  in its dead letter), also when it ends with a newline or is pretty-printed over several
  lines (the whole value parses as one JSON document); or
- **NDJSON**: several JSON objects separated by ``\\n`` (a trailing newline allowed, blank
  or whitespace-only lines ignored; a ``\\r`` before the ``\\n`` is whitespace to the
  parser). Each non-blank line is an event of its own, identified by its 0-based index
  among the value's ``\\n``-separated lines (blank lines count, so an index points at the
  bytes), and validated alone; a bad line is a dead letter of its own.

A JSON array is **not** a batch: it stays one document whose top level is not an object
(``not_an_object``), as before. A value that is not UTF-8 or not JSON as a whole but holds
newlines is split when at least one of its lines is a JSON document, and each line is then
judged alone (``\\n`` never occurs inside a UTF-8 multi-byte sequence, so splitting bytes
is safe); without any JSON line it is garbage that happens to hold a newline (binary bytes,
text) and stays one message, one dead letter, as before batches.

Limits: ``max_message_bytes`` (reason ``oversized``) applies to the whole message, before
any split: a batch over it is one dead letter (its bytes and hash, as any oversized
message), never split. No separate line limit: every line is within the message limit, and
a line costs what the same event sent alone would.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

Line = tuple[int, bytes | None]  # (0-based line index, the event's bytes)


def event_lines(raw: bytes | None, max_bytes: int) -> Sequence[Line]:
    """The events of a raw message, each with its line index (module docstring).

    ``((0, raw),)`` when the message is judged whole: no value, over ``max_bytes``, no
    newline but trailing whitespace, one JSON document, or no line that is JSON. Never
    raises; never empty."""
    if raw is None or len(raw) > max_bytes:
        return ((0, raw),)
    at = raw.find(b"\n")
    if at < 0 or not raw[at:].strip():  # the fast path: one event (a trailing newline)
        return ((0, raw),)
    try:
        # One document over several lines (pretty-printed): judged whole, as before. A
        # batch fails here after its first line's object ("trailing characters").
        orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    else:
        return ((0, raw),)
    # isspace() copies nothing (strip() would copy every line); b"" is not isspace()
    lines = [(index, line) for index, line in enumerate(raw.split(b"\n"))
             if line and not line.isspace()]
    if not any(_is_json(line) for _, line in lines):  # a batch's first line decides at once
        return ((0, raw),)  # garbage that happens to hold newlines: one message, as before
    return lines


def _is_json(line: bytes) -> bool:
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    return True

"""Times typed on the command line: aware ISO-8601 only, one rule for every ops command."""

from __future__ import annotations

from datetime import datetime


class TimeError(ValueError):
    """A time that cannot be used; the message is the one-line reason to print."""


def aware_time(text: str, flag: str) -> datetime:
    """``text`` as an aware ISO-8601 time (``Z`` accepted). A naive time is refused: the
    zone decides which messages or events are meant, and a guess would be silently wrong
    by hours for a Beijing operator or a UTC one."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise TimeError(f"{flag} {text!r}: not an ISO-8601 time") from exc
    if when.tzinfo is None:
        raise TimeError(f"{flag} {text!r} has no zone: add one, e.g. +08:00 or Z")
    return when

"""What the ClickHouse data source plugin does to a panel's SQL before ClickHouse sees it.

No Grafana runs on the build machines, so the tests and ``leadloom bench --dashboards``
expand a panel's SQL here, exactly as GRAFANA.md's macro table gives it, and run the result
on the real engine. F/T are the range's start and end in Unix seconds (``_ms``: in
milliseconds), N the interval in seconds (at least 1):

========================== ==============================================================
``$__timeFilter(c)``        ``c >= toDateTime(F) AND c <= toDateTime(T)``
``$__timeFilter_ms(c)``     ``c >= fromUnixTimestamp64Milli(Fms) AND c <= ...(Tms)``
``$__dateFilter(c)``        ``c >= toDate('YYYY-MM-DD') AND c <= toDate('YYYY-MM-DD')``
``$__fromTime``/``_toTime`` ``toDateTime(F)`` / ``toDateTime(T)`` (``_ms``:
                            ``fromUnixTimestamp64Milli(Fms)`` / ``(Tms)``)
``$__timeInterval(c)``      ``toStartOfInterval(toDateTime(c), INTERVAL N second)``
``$__timeInterval_ms(c)``   ``toStartOfInterval(toDateTime64(c, 3), INTERVAL Nms millisecond)``
``$__interval_s``           ``N``
``$__conditionalAll(c, $v)`` ``c``, or ``1=1`` when ``$v`` is All or empty
========================== ==============================================================

Dashboard variables are substituted first as Grafana does: ``${v:singlequote}`` becomes
``'value'`` (quotes escaped with a backslash), ``${v:sqlstring}`` ``'value'`` (quotes
doubled), ``${v}`` the bare value. An unknown macro raises :class:`MacroError` (the plugin
would pass it through and ClickHouse would fail on it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

MACRO = re.compile(r"\$__([A-Za-z][A-Za-z0-9_]*)")
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([A-Za-z]+))?\}")
ALL_VALUE = "$__all"
# macros that take arguments in parentheses, and those that take none
WITH_ARGS = frozenset({"timeFilter", "timeFilter_ms", "dateFilter", "timeInterval",
                       "timeInterval_ms", "conditionalAll"})
WITHOUT_ARGS = frozenset({"fromTime", "toTime", "fromTime_ms", "toTime_ms", "interval_s"})
KNOWN = WITH_ARGS | WITHOUT_ARGS
QUOTE_FORMATS = frozenset({"singlequote", "sqlstring"})


GRAFANA_POINTS = 1000  # Grafana's interval: about one point per pixel of a wide panel


class MacroError(ValueError):
    """A macro or variable the expander (and so the plugin) cannot expand."""


@dataclass(frozen=True)
class TimeRange:
    """A panel's time range and interval, as Grafana hands them to the plugin."""

    start: datetime
    end: datetime
    interval_s: int = 60

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise MacroError("a time range needs timezone-aware datetimes")
        if self.interval_s < 1:
            raise MacroError("the interval is at least 1 second")

    @classmethod
    def spanning(cls, start: object, end: object) -> TimeRange:
        """``start`` .. ``end`` (datetimes, naive ones taken as UTC, or ISO-8601 text, as
        the engine returns them) with the interval Grafana picks for a wide panel: about
        :data:`GRAFANA_POINTS` points over the range, at least 1 s."""
        first, last = _as_utc(start), _as_utc(end)
        points = int((last - first).total_seconds()) // GRAFANA_POINTS
        return cls(first, last, max(1, points))

    @property
    def from_s(self) -> int:
        return int(self.start.timestamp())

    @property
    def to_s(self) -> int:
        return int(self.end.timestamp())

    @property
    def from_ms(self) -> int:
        return int(self.start.timestamp() * 1000)

    @property
    def to_ms(self) -> int:
        return int(self.end.timestamp() * 1000)


def _as_utc(value: object) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def substitute(sql: str, variables: Mapping[str, str]) -> str:
    """``sql`` with every ``${name[:format]}`` replaced by its value (see module docstring)."""

    def value(match: re.Match[str]) -> str:
        name, fmt = match.group(1), match.group(2)
        if name not in variables:
            raise MacroError(f"variable ${{{name}}} is not defined")
        text = variables[name]
        if fmt is None:
            return text
        if fmt == "singlequote":
            return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
        if fmt == "sqlstring":
            return "'" + text.replace("'", "''") + "'"
        raise MacroError(f"variable format :{fmt} is not supported (use singlequote)")

    return VARIABLE.sub(value, sql)


def expand(sql: str, time_range: TimeRange, variables: Mapping[str, str] | None = None) -> str:
    """The SQL the plugin sends for ``sql``: ``$__conditionalAll`` first (it looks at the
    variable, not its value), then variables, then the other macros."""
    values = dict(variables or {})
    sql = _replace_macros(sql, {"conditionalAll": lambda args: _conditional_all(args, values)})
    sql = substitute(sql, values)
    r = time_range
    ms = r.interval_s * 1000
    with_args: dict[str, Callable[[list[str]], str]] = {
        "timeFilter": lambda a: (f"{_one(a)} >= toDateTime({r.from_s})"
                                 f" AND {_one(a)} <= toDateTime({r.to_s})"),
        "timeFilter_ms": lambda a: (f"{_one(a)} >= fromUnixTimestamp64Milli({r.from_ms})"
                                    f" AND {_one(a)} <= fromUnixTimestamp64Milli({r.to_ms})"),
        "dateFilter": lambda a: (f"{_one(a)} >= toDate('{_date(r.start)}')"
                                 f" AND {_one(a)} <= toDate('{_date(r.end)}')"),
        "timeInterval": lambda a: (f"toStartOfInterval(toDateTime({_one(a)}),"
                                   f" INTERVAL {r.interval_s} second)"),
        "timeInterval_ms": lambda a: (f"toStartOfInterval(toDateTime64({_one(a)}, 3),"
                                      f" INTERVAL {ms} millisecond)"),
    }
    without_args = {
        "fromTime": f"toDateTime({r.from_s})", "toTime": f"toDateTime({r.to_s})",
        "fromTime_ms": f"fromUnixTimestamp64Milli({r.from_ms})",
        "toTime_ms": f"fromUnixTimestamp64Milli({r.to_ms})",
        "interval_s": str(r.interval_s),
    }
    return _replace_macros(sql, with_args, without_args)


def macro_names(sql: str) -> list[str]:
    """Every ``$__name`` used in ``sql``, in order (known or not)."""
    return MACRO.findall(sql)


def variable_uses(sql: str) -> list[tuple[str, str | None]]:
    """Every ``${name[:format]}`` in ``sql`` as (name, format or None)."""
    return [(m.group(1), m.group(2)) for m in VARIABLE.finditer(sql)]


def _replace_macros(sql: str, with_args: Mapping[str, Callable[[list[str]], str]],
                    without_args: Mapping[str, str] | None = None) -> str:
    """Replace the macros named in the two maps; leave others for a later pass."""
    out, pos = [], 0
    for match in MACRO.finditer(sql):
        if match.start() < pos:
            continue  # inside the arguments of a macro already replaced
        name = match.group(1)
        if name not in KNOWN:
            raise MacroError(f"unknown macro $__{name}")
        if name in with_args:
            args, end = _arguments(sql, match.end(), name)
            out.append(sql[pos:match.start()])
            out.append(with_args[name](args))
            pos = end
        elif without_args is not None and name in without_args:
            out.append(sql[pos:match.start()])
            out.append(without_args[name])
            pos = match.end()
    out.append(sql[pos:])
    return "".join(out)


def _arguments(sql: str, start: int, name: str) -> tuple[list[str], int]:
    """The comma-separated arguments of the call that opens at ``sql[start]`` (nested
    parentheses and quoted strings respected) and the index after its closing parenthesis."""
    if start >= len(sql) or sql[start] != "(":
        raise MacroError(f"$__{name} needs its arguments in parentheses")
    depth, quote, args, current = 0, "", [], []
    for i in range(start, len(sql)):
        ch = sql[i]
        if quote:
            current.append(ch)
            if ch == quote and sql[i - 1] != "\\":
                quote = ""
            continue
        if ch in "'\"`":
            quote = ch
            current.append(ch)
        elif ch == "(":
            depth += 1
            if depth > 1:
                current.append(ch)
        elif ch == ")":
            depth -= 1
            if depth == 0:
                args.append("".join(current).strip())
                return args, i + 1
            current.append(ch)
        elif ch == "," and depth == 1:
            args.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    raise MacroError(f"$__{name}( is not closed")


def _one(args: list[str]) -> str:
    if len(args) != 1 or not args[0]:
        raise MacroError(f"expected one column, got {len(args)} argument(s)")
    return args[0]


def _conditional_all(args: list[str], variables: Mapping[str, str]) -> str:
    if len(args) != 2:
        raise MacroError("$__conditionalAll takes a condition and a variable")
    condition, ref = args
    match = re.fullmatch(r"\$(?:\{([A-Za-z_]\w*)(?::[A-Za-z]+)?\}|([A-Za-z_]\w*))", ref)
    if match is None:
        raise MacroError(f"$__conditionalAll's second argument {ref!r} is not a variable")
    name = match.group(1) or match.group(2)
    if name not in variables:
        raise MacroError(f"variable ${{{name}}} is not defined")
    value = variables[name]
    return "1=1" if value in ("", ALL_VALUE) else condition


def _date(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d")

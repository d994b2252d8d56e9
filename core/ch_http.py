"""ClickHouse's HTTP wire conventions: request parameters, error answers, Native framing.

What real clients expect of a ClickHouse server over HTTP (clickhouse-connect, curl,
clickhouse-go in Grafana's data source), as far as the HTTP interface serves it:

- errors: a non-2xx status chosen by the error code as the server does (``status_of``),
  the header ``X-ClickHouse-Exception-Code`` and the body
  ``Code: NNN. DB::Exception: <one line>. (NAME)``;
- parameters: which ones are the transport's (never a setting), which bind query
  parameters (``param_<name>``); every other one is a setting, accepted only when equal
  to the session's value (the session is readonly=1: the server answers READONLY, 164);
- ``reframe_native``: chdb writes Native blocks without the BlockInfo prefix and the
  per-column custom-serialization byte that a client announcing a protocol revision
  (``client_protocol_version`` > 0, clickhouse-go) decodes.
"""

from __future__ import annotations

import io

# Parameters of the HTTP transport and of the request itself, never passed as settings.
TRANSPORT_PARAMS = frozenset({
    "query", "database", "default_format", "query_id", "session_id", "session_timeout",
    "session_check", "wait_end_of_query", "compress", "decompress", "enable_http_compression",
    "client_protocol_version", "user", "password", "quota_key", "buffer_size", "role",
    "send_progress_in_http_headers", "http_headers_progress_interval_ms",
    "cancel_http_readonly_queries_on_client_close", "http_wait_end_of_query",
    "http_response_buffer_size", "stacktrace",
})

# Settings clients send as their own timeout (clickhouse-go: max_execution_time from its read
# timeout, on every request, Grafana's data source included): accepted at any value and not
# applied, so the session's limit holds; refusing them would refuse those clients outright.
CLIENT_TIMEOUT_SETTINGS = frozenset({"max_execution_time"})

AUTHENTICATION_FAILED, READONLY, UNKNOWN_SETTING = 516, 164, 115
_UNAUTHORIZED = frozenset({516, 192, 193, 194})  # auth failed, unknown user, wrong/required pw
_FORBIDDEN = frozenset({497, 164, 446})  # access denied, readonly, function not allowed
_BAD_REQUEST = frozenset({
    62, 27, 6, 26, 38, 41, 72, 33, 34, 35, 36, 42, 43, 44, 53, 457, 456, 115, 73, 1001,
})
_NOT_FOUND = frozenset({60, 81, 46, 47, 50, 16, 73, 107})  # unknown table/db/function/...
_UNAVAILABLE = frozenset({202})  # too many simultaneous queries: clients retry a 503


def status_of(code: int) -> int:
    """The HTTP status ClickHouse answers an error of ``code`` with."""
    if code in _UNAUTHORIZED:
        return 401
    if code in _FORBIDDEN:
        return 403
    if code in _NOT_FOUND:
        return 404
    if code in _BAD_REQUEST:
        return 400
    if code in _UNAVAILABLE:
        return 503
    return 500


def error_body(code: int, name: str, message: str) -> bytes:
    """``Code: NNN. DB::Exception: <message>. (NAME)`` and a newline, on one line."""
    line = " ".join(message.split()).rstrip(".")
    return f"Code: {code}. DB::Exception: {line}. ({name})\n".encode()


def content_type(output_format: str) -> str:
    """The Content-Type ClickHouse sends for ``output_format``."""
    lowered = output_format.lower()
    if lowered.startswith(("json", "ndjson")):
        return "application/json; charset=UTF-8"
    if lowered.startswith(("tabseparated", "tsv")):
        return "text/tab-separated-values; charset=UTF-8"
    if lowered.startswith("csv"):
        return "text/csv; charset=UTF-8; header=absent"
    if lowered in ("pretty", "prettycompact", "vertical", "markdown", "values"):
        return "text/plain; charset=UTF-8"
    return "application/octet-stream"


def same_setting(wanted: str, current: str) -> bool:
    """Is ``wanted`` (an HTTP parameter) the value ``current`` (system.settings) already
    has? Booleans compare as 0/1, numbers by value, the rest as text."""
    truth = {"true": "1", "false": "0"}
    a, b = truth.get(wanted.lower(), wanted), truth.get(current.lower(), current)
    if a == b:
        return True
    try:
        return float(a) == float(b)
    except ValueError:
        return False


# -- Native re-framing for clients that announce a protocol revision -------------------
_BLOCK_INFO = b"\x01\x00\x02\xff\xff\xff\xff\x00"  # is_overflows=0, bucket_num=-1, end


def _varint(buf: io.BytesIO) -> int:
    shift = result = 0
    while True:
        byte = buf.read(1)
        if not byte:
            raise EOFError
        result |= (byte[0] & 0x7F) << shift
        if byte[0] < 0x80:
            return result
        shift += 7


def _put_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _string(buf: io.BytesIO) -> bytes:
    return buf.read(_varint(buf))


CUSTOM_SERIALIZATION_REVISION = 54454


def reframe_native(data: bytes, revision: int) -> bytes:
    """chdb's Native ``data`` as a server writes it to a client of protocol ``revision``
    (> 0): each block starts with BlockInfo and, from revision 54454, each column's type
    is followed by a 0x00 byte (no custom serialization). Column data is copied as is, so
    only the column types ``_skip_column`` can measure are supported; ValueError else."""
    src = io.BytesIO(data)
    out = io.BytesIO()
    while src.tell() < len(data):
        columns, rows = _varint(src), _varint(src)
        out.write(_BLOCK_INFO + _put_varint(columns) + _put_varint(rows))
        for _ in range(columns):
            name, type_name = _string(src), _string(src)
            start = src.tell()
            _skip_column(src, type_name.decode(), rows)
            out.write(_put_varint(len(name)) + name + _put_varint(len(type_name)) + type_name)
            if revision >= CUSTOM_SERIALIZATION_REVISION:
                out.write(b"\x00")
            out.write(data[start:src.tell()])
    return out.getvalue()


_FIXED = {
    "UInt8": 1, "Int8": 1, "Bool": 1, "UInt16": 2, "Int16": 2, "Date": 2, "UInt32": 4,
    "Int32": 4, "Float32": 4, "DateTime": 4, "Date32": 4, "IPv4": 4, "UInt64": 8, "Int64": 8,
    "Float64": 8, "UInt128": 16, "Int128": 16, "UUID": 16, "IPv6": 16, "UInt256": 32,
    "Int256": 32, "Enum8": 1, "Enum16": 2,
}


def _args(type_name: str) -> list[str]:
    """The top-level arguments of ``Name(a, b(c, d))``: ["a", "b(c, d)"]."""
    inner = type_name[type_name.index("(") + 1:type_name.rindex(")")]
    parts, depth, current = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            parts.append(current.strip())
            current = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        current += ch
    parts.append(current.strip())
    return parts


def _skip_column(buf: io.BytesIO, type_name: str, rows: int) -> None:
    base = type_name.split("(", 1)[0]
    if base in _FIXED:
        buf.seek(_FIXED[base] * rows, io.SEEK_CUR)
    elif base == "DateTime64" or base.startswith("Decimal"):
        width = {"Decimal32": 4, "Decimal64": 8, "Decimal128": 16, "Decimal256": 32}.get(base)
        if base == "DateTime64":
            width = 8
        elif base == "Decimal":
            precision = int(_args(type_name)[0])
            width = 4 if precision <= 9 else 8 if precision <= 18 else 16 if precision <= 38 \
                else 32
        buf.seek((width or 8) * rows, io.SEEK_CUR)
    elif base == "String":
        for _ in range(rows):
            buf.seek(_varint(buf), io.SEEK_CUR)
    elif base == "FixedString":
        buf.seek(int(_args(type_name)[0]) * rows, io.SEEK_CUR)
    elif base == "Nullable":
        buf.seek(rows, io.SEEK_CUR)
        _skip_column(buf, _args(type_name)[0], rows)
    elif base == "Array":
        offsets = [int.from_bytes(buf.read(8), "little") for _ in range(rows)]
        _skip_column(buf, _args(type_name)[0], offsets[-1] if offsets else 0)
    elif base == "Tuple":
        for element in _args(type_name):
            words = element.split(" ", 1)  # named elements: "name Type"
            inner = words[1] if len(words) == 2 and "(" not in words[0] else element
            _skip_column(buf, inner, rows)
    elif base == "LowCardinality":
        if rows == 0:
            return
        buf.seek(8, io.SEEK_CUR)  # key serialization version
        flags = int.from_bytes(buf.read(8), "little")
        keys = int.from_bytes(buf.read(8), "little")
        inner = _args(type_name)[0]
        dictionary = inner[len("Nullable("):-1] if inner.startswith("Nullable(") else inner
        _skip_column(buf, dictionary, keys)
        count = int.from_bytes(buf.read(8), "little")
        buf.seek(count * (1 << (flags & 0xFF)), io.SEEK_CUR)
    elif base == "Map":
        key, value = _args(type_name)
        offsets = [int.from_bytes(buf.read(8), "little") for _ in range(rows)]
        total = offsets[-1] if offsets else 0
        _skip_column(buf, key, total)
        _skip_column(buf, value, total)
    elif base == "Nothing":
        buf.seek(rows, io.SEEK_CUR)
    else:
        raise ValueError(f"Native re-framing does not know type {type_name}")

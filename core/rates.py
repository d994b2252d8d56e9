"""Currency rates: CNY per unit of a currency, from a CSV, into ``currency_rates``.

The procurement funnel shows values in CNY. Events carry their own currency (``currency``
of online inquiries and procurement steps: any three capitals, CNY by default); the store
converts with the rates table (migration 009), never with a network look-up. The product
ships reference rates (``infra/clickhouse/rates/cny_rates.csv``, inserted by migration 009
into an empty table) and an operator loads the organizer's own with ``leadloom rates load``.

A rates file is CSV with a header naming exactly the columns ``currency``,
``cny_per_unit`` and ``valid_from`` (any order). A rate holds from its ``valid_from`` until
the next ``valid_from`` of the same currency; a date means 00:00 UTC, a date-time without
an offset is UTC. :func:`parse_rates` checks the whole file and raises
:class:`RatesFileError` listing every bad line (one line each, with its line number): a
file with any error loads nothing. Loading a (currency, valid_from) pair again replaces its
rate; other pairs are added, so the history stays and old events keep their rate.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Protocol

from clickhouse_connect.driver.client import Client

from core.csvfile import CheckedCsv, CsvFileError
from schemas.registry import CURRENCY_RATES

COLUMNS = ("currency", "cny_per_unit", "valid_from")
# The table's Decimal(18, 8): 8 decimals keep KRW-like rates (~0.005) exact to 6 digits;
# a rate above 10^9 CNY per unit is no currency, it is a typo.
RATE_DECIMALS = 8
MAX_RATE = Decimal(10) ** 9
_CODE = re.compile(r"^[A-Z]{3}$")  # the events' own rule (schemas.events.Currency)


@dataclass(frozen=True)
class Rate:
    """One row of a rates file: ``cny_per_unit`` CNY buy one ``currency`` from ``valid_from``
    (UTC) on."""

    currency: str
    cny_per_unit: Decimal
    valid_from: datetime
    line: int = 0  # where it came from in its file (0: not from a file)


class RatesFileError(CsvFileError):
    """A rates file that must not be loaded; ``errors`` holds one line per problem."""


def parse_rates(text: str, source: str = "rates file") -> list[Rate]:
    """The rates of a CSV text, or :class:`RatesFileError` naming every bad line.

    Blank lines are skipped. Errors: a header that is not exactly the three columns, a
    line with another number of fields, a currency that is not three capitals, a rate that
    is not a positive number with at most 8 decimals (or above 10^9), CNY at a rate other
    than 1, a date that is not ISO, the same (currency, valid_from) twice, and no rates.
    """
    checked = CheckedCsv(text, COLUMNS)
    rates: list[Rate] = []
    seen: dict[tuple[str, datetime], int] = {}
    for line, row in checked.rows():
        problems = []
        currency = row["currency"]
        if not _CODE.match(currency):
            problems.append(f"currency {currency!r} is not a three-capital ISO 4217 code")
        rate = _rate(row["cny_per_unit"], problems)
        if rate is not None and currency == "CNY" and rate != 1:
            problems.append(f"CNY must be 1 CNY per unit, not {row['cny_per_unit']}")
        valid_from = _moment(row["valid_from"], problems)
        if not problems and rate is not None and valid_from is not None:
            first = seen.setdefault((currency, valid_from), line)
            if first != line:
                problems.append(f"{currency} from {row['valid_from']} again (first on line"
                                f" {first})")
            else:
                rates.append(Rate(currency, rate, valid_from, line))
        checked.errors.extend(f"line {line}: {p}" for p in problems)
    errors = checked.finish(len(rates), "rates")
    if errors:
        raise RatesFileError(source, errors)
    return rates


def _rate(text: str, problems: list[str]) -> Decimal | None:
    try:
        rate = Decimal(text)
    except InvalidOperation:
        problems.append(f"cny_per_unit {text!r} is not a number")
        return None
    if not rate.is_finite() or rate <= 0:
        problems.append(f"cny_per_unit {text!r} is not positive")
        return None
    if rate > MAX_RATE:
        problems.append(f"cny_per_unit {text} is above {MAX_RATE}")
        return None
    exponent = rate.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > RATE_DECIMALS:
        problems.append(f"cny_per_unit {text} has more than {RATE_DECIMALS} decimals")
        return None
    return rate


def _moment(text: str, problems: list[str]) -> datetime | None:
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        problems.append(f"valid_from {text!r} is not an ISO date (YYYY-MM-DD) or date-time")
        return None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    if moment.microsecond or moment.year < 1970 or moment.year > 2105:
        problems.append(f"valid_from {text!r} must be whole seconds in 1970-2105 (UTC)")
        return None
    return moment


class _HasClient(Protocol):
    client: Client


def load_rates(store_or_client: _HasClient | Client, database: str, rows: Iterable[Rate],
               source: str = "") -> int:
    """Insert ``rows`` into ``<database>.currency_rates`` in one insert; returns how many.

    ``store_or_client`` is a ``core.store.Store`` (its writing client) or a
    clickhouse-connect client. All rows share one ``loaded_at``, later than any earlier
    load, so each replaces the rate of the same (currency, valid_from).
    """
    client = store_or_client if isinstance(store_or_client, Client) else store_or_client.client
    loaded_at = datetime.now(UTC)
    data = [[r.currency, r.valid_from, r.cny_per_unit, source, loaded_at] for r in rows]
    if data:
        client.insert(f"{database}.{CURRENCY_RATES.name}", data,
                      column_names=["currency", "valid_from", "cny_per_unit", "source",
                                    "loaded_at"])
    return len(data)


def to_cny_sql(amount_col: str, currency_col: str, time_col: str, database: str) -> str:
    """A SQL expression: ``amount_col`` (in ``currency_col``) in CNY at ``time_col``'s rate.

    The rate is the one of the latest ``valid_from`` <= ``time_col`` for that currency.
    The result is ``Nullable(Decimal(38, 2))``, rounded half away from zero to the fen;
    NULL when the amount is NULL or no rate covers the currency at that time (a missing
    rate shows as a missing value, never as a wrong one).

    It is one expression (usable in SELECT, GROUP BY and views, no join to write): the
    rates, a few rows per currency, are read once per query as a sorted array (a scalar
    subquery on ``currency_rates FINAL``), and each row picks the last entry of its
    currency that is not after its time.
    """
    rates = (
        "(SELECT arraySort(r -> (r.1, r.2), groupArray((currency, valid_from, cny_per_unit)))"
        f" FROM {database}.{CURRENCY_RATES.name} FINAL)"
    )
    rate = (f"nullIf(arrayLast(r -> r.1 = {currency_col} AND r.2 <= {time_col}, {rates}).3,"
            " 0)")
    return (f"CAST(round(toDecimal128({amount_col}, 2) * {rate}, 2)"
            " AS Nullable(Decimal(38, 2)))")

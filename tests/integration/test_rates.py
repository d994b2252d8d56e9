"""Currency rates on the real embedded engine: migration 009's table, view and shipped
rates, loads that replace and add, conversion at the rate of the event's time, and the
``leadloom rates load`` command (a bad file changes nothing; a running owner refuses)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from core.rates import load_rates, parse_rates, to_cny_sql
from core.settings import Settings
from core.store import Store
from schemas.registry import CNY_RATE_CURRENT, CURRENCY_RATES, PROCUREMENT_STEPS
from streams.rows import SourceRef, event_row
from streams.validate import Accepted, validate
from tests.factories import events as f
from tests.factories.stores import open_store

pytestmark = pytest.mark.integration

LEADLOOM = str(Path(sys.executable).with_name("leadloom"))
HEADER = "currency,cny_per_unit,valid_from\n"
SHIPPED_USD = Decimal("7.15")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = open_store(Settings(data_dir=tmp_path, namespace="rates"))
    yield store
    store.close()


def rates_now(store: Store) -> dict[str, Decimal]:
    rows = store.query(f"SELECT currency, cny_per_unit FROM {store.database}."
                       f"{CNY_RATE_CURRENT.name}").rows
    return {c: Decimal(str(r)) for c, r in rows}


def stored(store: Store) -> list[tuple[str, datetime, Decimal]]:
    rows = store.query(f"SELECT currency, valid_from, cny_per_unit FROM {store.database}."
                       f"{CURRENCY_RATES.name} FINAL ORDER BY currency, valid_from").rows
    return [(c, v, Decimal(str(r))) for c, v, r in rows]


def test_migration_creates_the_table_and_view_with_the_shipped_rates(store: Store) -> None:
    for spec in (CURRENCY_RATES, CNY_RATE_CURRENT):
        described = store.query(f"DESCRIBE TABLE {store.database}.{spec.name}")
        assert [r[0] for r in described.rows] == list(spec.columns), spec.name
    current = rates_now(store)
    assert current["CNY"] == 1 and current["USD"] == SHIPPED_USD
    assert set(current) == {"CNY", "HKD", "USD", "EUR", "GBP", "JPY", "KRW"}


def test_a_load_replaces_the_same_valid_from_and_adds_new_ones(store: Store) -> None:
    load_rates(store, store.database, parse_rates(
        HEADER + "USD,7.20,1970-01-01\nUSD,7.30,2026-03-26\nSGD,5.3,2026-01-01\n"))
    usd = [(v.year, r) for c, v, r in stored(store) if c == "USD"]
    assert usd == [(1970, Decimal("7.2")), (2026, Decimal("7.3"))]  # shipped 7.15 replaced
    assert rates_now(store)["SGD"] == Decimal("5.3")
    assert rates_now(store)["EUR"] == Decimal("8.1")  # untouched by the load
    # loading it again replaces, never doubles
    load_rates(store, store.database, parse_rates(HEADER + "USD,7.31,2026-03-26\n"))
    usd = [(v.year, r) for c, v, r in stored(store) if c == "USD"]
    assert usd == [(1970, Decimal("7.2")), (2026, Decimal("7.31"))]


def _step(event_id: str, occurred_at: str, value: str, currency: str) -> bytes:
    doc = f.procurement(value=value, currency=currency)
    doc.update(event_id=event_id, occurred_at=occurred_at)
    outcome = validate(f.encode(doc), doc["event_type"], 65536)
    assert isinstance(outcome, Accepted), outcome
    return orjson.dumps(event_row(outcome.event, outcome.enrichment, SourceRef("t", 0, 0)))


def test_values_convert_at_the_rate_of_their_time_across_a_change_mid_fair(
        store: Store) -> None:
    # The organizer's USD rate changes at 14:00 Beijing time on the fair's first day.
    load_rates(store, store.database, parse_rates(HEADER + "USD,7.40,2026-03-26T14:00:00+08:00\n"))
    store.insert_json_rows(PROCUREMENT_STEPS.name, [
        _step("before", "2026-03-26T05:59:59.999+00:00", "1000.30", "USD"),
        _step("at", "2026-03-26T06:00:00.000+00:00", "1000.00", "USD"),
        _step("next-day", "2026-03-27T02:00:00.000+00:00", "100.05", "USD"),
        _step("yuan", "2026-03-26T03:00:00.000+00:00", "880.00", "CNY"),
        _step("won", "2026-03-26T03:00:00.000+00:00", "1000000.00", "KRW"),
        _step("unknown", "2026-03-26T03:00:00.000+00:00", "10.00", "CHF"),
    ])
    cny = to_cny_sql("value", "currency", "occurred_at", store.database)
    rows = store.query(f"SELECT event_id, {cny} FROM {store.database}.{PROCUREMENT_STEPS.name}"
                       " FINAL ORDER BY event_id").rows
    assert {e: (None if v is None else Decimal(str(v))) for e, v in rows} == {
        "before": Decimal("7152.15"),  # the shipped rate; 7152.145 rounds half away from 0
        "at": Decimal("7400.00"),  # a rate holds from its valid_from on, inclusive
        "next-day": Decimal("740.37"),
        "yuan": Decimal("880.00"),
        "won": Decimal("5200.00"),
        "unknown": None,  # no rate for CHF: missing, never a made-up value
    }
    total = store.query(f"SELECT sum({cny}) FROM {store.database}.{PROCUREMENT_STEPS.name}"
                        " FINAL").rows[0][0]
    assert Decimal(str(total)) == Decimal("21372.52")


def _leadloom(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADLOOM_")}
    env.update(LEADLOOM_DATA_DIR=str(data_dir), LEADLOOM_NAMESPACE="rates")
    return subprocess.run([LEADLOOM, *args], env=env, capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL)


def test_the_command_loads_a_good_file_and_a_bad_one_changes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    good = tmp_path / "good.csv"
    good.write_text(HEADER + "USD,7.25,2026-03-01\nEUR,7.9,2026-03-01\n")
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "USD,9.99,2026-04-01\nEUR,-1,2026-04-01\n")

    done = _leadloom(data, "rates", "load", str(good), "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["loaded"] == 2 and summary["current"]["USD"]["cny_per_unit"] == "7.25"

    failed = _leadloom(data, "rates", "load", str(bad))
    assert failed.returncode == 1
    assert failed.stderr.count("\n") == 1, failed.stderr
    assert "line 3: cny_per_unit '-1' is not positive" in failed.stderr
    assert "nothing was loaded" in failed.stderr

    store = open_store(Settings(data_dir=data, namespace="rates"))
    try:
        usd = [(v.date().isoformat(), r) for c, v, r in stored(store) if c == "USD"]
        assert usd == [("1970-01-01", SHIPPED_USD), ("2026-03-01", Decimal("7.25"))]
        # while a process owns the embedded store (leadloom run), the command refuses
        owned = _leadloom(data, "rates", "load", str(good))
        assert owned.returncode == 1
        assert owned.stderr.count("\n") == 1 and "stop leadloom run first" in owned.stderr
    finally:
        store.close()

"""Dead-letter status, selection and display on the real engine (no broker: the commands read
the store directly when no owner runs).

Dead letters in every retry state, written by the pipeline's own row builders: never
retried, republished and taken, republished then failed again (dead again), still invalid,
not retryable; two failed rows of one derived message (one origin, two dead letters); bytes
that would act on a terminal. The listing, the retry's selection and the ops dashboard's
retried / still-dead panels must agree.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from core.settings import Settings
from dashboards.build import build_all
from dashboards.macros import TimeRange
from dashboards.panel_sql import run_panels
from leadloom.commands.deadletters import DeadLetterError, Filters, list_dead_letters, show
from leadloom.commands.deadletters_retry import LetterKey, retry_row, select
from schemas.deadletter import Reason
from schemas.registry import DEAD_LETTER_RETRIES, DEAD_LETTER_TABLE, RetryOutcome
from streams.rows import SourceRef, dead_letter_row
from streams.validate import Rejected
from tests.factories import events as f
from tests.factories.stores import open_store

pytestmark = pytest.mark.integration

T = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
HOSTILE = "scan \x1b[2J\x1b]0;owned\x07 \u202egnp.exe"  # clear screen, title, RTL override


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = Settings(data_dir=Path(tmp_path_factory.mktemp("triage")), namespace="tri")
    raw = settings.topics.raw("booth_scan")
    letters = {
        "never": (Reason.UNKNOWN_BOOTH, SourceRef(raw, 0, 1), f.encode(f.scan()), T),
        "taken": (Reason.OVERSIZED, SourceRef(raw, 0, 2), f.encode(f.scan()), T),
        "again": (Reason.OVERSIZED, SourceRef(raw, 1, 3), f.encode(f.scan()),
                  T + timedelta(minutes=10)),
        "invalid": (Reason.BAD_JSON, SourceRef(raw, 2, 4), HOSTILE.encode(), T),
        "binary": (Reason.BAD_JSON, SourceRef(raw, 3, 5), b"\xff\xfe\x1b[2J\x00", T),
    }
    derived = SourceRef(settings.topics.identity_records, 0, 9)
    rows = [dead_letter_row(Rejected(reason, f"detail {name} \x1b[31m"), ref, body, at)
            for name, (reason, ref, body, at) in letters.items()]
    rows += [dead_letter_row(Rejected(Reason.IDENTITY_INVALID, "bad record"), derived,
                             line, T) for line in (b'{"a": 1}', b'{"a": 2}')]

    def key(name: str) -> LetterKey:
        row = rows[list(letters).index(name)]
        return LetterKey(letters[name][1], str(row["raw_sha256"]))

    derived_key = LetterKey(derived, str(rows[-1]["raw_sha256"]))
    retries = [
        retry_row(key("taken"), T + timedelta(minutes=5), "a1", RetryOutcome.REPUBLISHED,
                  published_to=f"{raw}[0]@77"),
        # republished at T+5, failed again at T+10 (the dead letter was replaced)
        retry_row(key("again"), T + timedelta(minutes=5), "a1", RetryOutcome.REPUBLISHED,
                  published_to=f"{raw}[1]@78"),
        retry_row(key("invalid"), T + timedelta(minutes=5), "a1", RetryOutcome.STILL_INVALID,
                  "bad_json: unexpected end"),
        retry_row(derived_key, T + timedelta(minutes=5), "a1", RetryOutcome.NOT_RETRYABLE,
                  "a dead letter of the derived stage identity.records"),
    ]
    store = open_store(settings)
    try:
        store.insert_json_rows(DEAD_LETTER_TABLE.name, [orjson.dumps(r) for r in rows])
        store.insert_json_rows(DEAD_LETTER_RETRIES.name, [orjson.dumps(r) for r in retries])
    finally:
        store.close()
    return settings


def test_each_dead_letter_has_its_status(settings: Settings) -> None:
    listed = list_dead_letters(settings, Filters(limit=None))
    raw, ident = settings.topics.raw("booth_scan"), settings.topics.identity_records
    status = {(d["ref"], d["reason"]): d["status"] for d in listed["dead_letters"]
              if d["ref"] != f"{ident}[0]@9"}
    assert status == {
        (f"{raw}[0]@1", "unknown_booth"): "never retried",
        (f"{raw}[0]@2", "oversized"): "republished",
        (f"{raw}[1]@3", "oversized"): "dead again",
        (f"{raw}[2]@4", "bad_json"): "still invalid",
        (f"{raw}[3]@5", "bad_json"): "never retried",
    }
    # one derived message, two failed rows: two dead letters, each with its own status
    assert sorted(d["status"] for d in listed["dead_letters"]
                  if d["ref"] == f"{ident}[0]@9") == ["never retried", "not retryable"]
    assert listed["by_status"] == {"never retried": 3, "republished": 1, "dead again": 1,
                                   "still invalid": 1, "not retryable": 1}
    assert listed["dead_letters"][0]["ref"] == f"{raw}[1]@3"  # newest failure first
    # retry selects every still-dead one: all but the republished and taken
    chosen = [(r["origin_offset"], r["raw_sha256"]) for r in select(settings,
                                                                     Filters(limit=None))]
    assert len(chosen) == 6 and 2 not in [o for o, _ in chosen]
    assert list_dead_letters(settings, Filters(reasons=("oversized",), limit=1))["count"] == 1
    since = list_dead_letters(settings, Filters(since=T + timedelta(minutes=1), limit=None))
    assert [d["ref"] for d in since["dead_letters"]] == [f"{raw}[1]@3"]


def test_the_ops_panels_count_as_the_listing_does(settings: Settings) -> None:
    ops = build_all(settings)[1]
    store = open_store(settings)
    try:
        runs = {r.spec.id: r for r in run_panels(ops, store.query,
                                                 TimeRange(T, T + timedelta(hours=1), 5))}
    finally:
        store.close()
    assert runs[8].result.rows == [[1]]  # retried: the one republished and not failed since
    assert runs[9].result.rows == [[6]]  # still dead: the other six


def test_show_escapes_what_a_terminal_would_act_on(settings: Settings) -> None:
    raw = settings.topics.raw("booth_scan")
    text = show(settings, f"{raw}[2]@4")["dead_letters"][0]
    assert text["raw"]["encoding"] == "utf-8" and text["raw"]["whole"]
    assert text["raw"]["from"] == "dead_letter"  # no archive copy in this store
    shown = text["raw"]["text"]
    assert "\x1b" not in shown and "\x07" not in shown and "\u202e" not in shown
    assert "\\x1b[2J" in shown and "\\u202e" in shown
    assert [r["outcome"] for r in text["retries"]] == ["still_invalid"]
    binary = show(settings, f"{raw}[3]@5")["dead_letters"][0]["raw"]
    assert binary["encoding"] == "binary" and binary["hex"] == "ff fe 1b 5b 32 4a 00"
    two = show(settings, f"{settings.topics.identity_records}[0]@9")["dead_letters"]
    assert len(two) == 2 and sorted(len(d["retries"]) for d in two) == [0, 1]
    with pytest.raises(DeadLetterError, match="no dead letter"):
        show(settings, f"{raw}[5]@5")
    with pytest.raises(DeadLetterError, match="not a reference"):
        show(settings, "raw.scans@5")

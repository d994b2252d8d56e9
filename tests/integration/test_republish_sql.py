"""The republish selection's SQL on the real embedded engine (the project's migrations): first
copies of stored events only, in send order, paged by key without loss; counts per skip
reason; cluster, type and time selections."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest

from core.settings import Settings
from leadloom.commands.republish_select import Counts, Selection, SelectionSql
from streams.rows import archive_row
from tests.factories.stores import open_store

pytestmark = pytest.mark.integration


def _event(event_id: str, event_type: str, occurred: datetime) -> bytes:
    return (f'{{"event_id": "{event_id}", "event_type": "{event_type}",'
            f' "occurred_at": "{occurred.isoformat()}"}}').encode()


def test_the_sql_selects_first_copies_of_stored_events_in_send_order(tmp_path: Path) -> None:
    settings = Settings(namespace="unit", data_dir=tmp_path)
    store = open_store(settings)
    topics = settings.topics
    t0 = datetime(2026, 5, 4, 2, tzinfo=UTC)
    scans, regs = topics.raw("booth_scan"), topics.raw("buyer_registration")
    messages = [  # topic, partition, offset, ms after t0, value
        (scans, 0, 0, 5, _event("s1", "booth_scan", t0)),
        (scans, 1, 0, 1, _event("s2", "booth_scan", t0 + timedelta(hours=1))),
        (scans, 1, 1, 9, _event("s1", "booth_scan", t0)),  # a resend of s1
        (scans, 0, 1, 2, b'{"event_id": "s3", '),  # broken JSON
        (scans, 0, 4, 2, b"hello\nfrom a scanner"),  # text with a newline: one message
        (scans, 0, 2, 3, _event("s4", "booth_scan", t0)),  # a dead letter: not stored
        (scans, 0, 3, 4, _event("r9", "buyer_registration", t0)),  # on another type's topic
        (regs, 0, 0, 7, _event("r1", "buyer_registration", t0)),
        ("other.raw.scans", 0, 0, 1, _event("s1", "booth_scan", t0)),  # another namespace
        # a batch (NDJSON): each line judged as a message of its own would be
        (scans, 2, 0, 8, b"\n".join([
            _event("b1", "booth_scan", t0), b"", _event("s1", "booth_scan", t0),  # a resend
            b'{"event_id": "b2"',  # broken JSON
            _event("b3", "booth_scan", t0 + timedelta(hours=1)),
            _event("b4", "booth_scan", t0)]) + b"\n"),  # not stored
    ]
    rows = [archive_row(t, p, o, int(t0.timestamp() * 1000) + ms, None, v, [])
            for t, p, o, ms, v in messages]
    store.insert_json_rows("raw_archive", [orjson.dumps(r) for r in rows])
    store.insert_json_rows("scans", [orjson.dumps({"event_id": e, "cluster_id": c})
                                     for e, c in (("s1", "keqiao"), ("s2", "shaoxing"),
                                                  ("b1", "keqiao"), ("b3", "shaoxing"))])
    store.insert_json_rows("registrations", [orjson.dumps({"event_id": e})
                                             for e in ("r1", "r9")])

    def run(sql: str) -> list[list]:
        return store.query(sql).rows

    def sent(selection: Selection, page: int = 100) -> list[tuple]:
        sql, after, out = SelectionSql(selection, settings), None, []
        while True:
            rows = run(sql.page_sql(after, page))
            out += [(r[1], r[2], r[3], r[8]) for r in rows]
            if len(rows) < page:
                return out
            last = rows[-1]
            after = (int(last[0]), last[1], int(last[2]), int(last[3]), int(last[8]))

    # (topic, partition, offset, line): a batch's lines b1 and b3, each alone
    everything = [(scans, 1, 0, 0), (scans, 0, 0, 0), (regs, 0, 0, 0), (scans, 2, 0, 0),
                  (scans, 2, 0, 4)]
    assert sent(Selection()) == everything
    assert sent(Selection(), page=1) == everything  # keyset paging loses nothing
    counts = Counts.of_rows(run(SelectionSql(Selection(), settings).count_sql()))
    assert counts.selected == 5
    assert counts.skipped == {"not_an_event": 4, "not_stored": 2, "duplicate": 2}
    assert sent(Selection(clusters=("keqiao",))) == [(scans, 0, 0, 0), (scans, 2, 0, 0)]
    assert sent(Selection(types=("buyer_registration",))) == [(regs, 0, 0, 0)]
    late = Selection(since=t0 + timedelta(minutes=30),
                     until=t0.astimezone(timezone(timedelta(hours=8))) + timedelta(hours=2))
    assert sent(late) == [(scans, 1, 0, 0), (scans, 2, 0, 4)]
    # a batch's line goes out as its own bytes, flagged as a line
    [line] = [r for r in run(SelectionSql(Selection(), settings).page_sql(None, 100))
              if r[8] == 4]
    assert (line[5], line[9]) == (_event("b3", "booth_scan", t0 + timedelta(hours=1)).decode(),
                                  1)
    # messages that reached Kafka after the run began are not part of it
    before_r1 = SelectionSql(Selection(), settings, as_of=t0 + timedelta(milliseconds=6))
    assert [(r[1], r[2], r[3], r[8]) for r in run(before_r1.page_sql(None, 100))] == \
        everything[:2]
    store.close()

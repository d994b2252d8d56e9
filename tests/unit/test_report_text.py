"""The report's wording and number formats (leadloom/report/text.py) and file names."""

from __future__ import annotations

import string
from datetime import UTC, date, datetime

import pytest

from leadloom.report import file_stem
from leadloom.report.text import DISPLAY, LANGS, TEXT, display, moment, number, percent, text
from schemas.events import FUNNEL_STAGES


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


@pytest.mark.parametrize("key", sorted(TEXT))
def test_both_languages_have_the_same_fields_and_differ(key: str) -> None:
    zh, en = TEXT[key]
    assert _fields(zh) == _fields(en)
    values = dict.fromkeys(_fields(zh), "X")
    assert text("zh", key, **values) != text("en", key, **values) or key == "none"
    assert any("\u4e00" <= c <= "\u9fff" for c in text("zh", key, **values))
    assert all(ord(c) < 0x2E80 for c in text("en", key, **values))


def test_an_unknown_key_fails() -> None:
    with pytest.raises(KeyError):
        text("zh", "no_such_key")


def test_every_funnel_stage_and_tier_is_translated() -> None:
    for identifier in (*FUNNEL_STAGES, "hot", "warm", "cold"):
        assert identifier in DISPLAY
        assert display("zh", identifier) != display("en", identifier)
    assert display("en", "something_new") == "something_new"
    assert display("zh", None) == "" and LANGS == ("zh", "en")


def test_numbers_percentages_and_moments() -> None:
    assert number(1234567) == "1,234,567" and number(2.5, 1) == "2.5"
    assert number(None) == "–" and number(0.4) == "0"
    assert percent(0.256) == "25.6%" and percent(None) == "–"
    assert moment(datetime(2026, 3, 26, 14, 5, 59, tzinfo=UTC)) == "2026-03-26 14:05"
    assert moment(date(2026, 3, 26)) == "2026-03-26" and moment(None) == "–"


def test_file_names_are_cluster_and_fair_made_path_safe() -> None:
    assert file_stem("keqiao", "CIFW-2026-AW") == "report-keqiao-CIFW-2026-AW"
    assert file_stem("keqiao", None) == "report-keqiao-none"
    assert file_stem("keqiao", "../x y") == "report-keqiao-.._x_y"
    assert "/" not in file_stem("keqiao", "a/b")

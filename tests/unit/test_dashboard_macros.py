"""The macro expander says exactly what GRAFANA.md's table says the plugin does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from dashboards.macros import GRAFANA_POINTS, MacroError, TimeRange, expand, substitute

START = datetime(2026, 3, 26, 1, 30, 0, 250000, tzinfo=UTC)  # 1774488600.25
END = datetime(2026, 3, 26, 10, 0, tzinfo=UTC)  # 1774519200
RANGE = TimeRange(START, END, interval_s=300)
F, T = 1774488600, 1774519200
FMS, TMS = 1774488600250, 1774519200000


@pytest.mark.parametrize(("sql", "expected"), [
    ("$__timeFilter(minute)", f"minute >= toDateTime({F}) AND minute <= toDateTime({T})"),
    ("$__timeFilter_ms(at)",
     f"at >= fromUnixTimestamp64Milli({FMS}) AND at <= fromUnixTimestamp64Milli({TMS})"),
    ("$__dateFilter(day)", "day >= toDate('2026-03-26') AND day <= toDate('2026-03-26')"),
    ("$__fromTime", f"toDateTime({F})"),
    ("$__toTime", f"toDateTime({T})"),
    ("$__fromTime_ms", f"fromUnixTimestamp64Milli({FMS})"),
    ("$__toTime_ms - INTERVAL 30 MINUTE", f"fromUnixTimestamp64Milli({TMS}) - INTERVAL 30 MINUTE"),
    ("$__timeInterval(at)", "toStartOfInterval(toDateTime(at), INTERVAL 300 second)"),
    ("$__timeInterval_ms(at)",
     "toStartOfInterval(toDateTime64(at, 3), INTERVAL 300000 millisecond)"),
    ("sum(v) / $__interval_s", "sum(v) / 300"),
])
def test_each_macro_becomes_what_the_plugin_sends(sql: str, expected: str) -> None:
    assert expand(sql, RANGE) == expected


def test_macro_arguments_may_hold_calls_and_quoted_parentheses() -> None:
    sql = "WHERE $__timeFilter_ms(toDateTime64(coalesce(a, b), 3)) AND x = ')'"
    assert expand(sql, RANGE) == (
        f"WHERE toDateTime64(coalesce(a, b), 3) >= fromUnixTimestamp64Milli({FMS})"
        f" AND toDateTime64(coalesce(a, b), 3) <= fromUnixTimestamp64Milli({TMS})"
        " AND x = ')'")


def test_a_range_in_another_zone_is_the_same_instant() -> None:
    shanghai = timezone(timedelta(hours=8))
    local = TimeRange(START.astimezone(shanghai), END.astimezone(shanghai), 300)
    assert expand("$__timeFilter(t)", local) == expand("$__timeFilter(t)", RANGE)
    assert expand("$__dateFilter(t)", local) == expand("$__dateFilter(t)", RANGE)  # UTC dates


def test_variables_are_quoted_as_their_format_says() -> None:
    values = {"fair": "O'Hara \\ fair", "n": "7"}
    assert substitute("${fair:singlequote}", values) == "'O\\'Hara \\\\ fair'"
    assert substitute("${fair:sqlstring}", values) == "'O''Hara \\ fair'"
    assert substitute("LIMIT ${n}", values) == "LIMIT 7"


def test_conditional_all_drops_the_condition_for_all_or_empty() -> None:
    sql = "WHERE $__conditionalAll(cluster_id IN (${c:singlequote}), $c)"
    assert expand(sql, RANGE, {"c": "keqiao"}) == "WHERE cluster_id IN ('keqiao')"
    assert expand(sql, RANGE, {"c": "$__all"}) == "WHERE 1=1"
    assert expand(sql, RANGE, {"c": ""}) == "WHERE 1=1"


@pytest.mark.parametrize(("sql", "reason"), [
    ("$__timeGroup(at, 1m)", "unknown macro $__timeGroup"),
    ("$__columns", "unknown macro $__columns"),
    ("${nope:singlequote}", "variable ${nope} is not defined"),
    ("${fair:csv}", "format :csv is not supported"),
    ("$__timeFilter(a, b)", "expected one column"),
    ("$__timeFilter", "needs its arguments in parentheses"),
    ("$__timeFilter(at", "is not closed"),
])
def test_what_the_plugin_cannot_expand_is_refused(sql: str, reason: str) -> None:
    with pytest.raises(MacroError, match=reason.replace("$", r"\$").replace("{", r"\{")
                       .replace("}", r"\}").replace("(", r"\(")):
        expand(sql, RANGE, {"fair": "f"})


def test_a_time_range_is_timezone_aware_with_a_positive_interval() -> None:
    with pytest.raises(MacroError):
        TimeRange(START.replace(tzinfo=None), END)
    with pytest.raises(MacroError):
        TimeRange(START, END, interval_s=0)


def test_a_spanning_range_takes_grafanas_interval_and_utc() -> None:
    # naive, as the engine returns DateTime64 'UTC' values
    naive = datetime(2026, 3, 26, 1, 0, tzinfo=UTC).replace(tzinfo=None)
    span = TimeRange.spanning(naive, "2026-03-26T10:00:00+08:00")
    assert span.start == naive.replace(tzinfo=UTC) and span.end == datetime(2026, 3, 26, 2, 0,
                                                                             tzinfo=UTC)
    assert span.interval_s == 3600 // GRAFANA_POINTS == 3
    assert TimeRange.spanning(naive, naive).interval_s == 1

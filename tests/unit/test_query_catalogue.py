"""The named queries as values: registry tables only, the database a parameter, typed
parameters bound as literals, results checked against their declared columns."""

from __future__ import annotations

import re

import pytest

from core import queries as q
from core.reads import QueryResult
from schemas.registry import TABLES_BY_NAME

DB = "db_sentinel"  # a database name no query could spell by accident


def tables_named(sql: str) -> set[str]:
    """Tables the SQL text names as ``<DB>.<table>`` (our own texts: a test may read them)."""
    return set(re.findall(rf"\b{DB}\.(\w+)", sql))


@pytest.mark.parametrize("named", q.CATALOGUE, ids=lambda n: n.name)
def test_every_table_a_query_names_exists_in_the_registry(named: q.NamedQuery) -> None:
    named_tables = tables_named(named.sql(DB))
    assert named_tables, f"{named.name} names no table on the given database"
    assert named_tables <= set(TABLES_BY_NAME), named_tables - set(TABLES_BY_NAME)
    assert named_tables == {t.name for t in named.reads}, "declared reads differ from the SQL"
    assert all(TABLES_BY_NAME[t.name] is t for t in named.reads)


@pytest.mark.parametrize("named", q.CATALOGUE, ids=lambda n: n.name)
def test_the_database_is_a_parameter_of_every_query(named: q.NamedQuery) -> None:
    assert named.sql("one_db").replace("one_db.", "other_db.") == named.sql("other_db")
    assert "leadloom." not in named.sql(DB)


@pytest.mark.parametrize("named", q.CATALOGUE, ids=lambda n: n.name)
def test_every_query_declares_its_columns_parameters_and_purpose(named: q.NamedQuery) -> None:
    assert named.description and named.columns
    assert len(set(named.columns)) == len(named.columns)
    text = named.sql(DB)
    for p in named.params:
        assert p.placeholder in text, f"{named.name}: {p.placeholder} is not in its SQL"
    assert "{" not in named.bind(DB, {p.name: "x" for p in named.params})


def test_names_are_unique_and_the_catalogue_is_indexed_by_them() -> None:
    assert len(q.BY_NAME) == len(q.CATALOGUE)
    assert all(q.BY_NAME[n.name] is n for n in q.CATALOGUE)


def test_parameters_are_bound_as_typed_literals_and_must_all_be_given() -> None:
    sql = q.LEADS_BY_MINUTE.bind(DB, {"cluster": "ke'qiao"})
    assert "cluster_id = CAST('ke\\'qiao' AS String)" in sql
    with pytest.raises(ValueError, match="missing"):
        q.LEADS_BY_MINUTE.bind(DB)
    with pytest.raises(ValueError, match="unknown"):
        q.EVENTS_STORED.bind(DB, {"cluster": "keqiao"})


def test_run_shapes_rows_and_refuses_other_columns_than_declared() -> None:
    seen: list[str] = []

    def query(sql: str) -> QueryResult:
        seen.append(sql)
        return QueryResult(["reason", "dead_letters"], [["bad_json", 2], ["oversized", 1]])

    assert q.run(q.DEAD_LETTERS_BY_REASON, query, DB) == {"bad_json": 2, "oversized": 1}
    assert seen == [q.DEAD_LETTERS_BY_REASON.sql(DB)]
    with pytest.raises(q.QueryShapeError, match="declared"):
        q.run(q.EVENTS_STORED, query, DB)


def test_lead_counts_list_every_reference_cluster_and_any_other_stored() -> None:
    def query(sql: str) -> QueryResult:
        return QueryResult(list(q.LEADS_BY_CLUSTER.columns), [["keqiao", 3, 1, 0, 2],
                                                               ["", 1, 0, 0, 1]])

    leads = q.run(q.LEADS_BY_CLUSTER, query, DB)
    assert leads["keqiao"] == {"scans": 3, "inquiries": 1, "procurement_steps": 0,
                               "distinct_badges": 2}
    assert leads[""]["scans"] == 1
    assert leads["humen"] == dict.fromkeys(q.LEAD_COUNTERS, 0)

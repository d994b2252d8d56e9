"""Migration files: numbered, safe to re-run, and with a ClickHouse-cluster variant."""

from __future__ import annotations

from core.migrations import on_cluster, parse_statements, split_statements
from tests.factories.stores import MIGRATIONS

STATEMENTS = [s for m in MIGRATIONS for s in parse_statements(m.sql)]


def test_migrations_are_numbered_without_gaps() -> None:
    versions = [m.version for m in MIGRATIONS]
    assert versions == list(range(1, len(versions) + 1))


def test_every_statement_is_idempotent_or_guarded() -> None:
    # A migration interrupted midway runs again from its first statement: each one either
    # is a no-op the second time, or runs only while its guard (a query on the store's
    # state) says it has not taken effect yet.
    for statement in STATEMENTS:
        head = statement.sql.split("(")[0]
        if head.startswith(("INSERT", "EXCHANGE", "RENAME")):
            assert statement.when.startswith("SELECT "), statement.sql[:60]
        elif head.startswith("DROP"):
            assert "IF EXISTS" in head, statement.sql[:60]
        else:
            assert "IF NOT EXISTS" in head, statement.sql[:60]


def test_guards_and_comments_stay_out_of_the_statements() -> None:
    sql = """
    -- a comment; with a semicolon
    CREATE TABLE IF NOT EXISTS {database}.a (x UInt8) ENGINE = MergeTree ORDER BY x;

    -- Why this runs: a comment before the guard is not part of it.
    -- when: SELECT count() FROM system.tables
    --       WHERE name = 'a'
    EXCHANGE TABLES {database}.a AND {database}.b;
    DROP TABLE IF EXISTS {database}.b
    """
    first, second, third = parse_statements(sql)
    assert first.when == "" and first.sql.endswith("ORDER BY x")
    assert second.when == "SELECT count() FROM system.tables WHERE name = 'a'"
    assert second.sql == "EXCHANGE TABLES {database}.a AND {database}.b"
    assert third.when == "" and third.sql == "DROP TABLE IF EXISTS {database}.b"
    assert split_statements(sql) == [first.sql, second.sql, third.sql]


def test_cluster_variant_replicates_tables_and_runs_ddl_on_every_node() -> None:
    kinds = set()
    for statement in (s.sql for s in STATEMENTS):
        variant = on_cluster(statement, "fair")
        kinds.add(statement.split()[0])
        if statement.startswith("INSERT"):
            # one node writes; the replicated table copies the rows to the others
            assert variant == statement
            continue
        assert "ON CLUSTER 'fair'" in variant.splitlines()[0], variant.splitlines()[0]
        assert variant.count("ON CLUSTER") == 1
        if "MergeTree" in statement:
            assert "ENGINE = Replicated" in variant
            assert "ReplicatedReplicated" not in variant
    assert kinds >= {"CREATE", "ALTER", "INSERT", "EXCHANGE", "DROP"}


def test_cluster_clause_goes_where_each_statement_kind_takes_it() -> None:
    assert on_cluster("EXCHANGE TABLES d.a AND d.b", "c") == (
        "EXCHANGE TABLES d.a AND d.b ON CLUSTER 'c'")
    assert on_cluster("DROP TABLE IF EXISTS d.a", "c") == "DROP TABLE IF EXISTS d.a ON CLUSTER 'c'"
    assert on_cluster("RENAME TABLE d.v TO d.v_live", "c") == (
        "RENAME TABLE d.v TO d.v_live ON CLUSTER 'c'")
    assert on_cluster("TRUNCATE TABLE d.a", "c") == "TRUNCATE TABLE d.a ON CLUSTER 'c'"
    assert on_cluster("DROP DATABASE IF EXISTS d", "c") == (
        "DROP DATABASE IF EXISTS d ON CLUSTER 'c'")
    assert on_cluster("ALTER TABLE d.a ADD COLUMN IF NOT EXISTS x UInt8", "c") == (
        "ALTER TABLE d.a ON CLUSTER 'c' ADD COLUMN IF NOT EXISTS x UInt8")
    assert on_cluster("CREATE VIEW IF NOT EXISTS d.v AS\nSELECT 1", "c") == (
        "CREATE VIEW IF NOT EXISTS d.v ON CLUSTER 'c' AS\nSELECT 1")

"""Migration files: numbered, idempotent, and with a ClickHouse-cluster variant."""

from __future__ import annotations

from core.migrations import on_cluster, split_statements
from tests.factories.stores import MIGRATIONS


def test_migrations_are_numbered_without_gaps() -> None:
    versions = [m.version for m in MIGRATIONS]
    assert versions == list(range(1, len(versions) + 1))


def test_every_statement_is_idempotent() -> None:
    for name, sql in ((m.name, m.sql) for m in MIGRATIONS):
        for statement in split_statements(sql):
            assert "IF NOT EXISTS" in statement.split("(")[0], (name, statement[:60])


def test_cluster_variant_replicates_tables_and_creates_views_everywhere() -> None:
    statements = [s for sql in (m.sql for m in MIGRATIONS) for s in split_statements(sql)]
    variants = [on_cluster(s, "fair") for s in statements]
    for original, variant in zip(statements, variants, strict=True):
        assert "ON CLUSTER 'fair'" in variant.splitlines()[0]
        if "MergeTree" in original:
            assert "ENGINE = Replicated" in variant
            assert "ReplicatedReplicated" not in variant

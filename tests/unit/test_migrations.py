"""Migration files: numbered, idempotent, and with a ClickHouse-cluster variant."""

from __future__ import annotations

from leadloom.store import migration_files, on_cluster, split_statements


def test_migrations_are_numbered_without_gaps() -> None:
    versions = [v for v, _, _ in migration_files()]
    assert versions == list(range(1, len(versions) + 1))


def test_every_statement_is_idempotent() -> None:
    for _, name, sql in migration_files():
        for statement in split_statements(sql):
            assert "IF NOT EXISTS" in statement.split("(")[0], (name, statement[:60])


def test_cluster_variant_replicates_tables_and_creates_views_everywhere() -> None:
    statements = [s for _, _, sql in migration_files() for s in split_statements(sql)]
    variants = [on_cluster(s, "fair") for s in statements]
    for original, variant in zip(statements, variants, strict=True):
        assert "ON CLUSTER 'fair'" in variant.splitlines()[0]
        if "MergeTree" in original:
            assert "ENGINE = Replicated" in variant
            assert "ReplicatedReplicated" not in variant

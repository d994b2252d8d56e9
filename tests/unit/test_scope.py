"""Scopes as pure logic: roles, cluster ids, which tables each may name, its filters."""

from __future__ import annotations

import pytest

from schemas.reference import CLUSTERS
from schemas.registry import ALL_TABLES, BUYERS, INQUIRIES, REGISTRATIONS, SCANS
from schemas.scope import (
    DELEGATION_TABLES,
    DENY,
    OPS_SCOPE,
    ORGANIZER_SCOPE,
    SYSTEM_READABLE,
    Role,
    Scope,
    delegation_scope,
    filters_literal,
)

DB = "leadloom"
TABLES = (
    [(DB, t.name) for t in ALL_TABLES]
    + [(DB, "scans__next"), ("other", "scans"), ("information_schema", "tables"),
       ("INFORMATION_SCHEMA", "TABLES")]
    + [("system", t) for t in sorted(SYSTEM_READABLE)]
    + [("system", t) for t in ("parts", "processes", "query_log", "numbers", "merges")]
)


def test_delegation_scope_knows_the_clusters() -> None:
    scope = delegation_scope(CLUSTERS[0].id)
    assert scope.role is Role.DELEGATION and scope.cluster_id == CLUSTERS[0].id
    assert scope.name == f"delegation_{CLUSTERS[0].id}"
    with pytest.raises(ValueError, match="unknown cluster"):
        delegation_scope("atlantis")
    with pytest.raises(ValueError):
        Scope(Role.ORGANIZER, CLUSTERS[0].id)
    with pytest.raises(ValueError):
        Scope(Role.DELEGATION)


def test_delegation_tables_are_registry_tables_and_exclude_contact_data() -> None:
    names = {t.name for t in ALL_TABLES}
    assert set(DELEGATION_TABLES) <= names and "delegation_buyers" in DELEGATION_TABLES
    assert SCANS.name in DELEGATION_TABLES
    for private in (INQUIRIES, REGISTRATIONS, BUYERS):
        assert private.name not in DELEGATION_TABLES


def test_may_read() -> None:
    scope = delegation_scope(CLUSTERS[1].id)
    assert scope.may_read(DB, SCANS.name) and scope.may_read(DB, f"{DB}.{SCANS.name}")
    assert not scope.may_read(DB, INQUIRIES.name)
    assert scope.may_read("system", "one") and scope.may_read(DB, "system.settings")
    assert not scope.may_read("system", "parts")
    for admin in (ORGANIZER_SCOPE, OPS_SCOPE):
        assert admin.may_read(DB, INQUIRIES.name) and admin.may_read(DB, "buyers")
        assert not admin.may_read("system", "processes")
        assert not admin.may_read("information_schema", "tables")


def test_delegation_filters_cover_every_existing_table() -> None:
    cluster = CLUSTERS[2].id
    filters = delegation_scope(cluster).table_filters(DB, TABLES)
    unfiltered = {f"{db}.{t}" for db, t in TABLES} - set(filters)
    # only the harmless system tables go unfiltered
    assert unfiltered == {f"system.{t}" for t in SYSTEM_READABLE - {"tables", "columns",
                                                                    "databases"}}
    for db, table in TABLES:
        key = f"{db}.{table}"
        if db == DB and table in DELEGATION_TABLES:
            assert filters[key] == f"{DELEGATION_TABLES[table]} = '{cluster}'"
        elif db != "system" or table not in SYSTEM_READABLE:
            assert filters[key] == DENY, key
    assert filters["system.databases"] == f"name = '{DB}'"
    assert "'scans'" in filters["system.tables"] and "'inquiries'" not in filters["system.tables"]
    assert f"database = '{DB}'" in filters["system.columns"]


def test_organizer_gets_no_deny_on_its_own_database_but_the_raw_archive() -> None:
    for admin in (ORGANIZER_SCOPE, OPS_SCOPE):
        filters = admin.table_filters(DB, TABLES)
        denied = [k for k in filters if k.startswith(f"{DB}.")]
        # the raw archive (contact data in clear) is for ops alone
        assert denied == ([] if admin is OPS_SCOPE else [f"{DB}.raw_archive"])
        assert admin.may_read(DB, "raw_archive") is (admin is OPS_SCOPE)
        assert filters["other.scans"] == DENY and filters["system.parts"] == DENY
        assert filters["information_schema.tables"] == DENY
        assert "'inquiries'" in filters["system.tables"]


def test_quotes_are_escaped() -> None:
    filters = ORGANIZER_SCOPE.table_filters("we'ird", [("we'ird", "x"), ("system", "databases")])
    assert filters == {"system.databases": "name = 'we\\'ird'"}
    assert filters_literal(filters) == "{'system.databases': 'name = \\'we\\\\\\'ird\\''}"

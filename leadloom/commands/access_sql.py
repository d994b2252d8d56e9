"""``leadloom access sql``: the delegation access model as SQL for a ClickHouse server.

On the embedded engine the store's owner enforces a scope on each session
(``schemas.scope``). A ClickHouse server decides with its own users, settings profiles,
grants and row policies; this command prints them, for an administrator to review and run
(``clickhouse-client --multiquery < access.sql``). It connects to nothing.

What it prints, for the database ``--database`` (default ``LEADLOOM_CLICKHOUSE_DATABASE``):
- a settings profile ``leadloom_readonly``: ``readonly = 1`` (no writes, DDL or setting
  changes) and ``max_execution_time`` = the embedded reads' limit;
- the users ``organizer``, ``ops`` and ``delegation_<cluster>`` for every cluster of
  ``schemas.reference``, each with that profile and the database as default;
- grants: SELECT on the whole database to organizer and ops; to each delegation SELECT on
  its ``DELEGATION_TABLES`` only; to everyone SELECT on the ``SYSTEM_READABLE`` system
  tables (they matter once the server sets ``select_from_system_db_requires_grant``);
- a row policy per (delegation, table of ``DELEGATION_TABLES``): ``cluster_id = '<id>'``,
  and one permissive ``USING 1`` policy per table for organizer and ops. Once a table has
  a row policy, a user named in none of its policies reads no row of it: any other reader
  (the compose recipe's ``grafana`` user, say) needs a policy of its own;
- the ``OPS_ONLY_TABLES`` (the raw archive) get one policy, ``USING 1`` for ops alone: the
  organizer reads no row of them.

Passwords. LeadLoom's users file holds scrypt hashes, which a ClickHouse server cannot
check, and this command never prints a password. A user's password is taken from
``LEADLOOM_GRAFANA_CH_PASSWORD_<NAME>`` (the variable Grafana's provisioning reads for that
user's data source) and printed as ``IDENTIFIED WITH sha256_hash BY '<hex>' SALT '<salt>'``
(SHA-256 of password + salt, as the server computes it). Without that variable the user is
created locked: the hash of 32 random bytes nobody knows, so running the script as it is
never creates an account without a password or with a guessable one; ``ALTER USER <name>
IDENTIFIED BY '...'`` opens it. Statements use ``IF NOT EXISTS``: running the script again
changes nothing, and an existing user keeps its password.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from core.reads import READ_TIME_LIMIT_S
from schemas.reference import CLUSTERS
from schemas.scope import (
    DELEGATION_TABLES,
    OPS_ONLY_TABLES,
    OPS_SCOPE,
    ORGANIZER_SCOPE,
    SYSTEM_DATABASE,
    SYSTEM_READABLE,
    Role,
    Scope,
    delegation_scope,
)

PROFILE = "leadloom_readonly"
PASSWORD_ENV_PREFIX = "LEADLOOM_GRAFANA_CH_PASSWORD_"
ALL_ROWS_POLICY = "leadloom_all_rows"
_PLAIN_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def identifier(name: str) -> str:
    """``name`` as a ClickHouse identifier (back-quoted unless plain)."""
    if _PLAIN_IDENTIFIER.match(name):
        return name
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def literal(text: str) -> str:
    """``text`` as a ClickHouse string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def server_scopes() -> list[Scope]:
    """Every user of the model: organizer, ops, then a delegation per cluster."""
    return [ORGANIZER_SCOPE, OPS_SCOPE] + [delegation_scope(c.id) for c in CLUSTERS]


def password_env(name: str) -> str:
    """The variable holding ``name``'s ClickHouse password (Grafana's provisioning too)."""
    return PASSWORD_ENV_PREFIX + name.upper()


def identified(name: str, environ: Mapping[str, str]) -> tuple[str, bool]:
    """The IDENTIFIED clause of ``name`` and whether a password was given (module
    docstring): salted SHA-256 of the variable's value, else of random bytes (locked)."""
    password = environ.get(password_env(name), "")
    secret = password.encode("utf-8") if password else secrets.token_bytes(32)
    salt = secrets.token_hex(16)
    digest = hashlib.sha256(secret + salt.encode("ascii")).hexdigest()
    return f"IDENTIFIED WITH sha256_hash BY {literal(digest)} SALT {literal(salt)}", bool(password)


@dataclass(frozen=True)
class AccessModel:
    database: str
    statements: tuple[str, ...]
    users: tuple[dict[str, object], ...]
    row_policies: int


def build(database: str, environ: Mapping[str, str] | None = None,
          time_limit_s: float = READ_TIME_LIMIT_S) -> AccessModel:
    """The statements of the model for ``database`` (module docstring), in running order."""
    environ = os.environ if environ is None else environ
    db = identifier(database)
    scopes = server_scopes()
    admins = ", ".join(s.name for s in scopes if s.role is not Role.DELEGATION)
    out = [f"CREATE SETTINGS PROFILE IF NOT EXISTS {PROFILE} SETTINGS readonly = 1,"
           f" max_execution_time = {int(time_limit_s)}"]
    users: list[dict[str, object]] = []
    for scope in scopes:
        clause, given = identified(scope.name, environ)
        out.append(f"CREATE USER IF NOT EXISTS {scope.name} {clause} DEFAULT DATABASE {db}"
                   f" SETTINGS PROFILE {literal(PROFILE)}")
        users.append({"name": scope.name, "role": str(scope.role),
                      "cluster_id": scope.cluster_id,
                      "password": "from " + password_env(scope.name) if given else "locked"})
    everyone = ", ".join(s.name for s in scopes)
    for table in sorted(SYSTEM_READABLE):
        out.append(f"GRANT SELECT ON {SYSTEM_DATABASE}.{table} TO {everyone}")
    out.append(f"GRANT SELECT ON {db}.* TO {admins}")
    # The organizer reads the database but not these: a policy naming ops alone leaves
    # every other user no row of the table.
    for table in sorted(OPS_ONLY_TABLES):
        out.append(f"CREATE ROW POLICY IF NOT EXISTS leadloom_ops_only ON {db}."
                   f"{identifier(table)} AS PERMISSIVE FOR SELECT USING 1 TO {OPS_SCOPE.name}")
    delegations = [s for s in scopes if s.role is Role.DELEGATION]
    policies = 0
    for table, column in DELEGATION_TABLES.items():
        target = f"{db}.{identifier(table)}"
        out.append(f"GRANT SELECT ON {target} TO {', '.join(s.name for s in delegations)}")
        out.append(f"CREATE ROW POLICY IF NOT EXISTS {ALL_ROWS_POLICY} ON {target}"
                   f" AS PERMISSIVE FOR SELECT USING 1 TO {admins}")
        for scope in delegations:
            out.append(f"CREATE ROW POLICY IF NOT EXISTS leadloom_{scope.name} ON {target}"
                       f" AS PERMISSIVE FOR SELECT USING {identifier(column)} ="
                       f" {literal(scope.cluster_id or '')} TO {scope.name}")
            policies += 1
    return AccessModel(database, tuple(out), tuple(users), policies)


def render(model: AccessModel) -> str:
    """The model as a script: a header of comments, then one statement per line."""
    locked = [str(u["name"]) for u in model.users if u["password"] == "locked"]
    header = [
        f"-- LeadLoom access model for database {model.database}: review, then run as an"
        " administrator",
        "-- (clickhouse-client --multiquery < this file). Generated by 'leadloom access sql'.",
        f"-- {len(model.users)} users with the settings profile {PROFILE} (readonly = 1);"
        f" {model.row_policies} delegation row policies.",
        "-- Users not named in a table's row policies read no row of it: give any other"
        " reader a policy.",
        "-- Set select_from_system_db_requires_grant = 1 on the server so that the system"
        " grants below decide.",
    ]
    if locked:
        header.append(f"-- Locked (no {PASSWORD_ENV_PREFIX}<NAME> set): {', '.join(locked)};"
                      " open with ALTER USER <name> IDENTIFIED BY '...'.")
    return "\n".join(header + [f"{s};" for s in model.statements]) + "\n"

"""``leadloom users add|list|remove``: the users of the store's HTTP interface.

The users file is ``core.users.users_path`` (``<data_dir>/users.json``, mode 0600). A
password is never an argument (it would sit in the shell history and the process list):
``add`` reads it from stdin with ``--password-stdin`` (one line), else asks twice without
echo on a terminal, else takes ``LEADLOOM_NEW_USER_PASSWORD``; an empty one is refused.
Nothing prints a hash or a password. Failures are ``UsersError`` (one line).
"""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Callable
from typing import Any, TextIO

from core.settings import Settings
from core.users import User, Users, UsersError, check_name, scope_of, users_path

PASSWORD_ENV = "LEADLOOM_NEW_USER_PASSWORD"


def read_password(from_stdin: bool, stdin: TextIO | None = None,
                  environ: dict[str, str] | None = None) -> str:
    """The new user's password (module docstring for where from); UsersError if none."""
    stdin = sys.stdin if stdin is None else stdin
    environ = dict(os.environ) if environ is None else environ
    if from_stdin:
        password = stdin.readline().rstrip("\r\n")
    elif stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise UsersError("the passwords differ")
    elif PASSWORD_ENV in environ:
        password = environ[PASSWORD_ENV]
    else:
        raise UsersError(f"no password: use --password-stdin, a terminal or {PASSWORD_ENV}")
    if not password:
        raise UsersError("empty password refused")
    return password


def _row(user: User | None) -> dict[str, object]:
    assert user is not None
    return {"name": user.name, "role": str(user.scope.role), "cluster_id": user.scope.cluster_id}


def add(settings: Settings, name: str, role: str, cluster_id: str | None,
        password: Callable[[], str], progress: Callable[[str], None]) -> dict[str, object]:
    """Add a user; the summary ``--json`` prints: ``{"file", "user": {name, role,
    cluster_id}, "users"}``. The name and scope are checked before the password is asked."""
    path = users_path(settings)
    users = Users.load(path)
    check_name(name)
    scope = scope_of(role, cluster_id)
    if users.get(name) is not None:
        raise UsersError(f"user {name!r} exists; remove it first to change it")
    users = users.add(name, scope, password())
    users.save(path)
    progress(f"added user {name} ({scope.role}{' ' + cluster_id if cluster_id else ''})"
             f" to {path}")
    return {"file": str(path), "user": _row(users.get(name)), "users": len(users)}


def list_users(settings: Settings) -> dict[str, Any]:
    """``{"file", "users": [{name, role, cluster_id}, ...]}``: never a hash."""
    path = users_path(settings)
    return {"file": str(path), "users": [_row(u) for u in Users.load(path)]}


def remove(settings: Settings, name: str, progress: Callable[[str], None]) -> dict[str, object]:
    """Remove a user; ``{"file", "removed", "users"}``."""
    path = users_path(settings)
    users = Users.load(path).remove(name)
    users.save(path)
    progress(f"removed user {name} from {path}")
    return {"file": str(path), "removed": name, "users": len(users)}

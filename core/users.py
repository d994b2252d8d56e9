"""LeadLoom's own users: who may read the store through its HTTP interface, with what scope.

The users file (:func:`users_path`: ``<data_dir>/users.json``) holds, per user, a name, a
role (``schemas.scope.Role``), a cluster for a delegation and a password hash; never a
password. Names are ``organizer``, ``ops`` and ``delegation_<cluster_id>`` by convention
(any ``^[a-z][a-z0-9_]{0,63}$`` except the reserved ``default`` and ``leadloom_local``, the
engine's and the store owner's own).

Contract
--------
- Hashes are ``scrypt$<n>$<r>$<p>$<salt>$<key>`` (``hashlib.scrypt``, a random 16-byte salt
  per user, base64): a stolen file costs a guesser 16 MiB and tens of milliseconds per try.
- :meth:`Users.verify` compares in constant time (``hmac.compare_digest``) and hashes even
  for an unknown name, so the answer time does not tell which names exist.
- :meth:`Users.save` writes atomically with mode 0600: a temporary file in the same
  directory, fsynced, then renamed over the old one; a reader sees the old file or the new.
- :class:`Users` is immutable: ``add`` and ``remove`` return a new one.
- Every failure is a :class:`UsersError` with a one-line reason: a file that is not JSON or
  lacks a field, an unknown role or cluster, a bad or reserved name, an empty password, a
  name added twice or removed while absent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from core.settings import Settings
from schemas.scope import Role, Scope, delegation_scope

USERS_FILE = "users.json"
FILE_VERSION = 1
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
RESERVED_NAMES = frozenset({"default", "leadloom_local"})
# scrypt cost: n=2^14, r=8 uses 16 MiB per hash (128*r*n bytes), ~50 ms on one core.
SCRYPT_N, SCRYPT_R, SCRYPT_P, KEY_BYTES, SALT_BYTES = 2**14, 8, 1, 32, 16
_SCRYPT_MAXMEM = 64 * 1024 * 1024


class UsersError(ValueError):
    """A users file or request that cannot be honoured; the message is one line."""


@dataclass(frozen=True)
class User:
    name: str
    scope: Scope
    password_hash: str  # scrypt$n$r$p$salt$key (module docstring)


def users_path(settings: Settings) -> Path:
    """Where the users file of this installation is."""
    return settings.data_dir / USERS_FILE


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, salt: bytes | None = None) -> str:
    """The stored form of ``password`` with ``salt`` (default: a fresh random one)."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    key = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R,
                         p=SCRYPT_P, dklen=KEY_BYTES, maxmem=_SCRYPT_MAXMEM)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(key)}"


def _check_hash(password: str, stored: str) -> bool:
    """Does ``password`` match ``stored``? Constant-time in the key comparison."""
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(key, validate=True)
        got = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt, validate=True),
                             n=int(n), r=int(r), p=int(p), dklen=len(expected),
                             maxmem=_SCRYPT_MAXMEM)
    except ValueError:
        return False
    return hmac.compare_digest(got, expected)


# Checked against when the name is unknown, so that a miss costs what a hit costs.
_DUMMY_HASH = hash_password("", salt=b"\0" * SALT_BYTES)


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise UsersError(f"bad user name {name!r}: lower-case letters, digits and '_',"
                         " starting with a letter, at most 64")
    if name in RESERVED_NAMES:
        raise UsersError(f"user name {name!r} is reserved")
    return name


def scope_of(role: str, cluster_id: str | None) -> Scope:
    """The scope for a role name and cluster; UsersError for a bad pair."""
    try:
        parsed = Role(role)
    except ValueError:
        raise UsersError(f"unknown role {role!r}; one of: {', '.join(r.value for r in Role)}"
                         ) from None
    if parsed is Role.DELEGATION:
        if not cluster_id:
            raise UsersError("a delegation user needs a cluster (--cluster ID)")
        try:
            return delegation_scope(cluster_id)
        except ValueError as exc:
            raise UsersError(str(exc)) from None
    if cluster_id:
        raise UsersError(f"a cluster goes with the delegation role only, not {role}")
    return Scope(parsed)


class Users:
    """An immutable set of users (module docstring)."""

    def __init__(self, users: Iterator[User] | tuple[User, ...] = ()) -> None:
        self._by_name: dict[str, User] = {u.name: u for u in users}

    def __iter__(self) -> Iterator[User]:
        return iter(sorted(self._by_name.values(), key=lambda u: u.name))

    def __len__(self) -> int:
        return len(self._by_name)

    @classmethod
    def load(cls, path: Path) -> Users:
        """The users in ``path``; none if the file does not exist; UsersError if it is bad."""
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsersError(f"cannot read the users file {path}: {exc}") from None
        try:
            data = json.loads(text)
            if data.get("version") != FILE_VERSION:
                raise UsersError(f"the users file {path} is not version {FILE_VERSION}")
            users = []
            for entry in data["users"]:
                scope = scope_of(entry["role"], entry.get("cluster_id"))
                hashed = entry["password_hash"]
                if not isinstance(hashed, str) or not hashed.startswith("scrypt$"):
                    raise UsersError(f"user {entry['name']!r} has no scrypt hash")
                users.append(User(check_name(entry["name"]), scope, hashed))
        except UsersError as exc:
            raise UsersError(f"bad users file {path}: {exc}") from None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UsersError(f"bad users file {path}: {exc.__class__.__name__}"
                             f" {str(exc).splitlines()[0] if str(exc) else ''}".rstrip()
                             ) from None
        names = [u.name for u in users]
        if len(set(names)) != len(names):
            raise UsersError(f"bad users file {path}: a name appears twice")
        return cls(tuple(users))

    def get(self, name: str) -> User | None:
        return self._by_name.get(name)

    def verify(self, name: str, password: str) -> User | None:
        """The user if ``password`` is theirs; None for an unknown name or a wrong password."""
        user = self._by_name.get(name)
        ok = _check_hash(password, user.password_hash if user else _DUMMY_HASH)
        return user if ok and user is not None else None

    def add(self, name: str, scope: Scope, password: str) -> Users:
        """These users and a new one; UsersError if the name exists or the password is empty."""
        check_name(name)
        if name in self._by_name:
            raise UsersError(f"user {name!r} exists; remove it first to change it")
        if not password:
            raise UsersError("empty password refused")
        return Users(tuple(self) + (User(name, scope, hash_password(password)),))

    def remove(self, name: str) -> Users:
        """These users without ``name``; UsersError if there is no such user."""
        if name not in self._by_name:
            raise UsersError(f"no user {name!r}")
        return Users(tuple(u for u in self if u.name != name))

    def save(self, path: Path) -> None:
        """Write the users to ``path`` atomically, mode 0600 (module docstring)."""
        data = {"version": FILE_VERSION, "users": [
            {"name": u.name, "role": str(u.scope.role), "cluster_id": u.scope.cluster_id,
             "password_hash": u.password_hash} for u in self]}
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            os.fchmod(fd, 0o600)  # mkstemp makes it 0600 already; say so whatever the umask
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, indent=2)
                handle.write("\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

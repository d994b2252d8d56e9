"""The users file and ``leadloom users``: hashes, constant-time checks, atomic 0600 writes,
one-line errors, and the command as a user runs it (through leadloom.cli.main)."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path

import pytest

from core import users as u
from core.users import Users, UsersError, hash_password
from leadloom.cli import main
from leadloom.commands.users import PASSWORD_ENV, read_password
from schemas.reference import CLUSTERS
from schemas.scope import ORGANIZER_SCOPE, Role, delegation_scope

CLUSTER = CLUSTERS[0].id


def test_hashes_are_salted_per_user_and_verify(tmp_path: Path) -> None:
    first, second = hash_password("s3cret"), hash_password("s3cret")
    assert first != second and first.startswith("scrypt$") and "s3cret" not in first
    users = Users().add("organizer", ORGANIZER_SCOPE, "s3cret").add(
        f"delegation_{CLUSTER}", delegation_scope(CLUSTER), "other")
    found = users.verify("organizer", "s3cret")
    assert found is not None and found.scope is ORGANIZER_SCOPE
    assert users.verify("organizer", "s3cret ") is None
    assert users.verify("organizer", "other") is None
    assert users.verify("nobody", "s3cret") is None
    delegation = users.verify(f"delegation_{CLUSTER}", "other")
    assert delegation is not None and delegation.scope.cluster_id == CLUSTER


def test_save_is_0600_and_load_gives_the_same_users(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "users.json"
    assert len(Users.load(path)) == 0  # a missing file: no users
    users = Users().add("ops", u.scope_of("ops", None), "pw1")
    users.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["users.json"]  # no temporary left
    loaded = Users.load(path)
    assert [(x.name, x.scope.role) for x in loaded] == [("ops", Role.OPS)]
    assert loaded.verify("ops", "pw1") is not None
    users.remove("ops").save(path)
    assert len(Users.load(path)) == 0 and stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize("text", [
    "not json", "[]", '{"version": 1}', '{"version": 2, "users": []}',
    '{"version": 1, "users": [{"name": "x", "role": "king", "password_hash": "scrypt$"}]}',
    '{"version": 1, "users": [{"name": "x", "role": "ops", "password_hash": "md5$1"}]}',
    '{"version": 1, "users": [{"name": "x", "role": "delegation", "cluster_id": "mars",'
    ' "password_hash": "scrypt$"}]}',
])
def test_a_bad_file_is_one_line(tmp_path: Path, text: str) -> None:
    path = tmp_path / "users.json"
    path.write_text(text)
    with pytest.raises(UsersError) as error:
        Users.load(path)
    assert "\n" not in str(error.value) and str(path) in str(error.value)


def test_refusals() -> None:
    users = Users().add("ops", u.scope_of("ops", None), "pw")
    for call in (lambda: users.add("ops", ORGANIZER_SCOPE, "pw"),
                 lambda: users.add("Bad-Name", ORGANIZER_SCOPE, "pw"),
                 lambda: users.add("leadloom_local", ORGANIZER_SCOPE, "pw"),
                 lambda: users.add("organizer", ORGANIZER_SCOPE, ""),
                 lambda: users.remove("nobody"),
                 lambda: u.scope_of("delegation", None),
                 lambda: u.scope_of("ops", CLUSTER),
                 lambda: u.scope_of("delegation", "atlantis")):
        with pytest.raises(UsersError):
            call()


def test_password_sources() -> None:
    assert read_password(True, io.StringIO("pw one\nrest\n"), {}) == "pw one"
    assert read_password(False, io.StringIO(""), {PASSWORD_ENV: "from env"}) == "from env"
    with pytest.raises(UsersError, match="no password"):
        read_password(False, io.StringIO(""), {})
    with pytest.raises(UsersError, match="empty"):
        read_password(True, io.StringIO("\n"), {})


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LEADLOOM_DATA_DIR", str(tmp_path))
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    return tmp_path


def _last_json(capsys: pytest.CaptureFixture[str]) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_the_command(data_dir: Path, monkeypatch: pytest.MonkeyPatch,
                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("hunter2\n"))
    assert main(["users", "add", f"delegation_{CLUSTER}", "--role", "delegation",
                 "--cluster", CLUSTER, "--password-stdin", "--json"]) == 0
    added = _last_json(capsys)
    assert added["user"] == {"name": f"delegation_{CLUSTER}", "role": "delegation",
                             "cluster_id": CLUSTER}
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    monkeypatch.setenv(PASSWORD_ENV, "env-pw")
    assert main(["users", "add", "organizer", "--role", "organizer"]) == 0
    out = capsys.readouterr()
    assert "env-pw" not in out.out + out.err and "hunter2" not in out.out + out.err
    assert main(["users", "list", "--json"]) == 0
    listed = capsys.readouterr().out
    assert "scrypt" not in listed
    assert [r["name"] for r in json.loads(listed.strip().splitlines()[-1])["users"]] == [
        f"delegation_{CLUSTER}", "organizer"]
    users = Users.load(data_dir / "users.json")
    assert users.verify("organizer", "env-pw") and users.verify(f"delegation_{CLUSTER}",
                                                                "hunter2")
    assert main(["users", "list"]) == 0
    assert "organizer" in capsys.readouterr().out
    assert main(["users", "remove", "organizer", "--json"]) == 0
    assert _last_json(capsys)["users"] == 1


@pytest.mark.parametrize("argv, reason", [
    (["users", "add", "ops", "--role", "ops", "--cluster", CLUSTER], "delegation role only"),
    (["users", "add", "d", "--role", "delegation"], "needs a cluster"),
    (["users", "add", "ops", "--role", "ops"], "no password"),
    (["users", "remove", "nobody"], "no user 'nobody'"),
])
def test_command_failures_are_one_line(data_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str], argv: list[str],
                                       reason: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("leadloom: error: ") and reason in err[0]
    assert not (data_dir / "users.json").exists()

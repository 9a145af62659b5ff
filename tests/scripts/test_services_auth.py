"""scripts/services_auth.py: users, stored passwords and tokens for both auth managers."""

from __future__ import annotations

import http.server
import json
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts.services_auth import (
    FAB_AUTH_MANAGER,
    AuthHelper,
    parse_users,
    write_private_json,
)
from scripts.services_config import ServicesError


@pytest.fixture
def token_server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """``/auth/token`` as both auth managers serve it: GET (all admins) and POST (login)."""
    seen: list[dict[str, Any]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            seen.append({"method": "GET"})
            self._answer(200, {"access_token": "anyone"})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append({"method": "POST", **body})
            if body == {"username": "viewer", "password": "pw-v"}:
                self._answer(201, {"access_token": "tok-viewer"})
            else:
                self._answer(401, {"detail": "Invalid credentials"})

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def _fab(tmp_path: Path, base_url: str = "http://127.0.0.1:1") -> AuthHelper:
    env = {"AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__AUTH_MANAGER": FAB_AUTH_MANAGER}
    return AuthHelper(env, base_url)


def test_parse_users_and_its_error() -> None:
    assert parse_users("admin:Admin, viewer:Viewer") == {"admin": "Admin", "viewer": "Viewer"}
    with pytest.raises(ServicesError, match="expected NAME:ROLE"):
        parse_users("admin")


def test_private_json_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    write_private_json(path, {"admin": "pw"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"admin": "pw"}


def test_fab_passwords_are_generated_once_per_user(tmp_path: Path) -> None:
    auth = _fab(tmp_path)
    assert auth.kind == "fab"
    new = auth.new_fab_passwords()
    assert sorted(new) == ["admin", "viewer"] and new["admin"] != new["viewer"]
    assert all(len(p) >= 16 for p in new.values())
    commands = auth.fab_user_commands(new)
    create = commands[0]["argv"]
    assert create[:7] == [
        "users",
        "create",
        "-u",
        "admin",
        "-r",
        "Admin",
        f"--password={new['admin']}",
    ]
    reset = ["users", "reset-password", "-u", "admin", f"--password={new['admin']}"]
    assert commands[1]["argv"] == reset
    assert commands[3]["argv"][3] == "viewer"
    auth.save_passwords(new)
    assert stat.S_IMODE(auth.passwords_file.stat().st_mode) == 0o600
    assert auth.password("viewer") == new["viewer"]
    assert auth.new_fab_passwords() == {}  # stored: nothing new to create


def test_simple_auth_manager_reads_airflows_generated_file(tmp_path: Path) -> None:
    auth = AuthHelper({"AIRFLOW_HOME": str(tmp_path)}, "http://x")
    assert (auth.kind, auth.users()) == ("simple", {"admin": "admin"})
    (tmp_path / "simple_auth_manager_passwords.json.generated").write_text('{"admin": "s3"}')
    assert auth.password() == "s3"
    assert auth.new_fab_passwords() == {}


def test_api_token_logs_in_with_the_stored_password(
    tmp_path: Path, token_server: tuple[str, list[dict[str, Any]]]
) -> None:
    url, seen = token_server
    auth = _fab(tmp_path, url)
    auth.save_passwords({"viewer": "pw-v", "admin": "wrong"})
    assert auth.api_token("viewer") == "tok-viewer"
    assert seen[-1] == {"method": "POST", "username": "viewer", "password": "pw-v"}
    with pytest.raises(ServicesError, match=r"login at .*/auth/token failed: 401"):
        auth.api_token("admin")
    with pytest.raises(ServicesError, match="no password stored for user 'ana'"):
        auth.api_token("ana")


def test_api_token_without_login_when_everyone_is_admin(
    tmp_path: Path, token_server: tuple[str, list[dict[str, Any]]]
) -> None:
    url, seen = token_server
    env = {"AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True"}
    assert AuthHelper(env, url).api_token() == "anyone"
    assert seen == [{"method": "GET"}]


def test_fab_user_commands_parse_with_a_password_that_looks_like_an_option(
    tmp_path: Path,
) -> None:
    # secrets.token_urlsafe starts with "-" one time in 64: `-p -x...` was an argparse
    # error (exit 2) that failed `make airflow` and the service stacks at random.
    from airflow.cli import cli_parser

    parser = cli_parser.get_parser()
    passwords = {"admin": "-Abc_123-xyz", "viewer": "--looks-like-a-flag"}
    for command in _fab(tmp_path).fab_user_commands(passwords):
        args = parser.parse_args(command["argv"])
        assert args.password == passwords[args.username], command["argv"][:2]


def test_fab_role_commands_let_new_viewers_read_the_plugin_list(tmp_path: Path) -> None:
    # The UI reads plugin pages from GET /api/v2/plugins (FAB: "can read on Plugins"),
    # which the stock Viewer role lacks: no "Models" entry and a 404 without this.
    auth = _fab(tmp_path)
    assert auth.fab_role_commands({"admin": "a", "viewer": "v"}) == [
        {
            "argv": ["roles", "add-perms", "Viewer", "-r", "Plugins", "-a", "can_read"],
            "capture": True,
        }
    ]
    assert auth.fab_role_commands({"admin": "a"}) == []  # Admin already has it
    assert auth.fab_role_commands({}) == []

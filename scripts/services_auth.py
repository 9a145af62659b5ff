"""Users, passwords and REST API tokens for the auth managers the profiles use.

- ``sqlite-local``: ``SimpleAuthManager`` (Airflow's development auth manager). Users and
  roles come from ``AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS`` (``admin:admin,
  viewer:viewer``); Airflow generates their passwords on the first start into
  ``$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated``. With
  ``SIMPLE_AUTH_MANAGER_ALL_ADMINS=True`` a token needs no login.
- ``postgres-celery``: the FAB auth manager (``apache-airflow-providers-fab``: users and
  roles in the metadata database). ``make airflow`` creates the users of
  ``CTR_AIRFLOW_FAB_USERS`` (``admin:Admin,viewer:Viewer``) with generated passwords,
  stores them in ``$AIRFLOW_HOME/ctr-airflow-users.json`` (mode 0600) and prints each one
  once, when it is created. Their roles other than Admin and Op also get ``can read on
  Plugins`` (:func:`AuthHelper.fab_role_commands`): the Airflow 3 UI learns a plugin's
  navigation entries and pages from ``GET /api/v2/plugins``, which FAB's stock Viewer
  and User roles may not read, so without it a viewer has no "Models" entry and a 404
  on ``/plugin/models``.

``AuthHelper.api_token(user)`` logs in over REST (``POST /auth/token``, which both
managers serve) with the stored password, so tests and scripts keep working when a
profile changes its auth manager.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from scripts.services_config import ServicesError

SIMPLE_AUTH_MANAGER = (
    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
)
FAB_AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
SIMPLE_PASSWORDS_FILE = "simple_auth_manager_passwords.json.generated"
FAB_USERS_FILE = "ctr-airflow-users.json"
DEFAULT_SIMPLE_USERS = "admin:admin"
DEFAULT_FAB_USERS = "admin:Admin,viewer:Viewer"
#: What a FAB role needs to see plugin pages in the UI (``GET /api/v2/plugins``).
PLUGINS_READ = ("Plugins", "can_read")
#: FAB roles that already have it.
ROLES_READING_PLUGINS = ("Admin", "Op")


def parse_users(spec: str) -> dict[str, str]:
    """``"admin:Admin,viewer:Viewer"`` -> ``{"admin": "Admin", "viewer": "Viewer"}``."""
    users: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, sep, role = item.partition(":")
        if not sep or not name.strip() or not role.strip():
            raise ServicesError(f"user {item!r}: expected NAME:ROLE, e.g. admin:Admin")
        users[name.strip()] = role.strip()
    return users


def write_private_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` to ``path`` atomically, readable by its owner only (0600)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


class AuthHelper:
    """Who can log in to one deployment, and how.

    Args:
        env: The deployment's environment (``AIRFLOW_HOME``, ``AIRFLOW__CORE__*``).
        base_url: The API server, e.g. ``http://127.0.0.1:8080``.
    """

    def __init__(self, env: Mapping[str, str], base_url: str) -> None:
        self.env = env
        self.base_url = base_url
        self.airflow_home = Path(env["AIRFLOW_HOME"])

    @property
    def kind(self) -> str:
        """``simple``, ``fab`` or ``other`` (an auth manager this project does not set up)."""
        manager = self.env.get("AIRFLOW__CORE__AUTH_MANAGER", SIMPLE_AUTH_MANAGER)
        if manager == FAB_AUTH_MANAGER:
            return "fab"
        return "simple" if manager == SIMPLE_AUTH_MANAGER else "other"

    @property
    def all_admins(self) -> bool:
        flag = self.env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "")
        return self.kind == "simple" and flag.lower() == "true"

    def users(self) -> dict[str, str]:
        """The configured users: name -> role."""
        if self.kind == "fab":
            return parse_users(self.env.get("CTR_AIRFLOW_FAB_USERS", DEFAULT_FAB_USERS))
        if self.kind == "simple":
            spec = self.env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", DEFAULT_SIMPLE_USERS)
            return parse_users(spec)
        return {}

    @property
    def passwords_file(self) -> Path:
        if self.kind == "fab":
            return self.airflow_home / FAB_USERS_FILE
        configured = self.env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")
        return Path(configured) if configured else self.airflow_home / SIMPLE_PASSWORDS_FILE

    def make_private(self) -> None:
        """``chmod 600`` the passwords file (Airflow generated it 0644 before we asked)."""
        with contextlib.suppress(FileNotFoundError):
            self.passwords_file.chmod(0o600)

    def passwords(self) -> dict[str, str]:
        try:
            data = json.loads(self.passwords_file.read_text())
        except (OSError, ValueError):
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def password(self, user: str = "admin") -> str | None:
        """The stored password of ``user`` (None: not created yet, or no login needed)."""
        return self.passwords().get(user)

    # -- FAB users

    def new_fab_passwords(self) -> dict[str, str]:
        """A generated password for each configured FAB user that has none stored yet."""
        if self.kind != "fab":
            return {}
        stored = self.passwords()
        return {u: secrets.token_urlsafe(12) for u in self.users() if u not in stored}

    def fab_user_commands(self, passwords: Mapping[str, str]) -> list[dict[str, Any]]:
        """``airflow users create`` + ``reset-password`` for each user (``airflow_cli``).

        ``create`` leaves an existing user as it is (a database kept from an earlier
        install), so ``reset-password`` then sets the password we store. The password
        is passed as ``--password=VALUE``: a generated one starts with ``-`` one time in
        64, which ``-p VALUE`` hands to argparse as an option (exit 2, no user).
        """
        roles = self.users()
        commands: list[dict[str, Any]] = []
        for user, password in passwords.items():
            create = ["users", "create", "-u", user, "-r", roles[user], f"--password={password}"]
            create += ["-e", f"{user}@localhost", "-f", user, "-l", roles[user]]
            reset = ["users", "reset-password", "-u", user, f"--password={password}"]
            commands += [{"argv": create, "capture": True}, {"argv": reset, "capture": True}]
        return commands

    def fab_role_commands(self, passwords: Mapping[str, str]) -> list[dict[str, Any]]:
        """``airflow roles add-perms ROLE... -r Plugins -a can_read`` for the roles of the
        users being created (``airflow_cli`` entries; none for Admin and Op, which have it).

        Only the plugin list: it grants no menu entry (``menu access on Plugins``) and no
        other page. It adds to the role, so run it after ``users create``.
        """
        roles = self.users()
        need = sorted({roles[u] for u in passwords if roles[u] not in ROLES_READING_PLUGINS})
        if not need:
            return []
        resource, action = PLUGINS_READ
        return [
            {"argv": ["roles", "add-perms", *need, "-r", resource, "-a", action], "capture": True}
        ]

    def save_passwords(self, passwords: Mapping[str, str]) -> None:
        """Add ``passwords`` to the 0600 store under ``AIRFLOW_HOME``."""
        if passwords:
            write_private_json(self.passwords_file, {**self.passwords(), **passwords})

    # -- REST API

    def api_token(self, user: str = "admin", password: str | None = None) -> str:
        """A REST API token for ``user`` (``Authorization: Bearer <token>``).

        Raises:
            ServicesError: No password is stored for ``user``, or the login failed.
        """
        if self.all_admins:
            return self._token_request(urllib.request.Request(f"{self.base_url}/auth/token"))
        password = password if password is not None else self.password(user)
        if password is None:
            raise ServicesError(
                f"no password stored for user {user!r} in {self.passwords_file}; start the "
                f"services once (make airflow) or pass the password"
            )
        body = json.dumps({"username": user, "password": password}).encode()
        request = urllib.request.Request(
            f"{self.base_url}/auth/token",
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        return self._token_request(request)

    def _token_request(self, request: urllib.request.Request) -> str:
        try:
            with urllib.request.urlopen(request, timeout=60) as resp:
                token = json.loads(resp.read())["access_token"]
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300]
            raise ServicesError(
                f"login at {request.full_url} failed: {exc.code} {detail}"
            ) from None
        except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
            raise ServicesError(f"login at {request.full_url} failed: {exc}") from None
        return str(token)

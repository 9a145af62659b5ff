"""Deployment profiles: the ``KEY=VALUE`` env files in ``deploy/`` and the ports they use."""

from __future__ import annotations

import contextlib
import os
import re
import socket
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEPLOY_DIR = REPO_ROOT / "deploy"
PROFILES = ("sqlite-local", "postgres-celery")
DEFAULT_PROFILE = "sqlite-local"
DEFAULT_PORT = 8080
DEFAULT_HOST = "127.0.0.1"
SERVICES_MODULE = "scripts.airflow_services"

_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")
_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class ServicesError(RuntimeError):
    """The services cannot be configured, started or stopped; the message says how to fix it."""


def load_env_file(path: Path, base: Mapping[str, str]) -> dict[str, str]:
    """Parse a profile file of ``KEY=VALUE`` lines (the subset of shell syntax it uses).

    Blank lines and ``#`` comments are skipped; an optional leading ``export`` is allowed;
    ``${VAR}``, ``$VAR`` and ``${VAR:-default}`` expand against ``base`` and the keys
    defined earlier in the file, so the file also works with ``set -a; . file``.

    Args:
        path: The env file.
        base: Variables visible to expansions (usually the process environment).

    Returns:
        The variables the file defines, expanded.

    Raises:
        ServicesError: The file is missing, a line is malformed or references an undefined
            variable without a default.
    """
    if not path.is_file():
        raise ServicesError(
            f"profile file {path} does not exist; choose one of {', '.join(PROFILES)} "
            f"or pass the path of a KEY=VALUE env file"
        )
    scope = dict(base)
    out: dict[str, str] = {}
    for lineno, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").strip().partition("=")
        key = key.strip()
        if not sep or not _KEY_RE.fullmatch(key):
            raise ServicesError(f"{path}:{lineno}: expected KEY=VALUE, got {raw!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]

        def expand(m: re.Match[str], *, _lineno: int = lineno) -> str:
            name = m.group(1) or m.group(3)
            if scope.get(name):
                return scope[name]
            if m.group(2) is not None:
                return m.group(2)
            raise ServicesError(
                f"{path}:{_lineno}: ${{{name}}} is not set; export {name} or give a default "
                f"with ${{{name}:-value}}"
            )

        value = _VAR_RE.sub(expand, value)
        scope[key] = value
        out[key] = value
    return out


def profile_path(profile: str) -> Path:
    """``deploy/<profile>.env`` for a profile name, or the path itself for a custom file."""
    if profile in PROFILES:
        return DEPLOY_DIR / f"{profile}.env"
    path = Path(profile).expanduser()
    if path.suffix == ".env" or path.is_file():
        return path.resolve()
    raise ServicesError(
        f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)} or pass an env file"
    )


#: Log servers: env key of the port, Airflow's default, what it serves.
LOG_SERVERS = (
    ("AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT", 8793, "task log server"),
    ("AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT", 8794, "triggerer log server"),
)


def winning_setting(profile: Path, key: str, overrides: Mapping[str, str] | None = None) -> str:
    """What to change so that a new value of ``key`` takes effect under ``profile``.

    The profile file is applied over the environment, so exporting ``key`` is useless
    when the file sets it: name the variable its line reads (``CTR_WORKER_LOG_PORT`` for
    ``KEY=${CTR_WORKER_LOG_PORT:-8793}``) or, for a literal value, the file and line.
    """
    if key in (overrides or {}):
        return key
    found = key
    with contextlib.suppress(OSError):
        for lineno, raw in enumerate(profile.read_text().splitlines(), start=1):
            name, sep, value = raw.strip().removeprefix("export ").partition("=")
            if raw.strip().startswith("#") or not sep or name.strip() != key:
                continue
            refs = [m.group(1) or m.group(3) for m in _VAR_RE.finditer(value)]
            found = (
                f"{refs[0]} (the profile {profile.name} sets {key} from it)"
                if refs
                else f"{key} in {profile}:{lineno} (the profile overrides the environment)"
            )
    return found


def check_ports(
    env: Mapping[str, str], profile: Path, overrides: Mapping[str, str], *, triggerer: bool
) -> None:
    """Fail early when a log server's port is taken, naming the setting that moves it."""
    host = env.get("CTR_LOG_SERVER_HOST", "").strip() or "0.0.0.0"
    for key, default, what in LOG_SERVERS[: 2 if triggerer else 1]:
        check_port_free(
            host, int(env.get(key, default)), what, winning_setting(profile, key, overrides)
        )


#: Octal umask of the services' processes (the dev profile sets 077: their files 0600).
UMASK_VAR = "CTR_SERVICES_UMASK"


def services_umask(env: Mapping[str, str]) -> int:
    """The umask the services start with (``-1``: inherit this process's)."""
    raw = env.get(UMASK_VAR, "").strip()
    try:
        return int(raw, 8) if raw else -1
    except ValueError:
        raise ServicesError(
            f"{UMASK_VAR}={raw!r} is not an octal umask; use e.g. 077 (files 0600, "
            "directories 0700) or leave it unset"
        ) from None


@contextlib.contextmanager
def umask_applied(env: Mapping[str, str]) -> Iterator[None]:
    """This process (and what it starts) under the services' umask, e.g. while the
    metadata database, ``airflow.cfg`` and the seeded data are created."""
    umask = services_umask(env)
    old = os.umask(umask) if umask >= 0 else None
    try:
        yield
    finally:
        if old is not None:
            os.umask(old)


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) and make it ``0700``: service logs, passwords."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def open_private(path: Path, mode: str = "ab") -> Any:
    """Open a file the supervisor writes (service and supervisor logs) as ``0600``."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    os.fchmod(fd, 0o600)  # an older log made before this rule
    return os.fdopen(fd, mode)


def public_url(host: str, port: int) -> str:
    """The API server's URL for people: UI links in notifications (``[api] base_url``).

    A loopback or named bind address is used as it is; a wildcard bind (``0.0.0.0``)
    is reached by other machines under this host's name.
    """
    if host in ("", "0.0.0.0", "::"):
        host = socket.getfqdn()
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def check_port_free(host: str, port: int, what: str, setting: str) -> None:
    """Raise naming ``what`` and the ``setting`` that moves it when ``port`` is taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host if host not in ("", "0.0.0.0") else "0.0.0.0", port))
        except OSError as exc:
            raise ServicesError(
                f"port {port} ({what}) is already in use on {host}: {exc.strerror}; stop what "
                f"holds it (`python -m {SERVICES_MODULE} down` if it is an earlier run) or "
                f"choose another port with {setting}"
            ) from None

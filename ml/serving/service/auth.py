"""Who may call the scoring service: bearer tokens with scopes.

Tokens come from ``--token-file FILE`` and/or ``$CTR_SERVE_TOKENS`` (both are used), never
from the command line. One entry per line (``;`` also separates entries in the variable)::

    sha256:9f86d0…  predict,feedback   # frontend, created 2026-12-07
    s3cr3t-token-at-least-16-chars  metrics

The first field is the token itself or ``sha256:`` and the hex SHA-256 of it (what
``ctr-pipeline serve token create`` writes, so the file holds no usable secret); the
second the comma-separated scopes, ``predict``, ``feedback``, ``metrics`` or ``*`` (all).
Only digests are kept in memory: a presented token is hashed and compared with every
known digest with :func:`hmac.compare_digest`.

The file must be private (no group/other permission bits, e.g. 0600): anything else is
refused. It is checked on every request with one ``stat`` and re-read when its inode,
size or times changed, so tokens rotate without a restart: add the new token, move the
clients, remove the old one (write a new file and rename it over the old one). A re-read
that fails (unreadable, a bad line, group-readable, no token at all, e.g. a file caught
half-written) keeps the previous tokens and is logged once, never with a token.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ml.errors import AuthError

log = logging.getLogger("ml.serving")
SCOPES = ("predict", "feedback", "metrics")
TOKENS_ENV = "CTR_SERVE_TOKENS"
AUTH_MODES = ("required", "off")
MIN_TOKEN_CHARS = 16
DIGEST_PREFIX = "sha256:"
_MISSING = (-1,)
HOW_TO_CREATE = (
    "create a token with `ctr-pipeline serve token create --scopes predict,feedback "
    "--token-file tokens.txt` (or `python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
    " and a line `<token> predict,feedback` in a 0600 file) and start with --token-file "
    f"tokens.txt (or put the lines in ${TOKENS_ENV})"
)


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True)
class TokenTable:
    """Known token digests and the scopes each grants."""

    entries: tuple[tuple[bytes, frozenset[str]], ...] = ()

    def scopes_of(self, token: str) -> frozenset[str] | None:
        """The scopes ``token`` grants, or None for an unknown token (constant time per entry)."""
        presented = digest(token)
        found: frozenset[str] | None = None
        for known, scopes in self.entries:
            if hmac.compare_digest(known, presented):
                found = scopes if found is None else found | scopes
        return found

    def __add__(self, other: TokenTable) -> TokenTable:
        return TokenTable(self.entries + other.entries)


def parse_tokens(text: str, source: str) -> TokenTable:
    """The entries of a token file or variable; errors name the line, never the token.

    Raises:
        AuthError: a line without scopes, an unknown scope, a short token, a bad digest.
    """
    entries = []
    lines = text.replace(";", "\n").splitlines() if source.startswith("$") else text.splitlines()
    for n, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{source} entry {n}" if source.startswith("$") else f"{source} line {n}"
        fields = line.split()
        if len(fields) != 2:
            raise AuthError(f"{where}: expected '<token> <scope>[,<scope>...]'")
        token, scope_text = fields
        scopes = frozenset(SCOPES if scope_text == "*" else scope_text.split(","))
        unknown = sorted(scopes - set(SCOPES))
        if unknown:
            raise AuthError(f"{where}: unknown scope(s) {unknown}; scopes are {list(SCOPES)}, *")
        if token.startswith(DIGEST_PREFIX):
            hex_digest = token[len(DIGEST_PREFIX) :]
            try:
                value = bytes.fromhex(hex_digest)
            except ValueError:
                value = b""
            if len(value) != 32:
                raise AuthError(f"{where}: sha256: must be followed by 64 hex digits")
        elif len(token) < MIN_TOKEN_CHARS:
            raise AuthError(f"{where}: the token is shorter than {MIN_TOKEN_CHARS} characters")
        else:
            value = digest(token)
        entries.append((value, scopes))
    return TokenTable(tuple(entries))


def check_private(path: Path) -> os.stat_result:
    """``path``'s stat if no group or other permission bit is set.

    Raises:
        AuthError: missing, unreadable, or group/world accessible.
    """
    try:
        st = path.stat()
    except OSError as exc:
        raise AuthError(f"cannot read {path}: {exc.strerror or exc}") from None
    if st.st_mode & 0o077:
        raise AuthError(
            f"{path} is accessible by group or others (mode {st.st_mode & 0o777:04o}); it holds "
            f"secrets: run `chmod 600 {path}`"
        )
    return st


def _stamp(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class TokenStore:
    """The tokens of the token file (re-read on change) and of the variable."""

    def __init__(self, path: Path | None, env_text: str | None) -> None:
        self.path = path
        self._env = parse_tokens(env_text, f"${TOKENS_ENV}") if env_text else TokenTable()
        self._lock = threading.Lock()
        self._stamp: tuple[int, ...] | None = None
        self._failed: tuple[int, ...] | None = None
        self._table = self._env
        if path is not None:
            st = check_private(path)
            self._table = self._read(path, st) + self._env
            self._stamp = _stamp(st)

    @property
    def configured(self) -> bool:
        return bool(self._table.entries)

    @property
    def count(self) -> int:
        return len(self._table.entries)

    def lookup(self, token: str) -> frozenset[str] | None:
        """The scopes ``token`` grants now (after re-reading a changed file), or None."""
        if self.path is not None:
            self._refresh(self.path)
        return self._table.scopes_of(token)

    @staticmethod
    def _read(path: Path, st: os.stat_result) -> TokenTable:
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise AuthError(f"cannot read {path}: {exc}") from None
        table = parse_tokens(text, str(path))
        if not table.entries:
            raise AuthError(f"{path} holds no token; {HOW_TO_CREATE}")
        return table

    def _refresh(self, path: Path) -> None:
        try:
            stamp = _stamp(path.stat())
        except OSError:
            stamp = _MISSING
        if stamp == self._stamp or stamp == self._failed:
            return
        with self._lock:
            if stamp in (self._stamp, self._failed):
                return
            try:
                st = check_private(path)
                table = self._read(path, st)
                if _stamp(path.stat()) != _stamp(st):  # changed while read: next request
                    return
            except (AuthError, OSError) as exc:
                self._failed = stamp
                log.error("token file not reloaded, the previous tokens stay valid: %s", exc)
                return
            self._table = table + self._env
            self._stamp = _stamp(st)
            log.info("token file %s reloaded: %d token(s)", path, len(table.entries))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_auth(mode: str | None, host: str, configured: bool) -> str:
    """``required`` or ``off``: by default required unless the bind is loopback with no token.

    Raises:
        AuthError: ``off`` on a non-loopback bind, or ``required`` without a token.
    """
    loopback = is_loopback(host)
    if mode is None:
        mode = "required" if configured or not loopback else "off"
    if mode not in AUTH_MODES:
        raise AuthError(f"--auth must be one of {list(AUTH_MODES)}, got {mode!r}")
    if mode == "off" and not loopback:
        raise AuthError(
            f"refusing to serve on {host} without authentication: anyone who reaches it could "
            f"post /feedback and steer the A/B verdict; {HOW_TO_CREATE}"
        )
    if mode == "required" and not configured:
        why = "--auth required" if loopback else f"--host {host} is not a loopback address"
        raise AuthError(
            f"authentication is required ({why}) but no token is configured; {HOW_TO_CREATE}"
        )
    return mode


def new_token() -> str:
    return secrets.token_urlsafe(32)


def add_token(path: Path, scopes: list[str], comment: str = "") -> str:
    """Create a token, append its digest line to ``path`` (0600, atomic); return the token.

    Raises:
        AuthError: an unknown scope, or an existing file that is not private or unreadable.
    """
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise AuthError(f"--scopes: unknown or no scope {unknown}; scopes are {list(SCOPES)}")
    old = ""
    if path.exists():
        check_private(path)
        old = path.read_text()
        parse_tokens(old, str(path))  # refuse to append to a file the service cannot read
        if old and not old.endswith("\n"):
            old += "\n"
    token = new_token()
    note = f"created {time.strftime('%Y-%m-%d %H:%M:%S %Z')}" + (f", {comment}" if comment else "")
    line = f"{DIGEST_PREFIX}{digest(token).hex()} {','.join(scopes)}  # {note}\n"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(old + line)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    return token

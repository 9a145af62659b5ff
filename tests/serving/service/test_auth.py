"""ml.serving.service.auth: token files and variables, scopes, rotation, the auth mode."""

from __future__ import annotations

import hashlib
import logging
import os
import re
from pathlib import Path

import pytest

from ml.errors import AuthError
from ml.serving.service.auth import TokenStore, add_token, is_loopback, parse_tokens, resolve_auth

TOKEN_A = "token-a-0123456789abcdef"
TOKEN_B = "token-b-0123456789abcdef"


def _write(path: Path, text: str, mode: int = 0o600) -> Path:
    """Write ``text`` to a new file and rename it over ``path`` (the documented rotation)."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_text(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    return path


def test_parse_tokens_reads_plain_and_digest_entries_with_scopes() -> None:
    digest_b = hashlib.sha256(TOKEN_B.encode()).hexdigest()
    table = parse_tokens(
        f"# comment\n{TOKEN_A} predict,feedback  # frontend\n\nsha256:{digest_b} *\n", "f"
    )
    assert table.scopes_of(TOKEN_A) == {"predict", "feedback"}
    assert table.scopes_of(TOKEN_B) == {"predict", "feedback", "metrics"}
    assert table.scopes_of("token-c-0123456789abcdef") is None
    env = parse_tokens(f"{TOKEN_A} metrics; {TOKEN_B} predict", "$CTR_SERVE_TOKENS")
    assert env.scopes_of(TOKEN_A) == {"metrics"} and env.scopes_of(TOKEN_B) == {"predict"}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (f"{TOKEN_A}", "line 1: expected '<token> <scope>"),
        (f"{TOKEN_A} predict,admin", "unknown scope(s) ['admin']"),
        ("short-token predict", "shorter than 16 characters"),
        ("sha256:abcd predict", "64 hex digits"),
        (f"{TOKEN_A} predict extra", "expected '<token> <scope>"),
    ],
)
def test_parse_tokens_errors_name_the_line_never_the_token(line: str, message: str) -> None:
    with pytest.raises(AuthError, match=re.escape(message)) as exc:
        parse_tokens(line, "tokens.txt")
    assert TOKEN_A not in str(exc.value) and "short-token" not in str(exc.value)


def test_token_store_refuses_a_group_or_world_readable_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "tokens.txt", f"{TOKEN_A} predict\n", mode=0o640)
    with pytest.raises(AuthError, match=r"mode 0640.*chmod 600"):
        TokenStore(path, None)
    with pytest.raises(AuthError, match="cannot read"):
        TokenStore(tmp_path / "missing.txt", None)


def test_token_store_unions_the_file_and_the_variable(tmp_path: Path) -> None:
    path = _write(tmp_path / "tokens.txt", f"{TOKEN_A} predict\n")
    store = TokenStore(path, f"{TOKEN_B} metrics")
    assert store.lookup(TOKEN_A) == {"predict"} and store.lookup(TOKEN_B) == {"metrics"}
    assert store.configured and store.count == 2
    assert not TokenStore(None, None).configured


def test_token_store_rereads_a_changed_file_and_keeps_tokens_on_a_bad_reload(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _write(tmp_path / "tokens.txt", f"{TOKEN_A} predict\n")
    store = TokenStore(path, None)
    assert store.lookup(TOKEN_A) == {"predict"} and store.lookup(TOKEN_B) is None
    _write(path, f"{TOKEN_A} predict\n{TOKEN_B} predict,metrics\n")
    assert store.lookup(TOKEN_B) == {"predict", "metrics"}  # no restart
    _write(path, f"{TOKEN_B} predict\n")
    assert store.lookup(TOKEN_A) is None  # revoked
    with caplog.at_level(logging.ERROR, logger="ml.serving"):
        _write(path, "")  # e.g. caught half-written: no token at all
        assert store.lookup(TOKEN_B) == {"predict"}
        _write(path, f"{TOKEN_A} predict,bogus\n")
        assert store.lookup(TOKEN_B) == {"predict"}
        _write(path, f"{TOKEN_A} predict\n", mode=0o644)
        assert store.lookup(TOKEN_B) == {"predict"}
        path.unlink()
        assert store.lookup(TOKEN_B) == {"predict"}
    assert caplog.text.count("previous tokens stay valid") == 4
    assert TOKEN_A not in caplog.text and TOKEN_B not in caplog.text
    _write(path, f"{TOKEN_A} feedback\n")
    assert store.lookup(TOKEN_A) == {"feedback"} and store.lookup(TOKEN_B) is None


@pytest.mark.parametrize(
    ("mode", "host", "configured", "want"),
    [
        (None, "127.0.0.1", False, "off"),
        (None, "127.0.0.1", True, "required"),
        (None, "::1", False, "off"),
        (None, "localhost", False, "off"),
        (None, "0.0.0.0", True, "required"),
        ("off", "127.0.0.1", True, "off"),
        ("required", "127.0.0.1", True, "required"),
    ],
)
def test_resolve_auth_defaults_to_required_unless_loopback_without_tokens(
    mode: str | None, host: str, configured: bool, want: str
) -> None:
    assert resolve_auth(mode, host, configured) == want


@pytest.mark.parametrize(
    ("mode", "host", "configured", "message"),
    [
        (None, "0.0.0.0", False, "--host 0.0.0.0 is not a loopback address"),
        ("off", "0.0.0.0", True, "refusing to serve on 0.0.0.0 without authentication"),
        ("off", "10.1.2.3", False, "refusing to serve on 10.1.2.3"),
        ("required", "127.0.0.1", False, "--auth required"),
    ],
)
def test_resolve_auth_refuses_an_open_non_loopback_bind_and_says_how_to_create_a_token(
    mode: str | None, host: str, configured: bool, message: str
) -> None:
    with pytest.raises(AuthError, match=message) as exc:
        resolve_auth(mode, host, configured)
    assert "ctr-pipeline serve token create --scopes predict,feedback" in str(exc.value)


def test_is_loopback() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("127.8.0.1") and is_loopback("[::1]")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("example.org")


def test_add_token_appends_a_private_digest_line(tmp_path: Path) -> None:
    path = tmp_path / "tokens.txt"
    first = add_token(path, ["predict", "feedback"], "frontend")
    second = add_token(path, ["metrics"])
    assert os.stat(path).st_mode & 0o777 == 0o600
    text = path.read_text()
    assert first not in text and second not in text and "frontend" in text
    store = TokenStore(path, None)
    assert store.lookup(first) == {"predict", "feedback"} and store.lookup(second) == {"metrics"}
    with pytest.raises(AuthError, match="unknown or no scope"):
        add_token(path, ["admin"])
    os.chmod(path, 0o644)
    with pytest.raises(AuthError, match="chmod 600"):
        add_token(path, ["predict"])

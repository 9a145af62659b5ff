"""ml.serving.service.request_ids: signed request ids, their key, the feedback ledger."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from ml.errors import AuthError, ExpiredRequestIdError, UnknownRequestIdError
from ml.serving.service.request_ids import (
    ENTRY_BYTES,
    KEY_FILE,
    FeedbackLedger,
    RequestIds,
    load_or_create_key,
)
from ml.serving.service.schemas import Feedback

KEY = bytes(range(32))


def test_issued_id_checks_and_carries_time_and_rows() -> None:
    ids = RequestIds(KEY, ttl=60)
    rid = ids.issue(256, now=1_000_000.0)
    assert ids.check(rid, now=1_000_030.0) == (ids.check(rid, now=1_000_000.0))
    issued = ids.check(rid, now=1_000_030.0)
    assert (issued.issued, issued.rows) == (1_000_000, 256)
    assert ids.issue(1) != ids.issue(1)  # a fresh nonce each time
    Feedback(request_id=rid, clicked=True)  # the feedback schema takes it


@pytest.mark.parametrize(
    "forge",
    [
        lambda rid: rid[:-1] + ("0" if rid[-1] != "0" else "1"),  # another MAC
        lambda rid: rid.replace(".1.", ".2.", 1),  # more rows than scored
        lambda rid: RequestIds(bytes(32), ttl=60).issue(1),  # another service's key
        lambda rid: uuid.uuid4().hex,  # an id of a rejected request (or an old service)
        lambda rid: "x" * 40,
    ],
)
def test_forged_or_foreign_ids_are_unknown(forge: object) -> None:
    ids = RequestIds(KEY, ttl=60)
    rid = ids.issue(1)
    with pytest.raises(UnknownRequestIdError, match="was not issued by this service"):
        ids.check(forge(rid))  # type: ignore[operator]


def test_an_id_older_than_the_ttl_is_expired() -> None:
    ids = RequestIds(KEY, ttl=60)
    rid = ids.issue(1, now=1_000_000.0)
    ids.check(rid, now=1_000_060.0)
    with pytest.raises(
        ExpiredRequestIdError, match="issued 61 s ago; feedback is accepted for 60 s"
    ):
        ids.check(rid, now=1_000_061.0)


def test_key_is_created_private_once_and_reused(tmp_path: Path) -> None:
    key = load_or_create_key(tmp_path / "logs")
    assert len(key) == 32 and os.stat(tmp_path / "logs" / KEY_FILE).st_mode & 0o777 == 0o600
    assert load_or_create_key(tmp_path / "logs") == key  # a restart, another worker
    assert [p.name for p in (tmp_path / "logs").iterdir()] == [KEY_FILE]  # no temp left


def test_a_shared_or_damaged_key_file_is_refused(tmp_path: Path) -> None:
    load_or_create_key(tmp_path)
    os.chmod(tmp_path / KEY_FILE, 0o644)
    with pytest.raises(AuthError, match="chmod 600"):
        load_or_create_key(tmp_path)
    os.chmod(tmp_path / KEY_FILE, 0o600)
    (tmp_path / KEY_FILE).write_text("not hex")
    with pytest.raises(AuthError, match="not a request id key"):
        load_or_create_key(tmp_path)


def test_ledger_refuses_a_second_outcome_for_a_row_and_records_nothing_then() -> None:
    ledger = FeedbackLedger(budget=2 * ENTRY_BYTES + 100)  # room for two ids
    assert ledger.claim("a", range(2, 3)) == []
    assert ledger.claim("a", range(0, 2)) == []
    assert ledger.claim("a", range(1, 4)) == [1, 2]
    assert ledger.claim("a", range(3, 4)) == []  # row 3 was not recorded by the refusal
    ledger.release("a", range(3, 4))
    assert ledger.claim("a", range(3, 4)) == []
    ledger.claim("b", range(1))
    ledger.claim("c", range(1))  # over the budget: "a" (the oldest) is forgotten
    assert ledger.claim("a", range(1)) == [] and ledger.claim("c", range(1)) == [0]


def test_ledger_memory_is_bounded_whatever_the_rows_claimed() -> None:
    ledger = FeedbackLedger(budget=1 << 20)
    for i in range(100):  # the last row of a 1M-row request: a 125 kB bitmask each
        ledger.claim(f"r{i}", range(999_999, 1_000_000))
    assert ledger._size <= 1 << 20 and len(ledger._rows) == 8
    assert ledger.claim("r99", range(999_999, 1_000_000)) == [999_999]

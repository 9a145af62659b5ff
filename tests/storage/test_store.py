"""ObjectStore against a real S3 server (SeaweedFS): the wire semantics the registry needs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ml import storage
from ml.errors import (
    AccessDeniedError,
    BucketNotFoundError,
    ConditionFailedError,
    ObjectNotFoundError,
    StorageUnavailableError,
)
from testkit.s3 import SECRET_KEY, S3Server


def test_put_if_absent_answers_412_to_a_second_create(s3_env: str) -> None:
    store = storage.open_store(s3_env)
    store.put_if_absent("claim", b"first")
    with pytest.raises(
        ConditionFailedError, match=r"creating s3://ctr-test/t-.*/claim: another"
    ) as e:
        store.put_if_absent("claim", b"second")
    assert "HTTP 412 Precondition Failed" in str(e.value)  # on the wire, not emulated
    assert store.get("claim") == b"first"


def test_put_if_match_swaps_only_the_version_read(s3_env: str) -> None:
    store = storage.open_store(s3_env)
    v1 = store.put("ptr", b"v1")
    v2 = store.put_if_match("ptr", b"v2", v1)
    with pytest.raises(ConditionFailedError, match="HTTP 412"):
        store.put_if_match("ptr", b"v3", v1)  # stale ETag
    found = store.get_versioned("ptr")
    assert found is not None and found[0] == b"v2" and found[1].etag == v2.etag
    with pytest.raises(ConditionFailedError):
        store.put_if_match("absent", b"x", v2)


def test_list_head_copy_delete_and_files(s3_env: str, tmp_path: Path) -> None:
    store = storage.open_store(s3_env)
    for n in (3, 1, 2):
        store.put(f"d/k{n}", b"x" * n)
    store.put("e/f/k", b"y")
    assert [o.key for o in store.list_objects("d/")] == ["d/k1", "d/k2", "d/k3"]
    assert [o.key for o in store.list_objects("d/", start_after="d/k1")] == ["d/k2", "d/k3"]
    assert store.list_dirs("") == ["d", "e"] and store.list_dirs("e/") == ["f"]
    info = store.head("d/k3")
    assert info is not None and info.size == 3 and store.head("nope") is None
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(3 << 20))
    store.upload_file("files/big.bin", src)
    store.copy("files/big.bin", "files/copy.bin")
    store.download_file("files/copy.bin", tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == src.read_bytes()
    assert store.sha256("files/copy.bin")[1] == 3 << 20
    store.delete(["d/k1", "d/k2", "missing"])
    assert [o.key for o in store.list_objects("d/")] == ["d/k3"]
    with pytest.raises(ObjectNotFoundError, match=r"no object at s3://ctr-test/.*/d/k1"):
        store.get("d/k1")


def test_unknown_bucket_is_a_user_error_naming_the_url(s3_env: str) -> None:
    store = storage.open_store("s3://no-such-bucket-ctr/models")
    with pytest.raises(
        BucketNotFoundError, match="s3://no-such-bucket-ctr/models/x: the bucket"
    ) as info:
        store.put("x", b"1")
    assert info.value.exit_code == 2


def test_wrong_credentials_are_denied_without_showing_the_secret(
    s3_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-value")
    store = storage.open_store(s3_env)
    with pytest.raises(AccessDeniedError, match="access denied") as info:
        store.get("anything")
    text = str(info.value)
    assert info.value.exit_code == 2 and s3_env in text
    assert "wrong-secret-value" not in text and SECRET_KEY not in text


def test_endpoint_down_is_retryable_and_names_the_url(
    s3_env: str, monkeypatch: pytest.MonkeyPatch, s3_server: S3Server
) -> None:
    from testkit.s3 import _free_ports

    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://user:pw-secret@127.0.0.1:{_free_ports(1)[0]}")
    store = storage.open_store(s3_env)
    with pytest.raises(StorageUnavailableError, match="check that the endpoint is up") as info:
        store.put("x", b"1")
    assert info.value.exit_code == 3 and s3_env in str(info.value)
    assert "pw-secret" not in str(info.value)


def test_translate_maps_throttling_denial_and_bad_names_by_branch() -> None:
    from obstore import exceptions as obx

    from ml.errors import InvalidLocationError
    from ml.storage.store import translate

    def body(status: str, code: str) -> str:
        return (
            f"Generic S3 error: Error performing PUT http://k:pw@h:9/b/x - Server returned "
            f"non-2xx status code: {status}: <Error><Code>{code}</Code>"
            "<Message>Please reduce your request rate.</Message></Error>"
        )

    slow = translate(obx.GenericError(body("503 Service Unavailable", "SlowDown")), "writing u")
    assert isinstance(slow, StorageUnavailableError) and slow.exit_code == 3
    assert "HTTP 503 Service Unavailable SlowDown: Please reduce" in str(slow)
    denied = translate(obx.GenericError(body("403 Forbidden", "AccessDenied")), "listing u")
    assert isinstance(denied, AccessDeniedError) and "pw" not in str(denied)
    bad = translate(obx.GenericError(body("400 Bad Request", "InvalidBucketName")), "x")
    assert isinstance(bad, InvalidLocationError)
    lost = translate(obx.PreconditionError("412 Precondition Failed"), "replacing u")
    assert isinstance(lost, ConditionFailedError)

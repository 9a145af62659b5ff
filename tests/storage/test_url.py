from __future__ import annotations

from pathlib import Path

import pytest

from ml.errors import InvalidLocationError
from ml.storage.url import ObjectUrl, is_url, redact_url, scheme_of


def test_is_url_tells_urls_from_local_paths() -> None:
    assert is_url("s3://bucket/models") and scheme_of("S3://b/p") == "s3"
    assert not is_url("models") and not is_url("/abs/models") and not is_url("file:///x")
    assert not is_url(Path("s3:/b")) and scheme_of("C:\\models") is None


def test_redact_url_hides_passwords_and_secret_parameters() -> None:
    assert redact_url("s3://key:secret@bucket/p") == "s3://key:***@bucket/p"
    assert redact_url("see http://u:pw@host:9000/b failed") == "see http://u:***@host:9000/b failed"
    signed = redact_url("https://h/b/k?X-Amz-Signature=abc&part=2&X-Amz-Credential=AK")
    assert "abc" not in signed and "AK" not in signed and "part=2" in signed
    assert redact_url("s3://bucket/plain") == "s3://bucket/plain"


def test_object_url_parse_splits_bucket_and_prefix() -> None:
    url = ObjectUrl.parse("s3://bucket/a/b/")
    assert (url.scheme, url.bucket, url.prefix) == ("s3", "bucket", "a/b")
    assert url.key("x", "y") == "a/b/x/y" and url.url("x") == "s3://bucket/a/b/x"
    assert ObjectUrl.parse("s3://bucket").key("k") == "k"


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("s3:///nobucket", "not a storage URL"),
        ("s3://b/p?x=1", "takes no '\\?'"),
        ("s3://b/a/../c", "'..' segment"),
        ("s3://u:hunter2@b/a//c", "empty"),
    ],
)
def test_object_url_parse_refuses_bad_urls(url: str, match: str) -> None:
    with pytest.raises(InvalidLocationError, match=match) as info:
        ObjectUrl.parse(url)
    assert "hunter2" not in str(info.value) and info.value.exit_code == 2

from __future__ import annotations

import pytest

from ml.storage import s3
from ml.storage.url import ObjectUrl


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT", "AWS_REGION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)


def test_settings_read_the_endpoint_and_allow_http_for_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    assert s3.settings() == {
        "endpoint": "http://127.0.0.1:9",
        "allow_http": True,
        "virtual_hosted_style_request": False,
        "region": "us-east-1",
    }


def test_settings_prefer_the_s3_endpoint_and_keep_the_region(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://a:1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "https://b:2")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert s3.settings() == {"endpoint": "https://b:2", "virtual_hosted_style_request": False}


def test_build_roots_the_store_at_the_prefix() -> None:
    store = s3.build(ObjectUrl.parse("s3://bucket/models"))
    assert store.prefix == "models"

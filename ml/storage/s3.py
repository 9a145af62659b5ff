"""The S3 backend (AWS S3 and compatible stores: MinIO, SeaweedFS, R2, Ceph RGW).

Credentials and settings come from the standard environment chain that obstore's
``S3Store`` reads: ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN``,
``AWS_REGION``/``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL`` for a non-AWS endpoint, web
identity (EKS IRSA) and the instance/container metadata endpoints. Nothing here reads,
logs or stores a secret. Conditional writes use ``If-None-Match: *`` (create) and
``If-Match: <ETag>`` (compare-and-swap), which AWS S3 has supported since 2024.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from obstore.store import S3Store

from ml.storage.url import ObjectUrl

#: seconds for a connection; a request (one part of an upload) may take up to REQUEST_TIMEOUT
CONNECT_TIMEOUT = "5s"
REQUEST_TIMEOUT = "300s"
#: transient failures (connection refused, 5xx, 503 SlowDown) are retried this often, with
#: exponential backoff, for at most RETRY_SECONDS; then the error is raised (retryable).
MAX_RETRIES = 3
RETRY_SECONDS = 15.0


def _endpoint() -> str | None:
    for var in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT"):
        value = os.environ.get(var)
        if value:
            return value
    return None


def settings() -> dict[str, Any]:
    """What this module adds to obstore's own reading of the environment."""
    config: dict[str, Any] = {}
    endpoint = _endpoint()
    if endpoint:
        config["endpoint"] = endpoint
        if endpoint.startswith("http://"):
            config["allow_http"] = True
        # a custom endpoint (MinIO, SeaweedFS) addresses buckets by path, not by host name
        config.setdefault("virtual_hosted_style_request", False)
    if not (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")):
        config["region"] = "us-east-1"
    return config


def build(url: ObjectUrl) -> Any:
    """An obstore ``S3Store`` for ``s3://bucket/prefix`` configured from the environment."""
    return S3Store(
        url.bucket,
        prefix=url.prefix or None,
        config=settings(),  # type: ignore[arg-type]
        client_options={"connect_timeout": CONNECT_TIMEOUT, "timeout": REQUEST_TIMEOUT},
        retry_config={
            "max_retries": MAX_RETRIES,
            "retry_timeout": timedelta(seconds=RETRY_SECONDS),
            "backoff": {
                "init_backoff": timedelta(milliseconds=100),
                "max_backoff": timedelta(seconds=5),
                "base": 2,
            },
        },
    )

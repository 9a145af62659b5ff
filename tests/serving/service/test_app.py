"""ml.serving.service.app in process (FastAPI's TestClient): scoring, bad requests, A/B, shadow,
feedback, metrics, hot reload and a corrupt version."""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

with warnings.catch_warnings():  # starlette's note about httpx2, raised at import
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from fastapi.testclient import TestClient

from ml.data.generate.world_default import DEFAULT_SPEC
from ml.data.loading import load_split
from ml.registry.model_registry import ModelRegistry
from ml.serving.service.app import create_app
from ml.serving.service.outcomes import FEEDBACK_FILE, PREDICTIONS_FILE, read_jsonl
from ml.serving.service.settings import ServeSettings
from testkit.serving import NAME


def rows_of(df: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-able rows with exactly the frame's values (Python ints and floats)."""
    cols = {c: df[c].astype(object).where(df[c].notna(), None).tolist() for c in df.columns}
    cols = {c: [v.item() if hasattr(v, "item") else v for v in vals] for c, vals in cols.items()}
    return [dict(zip(cols, vals, strict=True)) for vals in zip(*cols.values(), strict=True)]


@pytest.fixture(scope="module")
def frame(tiny_features_dir: Path) -> pd.DataFrame:
    return load_split(tiny_features_dir, "test", DEFAULT_SPEC, with_label=False).head(300)


def expected(registry_dir: Path, version: str, df: pd.DataFrame) -> np.ndarray:
    stage = "production" if (registry_dir / "production" / NAME / version).is_dir() else "staging"
    return ModelRegistry(registry_dir).load(NAME, version, stage).predict_proba(df)


@pytest.fixture
def client_for(tmp_path: Path) -> Iterator[Any]:
    clients: list[TestClient] = []

    def make(registry_dir: Path, **settings: Any) -> TestClient:
        s = ServeSettings(
            registry_dir=str(registry_dir),
            log_dir=str(tmp_path / "logs"),
            max_batch=256,
            poll_interval=0.05,
            threads=1,
            **settings,
        )
        client = TestClient(create_app(s))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.__exit__(None, None, None)


def test_predict_round_trip_equals_predict_proba(
    client_for: Any, registry_dir: Path, frame: pd.DataFrame
) -> None:
    client = client_for(registry_dir)
    chunk = frame.head(256)
    response = client.post("/predict", json={"rows": rows_of(chunk)})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["version"] == "v1" and body["variant"] == "control" and body["model"] == NAME
    assert response.headers["x-request-id"] == body["request_id"]
    np.testing.assert_allclose(body["probabilities"], expected(registry_dir, "v1", chunk), 1e-12)
    one = client.post("/predict", json={"rows": rows_of(frame.iloc[[5]])}).json()
    # float32 kernels may round differently for another batch size: 1e-6, not exact
    assert one["probabilities"][0] == pytest.approx(body["probabilities"][5], rel=1e-6)


def test_predict_scores_unseen_categories_and_missing_numerics_as_the_predictor(
    client_for: Any, registry_dir: Path, frame: pd.DataFrame
) -> None:
    client = client_for(registry_dir)
    rows = rows_of(frame.head(3))
    rows[0]["item_category"] = "never-seen"
    rows[1]["item_price"] = None
    rows[2]["user_id"] = None
    df = pd.DataFrame(rows)
    body = client.post("/predict", json={"rows": rows}).json()
    np.testing.assert_allclose(body["probabilities"], expected(registry_dir, "v1", df), 1e-12)


BAD_REQUESTS = [
    ("not json", 422, "not valid JSON"),
    ({"rows": []}, 422, "'rows' is empty"),
    ({"rows": "x"}, 422, "must be a list"),
    ({"rowz": []}, 422, "unknown field 'rowz'"),
    ({"rows": [{"user_id": 1}]}, 422, "lacks the feature column 'item_id'"),
    ({"rows": "BIG"}, 422, "the batch limit is 256"),
    ({"rows": "PRICE_TEXT"}, 422, "numeric feature 'item_price' must be a number"),
    ({"rows": "CATEGORY_LIST"}, 422, "categorical feature 'device_type'"),
    ({"rows": [3]}, 422, "row 0 must be an object"),
    ({"rows": "HUGE_BODY"}, 413, "the limit is"),
    ({"rows": "KEY"}, 422, "'key' must be a string"),
]


@pytest.mark.parametrize(("body", "status", "message"), BAD_REQUESTS, ids=lambda x: str(x)[:24])
def test_predict_bad_requests_get_a_4xx_naming_the_problem(
    client_for: Any, registry_dir: Path, frame: pd.DataFrame, body: Any, status: int, message: str
) -> None:
    client = client_for(registry_dir)
    row = rows_of(frame.head(1))[0]
    special: dict[str, Any] = {
        "BIG": {"rows": [row] * 257},
        "PRICE_TEXT": {"rows": [{**row, "item_price": "cheap"}]},
        "CATEGORY_LIST": {"rows": [{**row, "device_type": ["a"]}]},
        "HUGE_BODY": {"rows": [{**row, "pad": "x" * (33 << 20)}]},
        "KEY": {"rows": [row], "key": {"user": 1}},
    }
    if isinstance(body, dict) and isinstance(body.get("rows"), str) and body["rows"] in special:
        body = special[body["rows"]]
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    response = client.post("/predict", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == status
    assert message in json.dumps(response.json()["detail"])
    assert client.get("/healthz").json() == {"status": "ok"}  # still serving


def test_other_bad_requests_are_4xx(client_for: Any, registry_dir: Path) -> None:
    client = client_for(registry_dir)
    assert client.get("/predict").status_code == 405
    assert client.get("/nope").status_code == 404
    bad = client.post("/feedback", json={"request_id": "bad id!", "clicked": True})
    assert bad.status_code == 422 and "request_id" in bad.text
    bad = client.post("/feedback", json={"request_id": "abc", "clicked": "maybe"})
    assert bad.status_code == 422 and "clicked" in bad.text
    bad = client.post("/feedback", json={"request_id": "abc", "clicked": 1, "extra": 1})
    assert bad.status_code == 422 and "extra" in bad.text
    metrics = client.get("/metrics").text
    assert (
        'ctr_serving_rejected_requests_total{endpoint="feedback",reason="invalid"} 3.0' in metrics
    )


def test_docs_health_and_readiness(client_for: Any, registry_dir: Path) -> None:
    client = client_for(registry_dir)
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert "rows" in body["schema"]["properties"]
    ready = client.get("/readyz").json()
    assert ready["control"] == {"version": "v1", "stage": "production"}
    assert ready["candidate"] is None and ready["last_reload_error"] is None


def test_ab_split_names_the_variant_and_is_sticky_per_key(
    client_for: Any, registry_dir: Path, frame: pd.DataFrame, tmp_path: Path
) -> None:
    client = client_for(registry_dir, candidate="v2", traffic=0.5, salt="exp1")
    rows = rows_of(frame.head(2))
    seen: dict[str, set[tuple[str, str]]] = {}
    for i in range(40):
        key = f"user-{i % 10}"
        body = client.post("/predict", json={"rows": rows, "key": key}).json()
        seen.setdefault(key, set()).add((body["variant"], body["version"]))
        want = expected(registry_dir, body["version"], pd.DataFrame(rows))
        np.testing.assert_allclose(body["probabilities"], want, 1e-12)
    assert all(len(v) == 1 for v in seen.values())  # sticky
    variants = {next(iter(v)) for v in seen.values()}
    assert variants == {("control", "v1"), ("candidate", "v2")}
    # Without "key", the first row's user_id is the key: same user, same variant.
    user_rows = [{**r, "user_id": 424242} for r in rows]
    firsts = {client.post("/predict", json={"rows": user_rows}).json()["variant"] for _ in range(5)}
    assert len(firsts) == 1
    metrics = client.get("/metrics").text
    assert 'ctr_serving_requests_total{variant="candidate",version="v2"}' in metrics
    assert 'ctr_serving_mean_score{variant="control",version="v1"}' in metrics
    assert 'ctr_serving_model_version{variant="candidate",version="v2"} 1.0' in metrics


def test_shadow_scores_are_logged_and_never_returned(
    client_for: Any, registry_dir: Path, frame: pd.DataFrame, tmp_path: Path
) -> None:
    client = client_for(registry_dir, shadow="v3")
    rows = rows_of(frame.head(4))
    response = client.post("/predict", json={"rows": rows})
    body = response.json()
    assert set(body) == {"request_id", "model", "version", "variant", "probabilities"}
    assert "v3" not in response.text and body["version"] == "v1"
    records = list(read_jsonl(tmp_path / "logs" / PREDICTIONS_FILE))
    (record,) = [r for r in records if r["request_id"] == body["request_id"]]
    assert record["scores"] == body["probabilities"]
    assert record["shadow"]["version"] == "v3"
    want = expected(registry_dir, "v3", pd.DataFrame(rows))
    np.testing.assert_allclose(record["shadow"]["scores"], want, 1e-12)
    assert not np.allclose(record["shadow"]["scores"], body["probabilities"])
    assert 'ctr_serving_shadow_rows_total{version="v3"} 4.0' in client.get("/metrics").text


def test_feedback_is_appended_to_the_log(
    client_for: Any, registry_dir: Path, frame: pd.DataFrame, tmp_path: Path
) -> None:
    client = client_for(registry_dir)
    rid = client.post("/predict", json={"rows": rows_of(frame.head(3))}).json()["request_id"]
    assert client.post("/feedback", json={"request_id": rid, "clicked": True, "row": 2}).json() == {
        "request_id": rid,
        "recorded": 1,
    }
    assert client.post("/feedback", json={"request_id": rid, "clicked": [0, 1]}).status_code == 202
    lines = list(read_jsonl(tmp_path / "logs" / FEEDBACK_FILE))
    assert [(r["request_id"], r["row"], r["clicked"]) for r in lines] == [
        (rid, 2, 1),
        (rid, 0, [0, 1]),
    ]


def test_feedback_for_unknown_expired_unscored_or_recorded_rows_is_refused_and_counted(
    client_for: Any, registry_dir: Path, frame: pd.DataFrame, tmp_path: Path
) -> None:
    client = client_for(registry_dir, feedback_ttl=60.0)
    rid = client.post("/predict", json={"rows": rows_of(frame.head(3))}).json()["request_id"]
    old = client.app.state.service.ids.issue(3, now=time.time() - 61)
    refused = [
        ({"request_id": uuid.uuid4().hex, "clicked": 1}, 404, "was not issued by this service"),
        ({"request_id": rid[:-4] + "0000", "clicked": 1}, 404, "was not issued by this service"),
        ({"request_id": old, "clicked": 1}, 410, "feedback is accepted for 60 s"),
        ({"request_id": rid, "row": 3, "clicked": 1}, 422, "scored 3 row(s) (rows 0..2)"),
        ({"request_id": rid, "clicked": [1, 0, 0, 1]}, 422, "covers rows 0..3"),
    ]
    for body, status, message in refused:
        response = client.post("/feedback", json=body)
        assert (response.status_code, body) == (status, body) and message in response.text
    assert (
        client.post("/feedback", json={"request_id": rid, "row": 1, "clicked": 1}).status_code
        == 202
    )
    again = client.post("/feedback", json={"request_id": rid, "clicked": [0, 0]})
    assert again.status_code == 409 and "row(s) [1] was already recorded (kept)" in again.text
    assert (
        client.post("/feedback", json={"request_id": rid, "row": 2, "clicked": 0}).status_code
        == 202
    )
    lines = list(read_jsonl(tmp_path / "logs" / FEEDBACK_FILE))
    assert [(r["row"], r["clicked"]) for r in lines] == [(1, 1), (2, 0)]  # refusals: nothing
    metrics = client.get("/metrics").text
    for reason, count in [
        ("unknown_request", 2),
        ("expired_request", 1),
        ("row_out_of_range", 2),
        ("duplicate", 1),
    ]:
        assert f'{{endpoint="feedback",reason="{reason}"}} {count}.0' in metrics


def test_bodies_over_the_limit_are_413_even_without_a_content_length(
    client_for: Any, registry_dir: Path
) -> None:
    client = client_for(registry_dir, max_body_bytes=1 << 20, max_feedback_bytes=1 << 10)

    def chunks(n: int) -> Iterator[bytes]:
        yield b'{"rows": [{"pad": "'
        yield from (b"x" * (64 << 10) for _ in range(n))

    for path, n, limit in [("/predict", 32, "1,048,576"), ("/feedback", 1, "1,024")]:
        response = client.post(path, content=chunks(n))  # chunked: no Content-Length
        assert response.status_code == 413 and f"the limit is {limit}" in response.text
        assert "stopped reading at" in response.text
    big = {"request_id": "a", "clicked": [0] * 1000}
    response = client.post("/feedback", json=big)
    assert response.status_code == 413 and "the limit is 1,024" in response.text
    metrics = client.get("/metrics").text
    assert '{endpoint="feedback",reason="body_too_large"} 2.0' in metrics
    assert '{endpoint="predict",reason="body_too_large"} 1.0' in metrics


def test_json_nested_100k_levels_deep_is_a_422_naming_the_problem(
    client_for: Any, registry_dir: Path
) -> None:
    client = client_for(registry_dir)
    deep = b'{"rows": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = client.post("/predict", content=deep)
    assert response.status_code == 422 and "json_too_deep" in response.text
    assert "nests arrays/objects too deeply" in response.text
    deep_fb = b'{"request_id": "a", "clicked": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = client.post("/feedback", content=deep_fb)
    assert response.status_code == 422 and "recursion limit exceeded" in response.text
    assert client.get("/healthz").json() == {"status": "ok"}


def _wait_for_version(client: TestClient, rows: list[dict[str, Any]], version: str) -> float:
    start = time.monotonic()
    while time.monotonic() - start < 5:
        if client.post("/predict", json={"rows": rows}).json()["version"] == version:
            return time.monotonic() - start
        time.sleep(0.02)
    raise AssertionError(f"{version} was not picked up within 5 s")


def test_promotion_and_rollback_are_picked_up_and_a_corrupt_version_is_refused(
    client_for: Any, registry_dir: Path, frame: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    client = client_for(registry_dir)
    rows = rows_of(frame.head(2))
    registry = ModelRegistry(registry_dir)
    registry.promote_to_production(NAME, "v2")
    assert _wait_for_version(client, rows, "v2") < 2.0
    registry.rollback(NAME)
    assert _wait_for_version(client, rows, "v1") < 2.0
    # A damaged production copy: v3's model file no longer matches its manifest.
    registry.promote_to_production(NAME, "v2")
    _wait_for_version(client, rows, "v2")
    prod = registry_dir / "production" / NAME
    shutil.copytree(registry_dir / "staging" / NAME / "v3", prod / "v3")
    with open(prod / "v3" / "model.pt", "r+b") as fh:
        fh.seek(100)
        fh.write(b"\0" * 16)
    os.symlink("v3", prod / ".current-tmp")
    os.replace(prod / ".current-tmp", prod / "current")
    with caplog.at_level("ERROR", logger="ml.serving"):
        time.sleep(0.5)
        for _ in range(5):
            assert client.post("/predict", json={"rows": rows}).json()["version"] == "v2"
    assert "Refused ctr_model v3" in caplog.text and "sha256" in caplog.text
    ready = client.get("/readyz").json()
    assert (
        ready["control"]["version"] == "v2" and "refused ctr_model v3" in ready["last_reload_error"]
    )
    assert 'ctr_serving_reloads_total{outcome="refused"} 1.0' in client.get("/metrics").text


def _variants(client: TestClient, rows: list[dict[str, Any]], users: int) -> dict[str, str]:
    return {
        f"u{i}": client.post("/predict", json={"rows": rows, "key": f"u{i}"}).json()["version"]
        for i in range(users)
    }


def test_the_registry_canary_is_followed_without_a_restart(
    client_for: Any, registry_dir: Path, frame: pd.DataFrame
) -> None:
    client = client_for(registry_dir)
    rows = rows_of(frame.head(2))
    registry = ModelRegistry(registry_dir)
    assert set(_variants(client, rows, 20).values()) == {"v1"}
    registry.set_canary(NAME, "v2", 0.5, by="test", reason="canary test")
    start = time.monotonic()
    while client.get("/readyz").json()["candidate"] is None:
        assert time.monotonic() - start < 5, "the canary was not picked up within 5 s"
        time.sleep(0.02)
    seen = _variants(client, rows, 60)
    assert set(seen.values()) == {"v1", "v2"}
    assert 10 < list(seen.values()).count("v2") < 50
    assert _variants(client, rows, 60) == seen  # sticky per user
    body = client.post("/predict", json={"rows": rows, "key": "u0"}).json()
    want = expected(registry_dir, body["version"], pd.DataFrame(rows))
    np.testing.assert_allclose(body["probabilities"], want, 1e-12)
    ready = client.get("/readyz").json()
    assert ready["canary"] is True and ready["traffic"] == 0.5
    gauge = 'ctr_serving_model_version{variant="candidate",version="v2"}'
    assert f"{gauge} 1.0" in client.get("/metrics").text
    registry.clear_canary(NAME, reason="done")
    start = time.monotonic()
    while client.get("/readyz").json()["candidate"] is not None:
        assert time.monotonic() - start < 5, "the canary was not cleared within 5 s"
        time.sleep(0.02)
    assert set(_variants(client, rows, 20).values()) == {"v1"}
    assert f"{gauge} 0.0" in client.get("/metrics").text


def test_a_pinned_candidate_ignores_the_registry_canary(
    client_for: Any, registry_dir: Path, frame: pd.DataFrame
) -> None:
    ModelRegistry(registry_dir).set_canary(NAME, "v3", 0.5)
    client = client_for(registry_dir, candidate="v2", traffic=0.5, salt="exp1")
    rows = rows_of(frame.head(2))
    assert set(_variants(client, rows, 40).values()) == {"v1", "v2"}


def test_feature_rows_of_a_sample_of_requests_are_logged(
    client_for: Any, registry_dir: Path, frame: pd.DataFrame, tmp_path: Path
) -> None:
    client = client_for(registry_dir, log_features=1.0)
    rows = rows_of(frame.head(3))
    rid = client.post("/predict", json={"rows": rows}).json()["request_id"]
    records = list(read_jsonl(tmp_path / "logs" / PREDICTIONS_FILE))
    (record,) = [r for r in records if r["request_id"] == rid]
    features = record["features"]
    assert features
    for column in ("user_id", "ad_id"):
        if column in features:
            assert features[column] == [r.get(column) for r in rows]
    assert all(len(values) == 3 for values in features.values())


def test_feature_rows_are_not_logged_by_default(
    client_for: Any, registry_dir: Path, frame: pd.DataFrame, tmp_path: Path
) -> None:
    client = client_for(registry_dir)
    for _ in range(5):
        client.post("/predict", json={"rows": rows_of(frame.head(3))})
    records = list(read_jsonl(tmp_path / "logs" / PREDICTIONS_FILE))
    assert len(records) == 5 and not any("features" in r for r in records)

"""``ctr-pipeline serve --workers 2`` for real (uvicorn, one server for the module):
promotion and rollback under load with no failed or mixed request, a corrupt version
refused, counters summed across workers, graceful stop; and a second server with tokens:
feedback accepted on whichever worker, a chunked 100 MB body cut off at the limit."""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ml.data.generate.world_default import DEFAULT_SPEC
from ml.data.loading import load_split
from ml.registry.model_registry import ModelRegistry
from testkit import loadgen
from testkit.serving import NAME, copy_registry, free_port, start_server, stop_server, wait_ready

CHECKOUT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server(
    registry_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("server")
    models = copy_registry(registry_template, tmp / "models")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(CHECKOUT), "CTR_PIPELINE_HOME": str(tmp)}
    args = ["--registry", str(models), "--log-dir", str(tmp / "logs"), "--port", str(port)]
    args += ["--workers", "2", "--threads", "1", "--poll-interval", "0.1", "--max-batch", "64"]
    proc = start_server(args, env, tmp / "server.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc, tmp / "server.log")
        yield {"url": url, "models": models, "proc": proc, "log": tmp / "server.log"}
    finally:
        stop_server(proc)


@pytest.fixture(scope="module")
def rows(tiny_features_dir: Path) -> pd.DataFrame:
    return load_split(tiny_features_dir, "test", DEFAULT_SPEC, with_label=False).head(2)


def _json_rows(df: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for record in df.astype(object).to_dict("records"):
        out.append({k: (v.item() if hasattr(v, "item") else v) for k, v in record.items()})
    return out


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.read().decode()


@pytest.mark.slow
def test_promotion_and_rollback_under_load_fail_no_request(
    server: dict[str, Any], rows: pd.DataFrame
) -> None:
    registry = ModelRegistry(server["models"])
    want = {v: registry.load(NAME, v, "staging").predict_proba(rows).tolist() for v in ("v1", "v2")}
    body = json.dumps({"rows": _json_rows(rows)}).encode()
    stop = threading.Event()
    results = [loadgen.Result() for _ in range(3)]
    threads = [
        threading.Thread(
            target=loadgen.worker, args=(server["url"], body, lambda n: stop.is_set(), r)
        )
        for r in results
    ]
    for t in threads:
        t.start()
    try:
        time.sleep(1.0)
        promoted_at = time.perf_counter()
        registry.promote_to_production(NAME, "v2")
        time.sleep(2.5)
        rolled_back_at = time.perf_counter()
        registry.rollback(NAME)
        time.sleep(2.5)
    finally:
        stop.set()
        for t in threads:
            t.join()
    records = [rec for r in results for rec in r.records]
    assert [e for r in results for e in r.errors] == []
    assert len(records) > 50 and {rec[2] for rec in records} == {200}  # 0 failed requests
    for _, _, _, body_ in records:  # never a mixed request: all rows from the named version
        np.testing.assert_allclose(body_["probabilities"], want[body_["version"]], rtol=1e-6)
    during_v2 = [rec for rec in records if promoted_at < rec[0] and rec[1] < rolled_back_at]
    last_v1 = max(rec[1] for rec in during_v2 if rec[3]["version"] == "v1")
    assert last_v1 - promoted_at < 2.0  # picked up within 2 s
    assert during_v2[-1][3]["version"] == "v2"
    after = [rec for rec in records if rec[0] > rolled_back_at]
    last_v2 = max(rec[1] for rec in after if rec[3]["version"] == "v2")
    assert last_v2 - rolled_back_at < 2.0 and after[-1][3]["version"] == "v1"


def test_metrics_sum_the_workers(server: dict[str, Any], rows: pd.DataFrame) -> None:
    before = _requests_total(_get(f"{server['url']}/metrics"))
    pids: set[int] = set()
    deadline = time.monotonic() + 30
    while len(pids) < 2 and time.monotonic() < deadline:  # fresh connections: either worker
        pids.add(json.loads(_get(f"{server['url']}/readyz"))["pid"])
    assert len(pids) == 2, "both workers should have answered within 30 s"
    body = json.dumps({"rows": _json_rows(rows)}).encode()
    summary = loadgen.run(server["url"], body, connections=4, requests=25)
    assert summary["failed"] == 0
    counts = set()
    for _ in range(6):  # whichever worker answers /metrics, the total is the same
        counts.add(_requests_total(_get(f"{server['url']}/metrics")) - before)
    assert counts == {100.0}


def _requests_total(text: str) -> float:
    pattern = r'^ctr_serving_requests_total\{variant="control",version="v\d+"\} (\S+)$'
    return sum(float(v) for v in re.findall(pattern, text, flags=re.M))


def test_a_corrupt_promotion_is_refused_and_the_old_version_keeps_serving(
    server: dict[str, Any], rows: pd.DataFrame
) -> None:
    models = server["models"]
    prod = models / "production" / NAME
    current = os.readlink(prod / "current")
    shutil.copytree(models / "staging" / NAME / "v3", prod / "v3")
    (prod / "v3" / "model.pt").write_bytes(b"not a checkpoint")
    os.symlink("v3", prod / ".current-x")
    os.replace(prod / ".current-x", prod / "current")
    time.sleep(1.0)
    body = json.dumps({"rows": _json_rows(rows)}).encode()
    summary = loadgen.run(server["url"], body, connections=2, requests=10)
    assert summary["failed"] == 0
    ready = json.loads(_get(f"{server['url']}/readyz"))
    assert ready["control"]["version"] == current
    assert "refused ctr_model v3" in ready["last_reload_error"]
    assert "failed verification" in ready["last_reload_error"]
    assert "Refused ctr_model v3" in server["log"].read_text()


def _post(url: str, body: Any, token: str | None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, json.dumps(body).encode(), headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:  # a fresh connection each
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _send_chunked(port: int, token: str, total: int) -> tuple[int, bytes]:
    """POST /predict ``total`` bytes in 1 MiB chunks (no Content-Length) until the server
    answers; return the bytes sent and the answer's first line."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    with sock:
        sock.sendall(
            f"POST /predict HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )
        chunk = b"x" * (1 << 20)
        frame = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
        sent = 0
        with contextlib.suppress(OSError):  # the server may close before we stop
            while sent < total and not select.select([sock], [], [], 0)[0]:
                sock.sendall(frame)
                sent += len(chunk)
        return sent, sock.recv(65536).split(b"\r\n", 1)[0]


def test_a_secured_server_takes_feedback_on_any_worker_and_cuts_a_chunked_body_short(
    registry_template: Path, tmp_path: Path, rows: pd.DataFrame
) -> None:
    from ml.serving.service.outcomes import PREDICTIONS_FILE, joined_outcomes

    models = copy_registry(registry_template, tmp_path / "models")
    token = "server-test-token-0123456789abcdef"
    tokens = tmp_path / "tokens.txt"
    tokens.write_text(f"{token} predict,feedback\n")
    tokens.chmod(0o600)
    port, logs = free_port(), tmp_path / "logs"
    env = {**os.environ, "PYTHONPATH": str(CHECKOUT), "CTR_PIPELINE_HOME": str(tmp_path)}
    args = ["--registry", str(models), "--log-dir", str(logs), "--port", str(port)]
    args += ["--workers", "2", "--threads", "1", "--token-file", str(tokens)]
    proc = start_server(args, env, tmp_path / "server.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc, tmp_path / "server.log")  # /readyz stays open
        body = {"rows": _json_rows(rows)}
        assert _post(f"{url}/predict", body, None)[0] == 401
        ids = [_post(f"{url}/predict", body, token)[1]["request_id"] for _ in range(20)]
        feedback = [_post(f"{url}/feedback", {"request_id": r, "clicked": 1}, token) for r in ids]
        assert [status for status, _ in feedback] == [202] * 20  # whichever worker scored it
        again = [_post(f"{url}/feedback", {"request_id": r, "clicked": 0}, token) for r in ids]
        refused = sum(status == 409 for status, _ in again)
        assert {status for status, _ in again} <= {202, 409}
        sent, status_line = _send_chunked(port, token, 100 << 20)
    finally:
        stop_server(proc)
    assert status_line.startswith(b"HTTP/1.1 413") and sent < 64 << 20
    assert len((logs / PREDICTIONS_FILE).read_text().splitlines()) == 20
    joined = joined_outcomes(logs)  # a duplicate another worker took: counted, not used
    assert joined.matched == 20 and joined.duplicates + refused == 20
    assert {o.clicked for o in joined.outcomes} == {1}


def test_sigterm_stops_every_worker(server: dict[str, Any]) -> None:
    stop_server(server["proc"])
    assert server["proc"].returncode == 0
    assert "Finished server process" in server["log"].read_text()

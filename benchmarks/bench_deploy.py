"""The closed loop, timed: registration → promotion with ``approval: auto``, and rollback.

Two default-world models with a known order are trained on generated data: v1 a
logistic regression trained for one epoch on the data, v2 the default architecture
(dcnv2) trained for five; v1 is production. A real ``ctr-pipeline serve`` (one worker)
follows the registry, and a traffic thread sends the test split's rows one request at a
time, keyed by user, each followed by its true outcome (``POST /feedback``) — the
generator's ground truth, so the better model is known without trusting any report.

- **registration → promotion**: v2 is registered, then the ``deploy_model`` steps run
  as the DAG runs them (``ml.pipeline.deploy``, the DAG's defaults: canary at 10%,
  1,000 outcomes per variant, ``metric: auc``, ``approval: auto``, evidence polled
  every second like ``CTR_EVIDENCE_POLL_S=1``): seconds from ``register`` to
  ``current -> v2``, and the outcomes per variant the decision used. Airflow's own
  scheduling (a few seconds per task under the embedded profile) is left out: the
  integration test ``tests/integration/test_deploy_dag.py`` runs the same under Airflow.
- **rollback**: v3, a model trained on flipped labels (it ranks backwards: the
  "deliberately broken" version), is promoted; ``watch_production``'s check
  (``ml.pipeline.watch.watch``, the config's thresholds, the cool-down set to 0 so that
  the check may act at once after the promotion) runs every second. Reported: outcomes
  on v3 when the check first saw the degradation, and seconds from that check's start
  to the service answering with v2 (the check, the registry's rollback and serve's
  pointer poll).

The canary's latency cost is ``bench_serving``'s ``p99 with a canary / without``.
"""

from __future__ import annotations

import http.client
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_serving import _env, _row

NAME = "ctr_model"
ROWS = 60_000


class Traffic:
    """One keep-alive connection: predict one row (keyed by user), send its outcome."""

    def __init__(self, port: int, rows: list[dict[str, Any]], labels: list[int], key: str):
        self.port, self.rows, self.labels, self.key = port, rows, labels, key
        self.sent = 0
        self.versions: dict[str, int] = {}
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Traffic:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def _post(self, conn: http.client.HTTPConnection, path: str, body: Any) -> Any:
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
        if not 200 <= resp.status < 300:
            raise RuntimeError(f"{path}: {resp.status} {data[:300]!r}")
        return json.loads(data) if data else None

    def check(self) -> None:
        """Raise what stopped the traffic thread, if it stopped."""
        if self.error is not None:
            raise RuntimeError(f"the traffic stopped: {self.error!r}") from self.error

    def _run(self) -> None:
        try:
            self._send()
        except BaseException as exc:  # re-raised by check()
            self.error = exc

    def _send(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        i = 0
        while not self._stop.is_set():
            row, label = self.rows[i % len(self.rows)], self.labels[i % len(self.rows)]
            out = self._post(conn, "/predict", {"rows": [row], "key": row[self.key]})
            self.versions[out["version"]] = self.versions.get(out["version"], 0) + 1
            self._post(conn, "/feedback", {"request_id": out["request_id"], "clicked": label})
            self.sent += 1
            i += 1
        conn.close()


def _setup(tmp: Path) -> tuple[tuple[Path, Path, Path], list[dict[str, Any]], list[int], str]:
    """Features, the three runs (v1 weak, v2 good, v3 broken: flipped labels)."""
    import shutil

    import pandas as pd

    from ml.config import ModelConfig
    from ml.data.generate.world_default import DEFAULT_SPEC
    from ml.data.generate.writer import generate_features
    from ml.data.layout import split_path
    from ml.data.loading import load_split
    from testkit.serving import train_run

    feats = tmp / "features"
    generate_features(feats, rows=ROWS, seed=11)
    m = ModelConfig()
    good = {"name": "dcnv2", "embedding_dim": m.embedding_dim, "hidden_units": [64, 32]}
    v1 = train_run(feats, tmp / "runs", {"name": "logreg"}, epochs=1, seed=3)
    v2 = train_run(feats, tmp / "runs", good, epochs=5, seed=4)
    flipped = tmp / "flipped"
    shutil.copytree(feats, flipped)
    for split in ("train", "val", "test"):
        path = split_path(flipped, split)
        df = pd.read_parquet(path)
        df[DEFAULT_SPEC.label] = 1 - df[DEFAULT_SPEC.label]
        df.to_parquet(path)
    v3 = train_run(flipped, tmp / "runs", good, epochs=2, seed=5)
    test = load_split(feats, "test", DEFAULT_SPEC, with_label=True)
    labels = [int(v) for v in test[DEFAULT_SPEC.label]]
    records = test.drop(columns=[DEFAULT_SPEC.label]).astype(object).to_dict("records")
    rows = [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in records]
    return (v1, v2, v3), rows, labels, "user_id"


def _serving(port: int) -> str | None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/readyz")
        ready = json.loads(conn.getresponse().read())
    finally:
        conn.close()
    return (ready.get("control") or {}).get("version")


def _deploy(registry: Any, run: Path, log_dir: Path, traffic: Traffic) -> dict[str, Any]:
    """Register ``run``, then the deploy steps until promoted or ended."""
    from ml.pipeline import deploy

    start = time.monotonic()
    version = registry.register(run, NAME).version
    s = deploy.DeploySettings(
        model_name=NAME, version=version, approval="auto", require_card=False,
        log_dir=str(log_dir), run="bench_deploy",
    )  # fmt: skip
    deploy.check_candidate(s, registry)
    since = deploy.start_canary(s, registry, version, by="bench")["since"]
    while not (ev := deploy.evidence(s, version, since))["ready"]:
        traffic.check()
        time.sleep(1.0)
    decision = deploy.decide(s, version, since, deploy.links(NAME, version))
    if decision["action"] == deploy.PROMOTE:
        deploy.promote(s, registry, version, by="bench", reason="bench_deploy")
    deploy.finish(s, registry, version, by="bench")
    return {"seconds": time.monotonic() - start, "evidence": ev, "decision": decision}


def _rollback(registry: Any, port: int, log_dir: Path, traffic: Traffic) -> dict[str, Any]:
    """Promote the broken v3, check every second until a check rolls back; time the
    last check's start to the service answering with the old version."""
    from ml.config import WatchConfig
    from ml.pipeline.watch import WatchSettings, watch

    old = registry.current_version(NAME)
    registry.promote_to_production(NAME, "v3", reason="bench_deploy: broken", by="bench")
    given = {"model_name": NAME, "log_dir": str(log_dir), "cooldown_s": 0.0}
    s = WatchSettings.from_config(WatchConfig(), given)
    while True:
        began = time.monotonic()
        out = watch(s, registry, run="bench_deploy")
        if out["action"] == "rolled_back":
            break
        traffic.check()
        time.sleep(1.0)
    while _serving(port) != old:
        time.sleep(0.01)
    rows = out["figures"]["v3"]["rows"]
    return {"seconds": time.monotonic() - began, "outcomes": rows, "degraded": out["degraded"]}


def run(full: bool) -> list[dict]:
    from ml.registry.model_registry import ModelRegistry
    from testkit.serving import free_port, start_server, stop_server, wait_ready

    with tempfile.TemporaryDirectory(prefix="bench_deploy_") as d:
        tmp = Path(d)
        (v1, v2, v3), rows, labels, key = _setup(tmp)
        registry = ModelRegistry(tmp / "models")
        registry.register(v1, NAME)
        registry.promote_to_production(NAME, "v1", reason="bench_deploy")
        port, log_dir = free_port(), tmp / "logs"
        args = ["--registry", str(tmp / "models"), "--log-dir", str(log_dir)]
        args += ["--port", str(port), "--workers", "1", "--threads", "1"]
        proc = start_server(args, _env(tmp), tmp / "server.log")
        try:
            wait_ready(f"http://127.0.0.1:{port}", proc, tmp / "server.log")
            traffic = Traffic(port, rows, labels, key).start()
            deployed = _deploy(registry, v2, log_dir, traffic)
            registry.register(v3, NAME)
            rolled = _rollback(registry, port, log_dir, traffic)
            traffic.stop()
        finally:
            stop_server(proc)
        ev, decision = deployed["evidence"], deployed["decision"]
        restored = registry.current_version(NAME) == "v2"
        return [
            _row(
                "registration -> promotion, approval auto (canary 10%, 1,000 outcomes/variant)",
                round(deployed["seconds"], 1), "s", "v2 (better) promoted",
                decision["action"] == "promote",
            ),
            _row("  outcomes the decision used: control", ev["control"], "events"),
            _row("  outcomes the decision used: candidate", ev["candidate"], "events"),
            _row("  rows scored in all (a predict + a feedback each)", traffic.sent, "rows"),
            _row("broken v3: its outcomes at the rollback", rolled["outcomes"], "events"),
            _row(
                "rollback: degraded signal -> old version serving",
                round(rolled["seconds"], 2), "s", "v2 serving again", restored,
            ),
        ]  # fmt: skip

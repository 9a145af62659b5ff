"""deploy_model under Airflow 3 (`airflow dags test`), approval: auto, with traffic
simulated from a known truth once the canary is live: the better candidate is promoted,
the worse one is not, and the history says who and why."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ml.registry.model_registry import ModelRegistry
from testkit.registry import make_run_dir

pytestmark = pytest.mark.slow
NAME = "ctr_model"

# Waits for the canary, then serves 2000 one-row requests with outcomes (noise per variant).
SIMULATOR = r"""
import json, sys, time
from pathlib import Path
from testkit.serving import write_served_logs
home, version, noise = Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
canary = home / "models" / "production" / "ctr_model" / "canary.json"
deadline = time.time() + 300
while not canary.exists() and time.time() < deadline:
    time.sleep(0.05)
time.sleep(3)  # after wait_for_evidence first looked: it defers
write_served_logs(home / "experiments" / "serving" / "ctr_model", n=2000,
                  versions={"control": "v1", "candidate": version},
                  shares={"control": 0.5, "candidate": 0.5}, noise=noise, seed=int(version[1:]))
"""


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from scripts.airflow_env import airflow_env, ensure_db

    base = tmp_path_factory.mktemp("deploy_home")
    reg = ModelRegistry(base / "models", lock_timeout=5)
    for i in (1, 2, 3):
        reg.register(make_run_dir(base / "runs" / f"r{i}", bytes([i]) * 512), NAME)
    reg.promote_to_production(NAME, "v1")
    env = airflow_env(base, {"CTR_EVIDENCE_POLL_S": "1"})
    ensure_db(env)
    return {"base": base, "env": env, "registry": reg}


def _deploy(home: dict[str, Any], version: str, noise: dict[str, float]) -> str:
    env = home["env"]
    sim = subprocess.Popen(
        [sys.executable, "-c", SIMULATOR, str(home["base"]), version, json.dumps(noise)],
        env=env,
        cwd=str(Path(__file__).resolve().parents[2]),
    )
    conf = {"version": version, "approval": "auto", "require_card": False, "min_impressions": 300}
    airflow = str(Path(sys.executable).parent / "airflow")
    start = time.monotonic()
    proc = subprocess.run(
        [airflow, "dags", "test", "deploy_model", "-c", json.dumps(conf)],
        env=env,
        cwd="/",
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    sim.wait(timeout=60)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    print(f"deploy_model {version}: {time.monotonic() - start:.1f} s")
    out = proc.stdout + proc.stderr
    # wait_for_evidence looked before the traffic came, deferred, and the trigger fired
    assert "Pausing task as DEFERRED" in out and "'ready': True" in out, out[-3000:]
    return out


def test_auto_approval_promotes_the_better_and_rejects_the_worse(home: dict[str, Any]) -> None:
    reg: ModelRegistry = home["registry"]
    out = _deploy(home, "v2", {"control": 1.5, "candidate": 0.2})
    assert reg.current_version(NAME) == "v2", out[-3000:]
    assert reg.get_canary(NAME) is None
    promote = [e for e in reg.history(NAME) if e["event"] == "promote"][-1]
    assert promote["by"] == "deploy_model (approval: auto)"
    assert "candidate BETTER on auc" in promote["reason"] and "deploy_model " in promote["reason"]
    out = _deploy(home, "v3", {"control": 0.2, "candidate": 1.5})
    assert reg.current_version(NAME) == "v2", out[-3000:]
    assert reg.get_canary(NAME) is None
    canary_events = [e for e in reg.history(NAME) if e["event"] == "canary"]
    assert [e["version"] for e in canary_events] == ["v2", None, "v3", None]
    assert "finished, not promoted" in canary_events[-1]["reason"]

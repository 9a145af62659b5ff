"""Tiny registered models for the serving tests and benchmarks.

:func:`build_registry` trains small models on a features directory and registers them
(with their data profiles) in a registry under ``root``; v1 is promoted to production.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

#: Model sections of the versions built: different families, so their scores differ.
TINY_MODELS: tuple[dict[str, Any], ...] = (
    {"name": "deepfm", "embedding_dim": 4, "hidden_units": [8]},
    {"name": "logreg"},
    {"name": "dcnv2", "embedding_dim": 4, "hidden_units": [8], "cross_layers": 1},
)
NAME = "ctr_model"


def train_run(
    features_dir: Path, runs_dir: Path, model: dict[str, Any], *, epochs: int = 1, seed: int = 3
) -> Path:
    """Train one model on ``features_dir``; returns its complete run directory."""
    from ml.config import config_from_dict
    from ml.data.generate.world_default import DEFAULT_SPEC
    from ml.training.job import train

    cfg = config_from_dict(
        {
            "seed": seed,
            "features": DEFAULT_SPEC.to_dict(),
            "data": {"features_dir": str(features_dir)},
            "model": model,
            "training": {
                "batch_size": 512,
                "epochs": epochs,
                "learning_rate": 0.01,
                "device": "cpu",
                "num_threads": 1,
            },
            "output": {"runs_dir": str(runs_dir)},
        }
    )
    return Path(train(cfg, log=lambda _: None, progress=False).run_dir)


def build_registry(
    features_dir: Path, root: Path, models: tuple[dict[str, Any], ...] = TINY_MODELS
) -> Path:
    """Register one version per model (v1, v2, ...) under ``root/models``; promote v1."""
    from ml.monitoring.profile import profile_extra_files
    from ml.registry.model_registry import ModelRegistry

    registry = ModelRegistry(root / "models")
    for i, model in enumerate(models):
        run = train_run(features_dir, root / "runs", model, seed=3 + i)
        registry.register(run, NAME, extra_files=profile_extra_files(run))
    registry.promote_to_production(NAME, "v1", reason="test setup")
    return root / "models"


def copy_registry(template: Path, dest: Path) -> Path:
    """A private copy of a built registry (symlinks kept as links)."""
    shutil.copytree(template, dest, symlinks=True)
    return dest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(args: list[str], env: dict[str, str], log: Path) -> Any:
    """``ctr-pipeline serve ARGS`` as a child process (its own session, output in ``log``)."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "ml.cli", "serve", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_ready(url: str, proc: Any, log: Path, timeout: float = 120.0) -> dict[str, Any]:
    """Poll ``/readyz`` until the service answers; raise with its log if it died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode}):\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as resp:
                ready: dict[str, Any] = json.loads(resp.read())
                return ready
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the server was not ready within {timeout} s:\n{log.read_text()}")


def stop_server(proc: Any, timeout: float = 20.0) -> None:
    """SIGTERM the server's process group (uvicorn stops its workers), then SIGKILL."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    with contextlib.suppress(ProcessLookupError):  # a worker outliving its supervisor
        os.killpg(proc.pid, signal.SIGKILL)


def write_ab_logs(
    log_dir: Path, *, n: int, candidate_noise: float, seed: int = 0, shadow: bool = False
) -> None:
    """n one-row requests: 80% control (noisy scores), 20% candidate; clicks from the truth."""
    import numpy as np

    from ml.serving.service.outcomes import FEEDBACK_FILE, PREDICTIONS_FILE, AppendLog

    rng = np.random.default_rng(seed)
    preds, fb = AppendLog(log_dir / PREDICTIONS_FILE), AppendLog(log_dir / FEEDBACK_FILE)
    for i in range(n):
        logit = rng.normal() - 1.0
        clicked = bool(rng.random() < 1 / (1 + np.exp(-logit)))
        candidate = rng.random() < 0.2
        noise = candidate_noise if candidate else 1.5
        score = float(1 / (1 + np.exp(-(logit + rng.normal(scale=noise)))))
        record: dict[str, Any] = {
            "at": 1.0,
            "request_id": f"r{i}",
            "variant": "candidate" if candidate else "control",
            "version": "v2" if candidate else "v1",
            "scores": [score],
        }
        if shadow:
            record["shadow"] = {"version": "v3", "scores": [1 / (1 + np.exp(-logit))]}
        preds.append(record)
        if i % 10 != 9:  # 10% of the outcomes never come back
            fb.append({"request_id": f"r{i}", "row": 0, "clicked": clicked})
    fb.append({"request_id": "unknown", "row": 0, "clicked": True})
    preds.close()
    fb.close()


def write_served_logs(
    log_dir: Path,
    *,
    n: int,
    versions: dict[str, str],
    shares: dict[str, float] | None = None,
    noise: dict[str, float] | None = None,
    bias: dict[str, float] | None = None,
    coin: bool = False,
    at: float | None = None,
    seed: int = 0,
) -> None:
    """``n`` one-row requests and their outcomes, clicks drawn from a known truth.

    ``versions``: variant -> version; ``shares``: variant -> share of requests
    (default: all to the first). Each variant's score is the true logit plus
    ``noise[variant]`` (default 1.0) and ``bias[variant]`` (a broken model: scores
    shifted, miscalibrated). ``coin``: clicks are a fair coin's, scores near 0.5 for
    every variant (feedback that is only noise).
    """
    import numpy as np

    from ml.serving.service.outcomes import FEEDBACK_FILE, PREDICTIONS_FILE, AppendLog

    rng = np.random.default_rng(seed)
    names = list(versions)
    shares = shares or {names[0]: 1.0}
    probs = np.array([shares.get(v, 0.0) for v in names])
    preds, fb = AppendLog(log_dir / PREDICTIONS_FILE), AppendLog(log_dir / FEEDBACK_FILE)
    when = time.time() if at is None else at
    for i in range(n):
        variant = names[int(rng.choice(len(names), p=probs / probs.sum()))]
        logit = rng.normal() - 1.0
        if coin:
            clicked, score = bool(rng.random() < 0.5), float(rng.uniform(0.45, 0.55))
        else:
            clicked = bool(rng.random() < 1 / (1 + np.exp(-logit)))
            shifted = logit + (bias or {}).get(variant, 0.0)
            shifted += rng.normal(scale=(noise or {}).get(variant, 1.0))
            score = float(1 / (1 + np.exp(-shifted)))
        rid = f"r{seed}-{i}"
        preds.append(
            {
                "at": when,
                "request_id": rid,
                "variant": variant,
                "version": versions[variant],
                "scores": [score],
            }
        )
        fb.append({"request_id": rid, "row": 0, "clicked": clicked})
    preds.close()
    fb.close()

"""Launching training on several processes with torchrun, and reading back its result.

``training.distributed.nproc: N`` (or ``ctr-pipeline train --nproc N``) with N > 1 makes
:func:`ml.training.job.train` call :func:`train_with_torchrun`, which runs::

    python -m torch.distributed.run --standalone --nproc-per-node N \\
        -m ml.training.worker --spec <tmp>/spec.json

and waits for it, passing every line the processes print to the caller's log. Each
process (:mod:`ml.training.worker`) joins the group and calls
:func:`ml.training.job.train` with the same arguments; rank 0 writes the run directory and
the result file read back here, so the caller gets the same result as from one process,
and a bad-input error raised in a rank comes back as the same error class (exit 2 from
the CLI, no Airflow retry). Processes that die without an error (killed, out of memory, a
lost peer) are a :class:`~ml.errors.WorkerFailedError` (retryable) naming the exit status
and the last lines.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from ml import errors
from ml.config import Config
from ml.data.lineage import ValidatedData
from ml.errors import CtrPipelineError, TrainingError, WorkerFailedError
from ml.training.distributed import wants_cuda
from ml.training.trainer import LogFn

#: Lines of the processes' output quoted when they fail without an error of ours.
TAIL_LINES = 20
RESULT_FILE = "result.json"


@dataclass
class Launch:
    """Where :func:`ml.training.job.train` was asked to train (passed to every rank)."""

    features_dir: str | os.PathLike[str] | None
    data: ValidatedData | None
    run_dir: str | os.PathLike[str] | None
    run_key: str | None
    started_at: datetime | None
    resume: bool


def torchrun_command(nproc: int, spec: Path) -> list[str]:
    """The torchrun command line: ``nproc`` processes on this machine."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "ml.training.worker",
        "--spec",
        str(spec),
    ]


def train_with_torchrun(
    cfg: Config,
    launch: Launch,
    evaluate_test: bool,
    provenance: dict[str, Any] | None,
    log: LogFn,
    deadline: float | None,
) -> dict[str, Any]:
    """Train ``cfg`` on ``training.distributed.nproc`` processes; rank 0's result
    (:meth:`ml.training.job.TrainResult.to_dict`).

    Raises:
        TrainingError: more GPU processes asked for than this machine has GPUs.
        CtrPipelineError: the error a rank raised (its class and message).
        WorkerFailedError: a process died without one.
    """
    nproc = cfg.training.distributed.nproc
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if wants_cuda(cfg.training.device) and gpus < nproc:
        raise TrainingError(
            f"training.distributed.nproc is {nproc} but this machine has {gpus} GPU(s) (one "
            f"process per GPU); set it to at most {gpus}, or training.device: cpu"
        )
    with tempfile.TemporaryDirectory(prefix="ctr-torchrun-") as tmp:
        spec = Path(tmp) / "spec.json"
        spec.write_text(json.dumps(_spec(cfg, launch, evaluate_test, provenance, deadline, tmp)))
        backend = "nccl" if wants_cuda(cfg.training.device) else "gloo"
        log(f"🚀 Launching {nproc} training processes with torchrun ({backend})")
        rc, tail = _run(torchrun_command(nproc, spec), _environment(nproc), log)
        return _outcome(Path(tmp), rc, tail)


def _spec(
    cfg: Config,
    launch: Launch,
    evaluate_test: bool,
    provenance: dict[str, Any] | None,
    deadline: float | None,
    tmp: str,
) -> dict[str, Any]:
    return {
        "config": cfg.to_dict(),
        "features_dir": None if launch.features_dir is None else str(launch.features_dir),
        "data": launch.data.to_dict() if launch.data is not None else None,
        "run_dir": None if launch.run_dir is None else str(launch.run_dir),
        "run_key": launch.run_key,
        "started_at": launch.started_at.isoformat() if launch.started_at else None,
        "resume": launch.resume,
        "evaluate_test": evaluate_test,
        "provenance": provenance or {},
        "deadline_s": None if deadline is None else deadline - time.perf_counter(),
        "out": tmp,
    }


def _run(cmd: list[str], env: dict[str, str], log: LogFn) -> tuple[int, list[str]]:
    """Run ``cmd``, every output line to ``log``; ``(exit status, last lines)``."""
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1, env=env
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            tail.append(line)
            log(line)
        return proc.wait(), list(tail)
    finally:
        if proc.poll() is None:  # the caller was interrupted: stop the processes too
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def _environment(nproc: int) -> dict[str, str]:
    """This process's environment, with the CPU threads shared out among the ranks
    (torchrun would set 1 and print a banner saying so); a value set already is kept."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    return env


def result_file(out: str | Path) -> Path:
    """Where rank 0 writes its result in the launch's directory ``out``."""
    return Path(out) / RESULT_FILE


def error_file(out: str | Path, rank: int) -> Path:
    """Where a rank writes the error it raised (type, message, problems)."""
    return Path(out) / f"error-{rank}.json"


def _outcome(tmp: Path, rc: int, tail: list[str]) -> dict[str, Any]:
    result = result_file(tmp)
    if rc == 0 and result.is_file():
        got: dict[str, Any] = json.loads(result.read_text())
        return got
    failures = sorted(tmp.glob("error-*.json"), key=lambda p: int(p.stem.split("-")[1]))
    if failures:
        raise _rebuilt(json.loads(failures[0].read_text()))
    raise WorkerFailedError(
        f"torchrun's training processes exited with status {rc} without an error from the "
        "training (a process was killed, ran out of memory, or lost its peers); the last "
        "lines:\n" + "\n".join(tail)
    )


def _rebuilt(raw: dict[str, Any]) -> CtrPipelineError:
    """The error a rank raised, as the same class (its message; not its constructor's
    arguments, which some classes take in another form)."""
    cls = getattr(errors, str(raw.get("type")), None)
    if not (isinstance(cls, type) and issubclass(cls, CtrPipelineError)):
        cls = TrainingError
    exc = cls.__new__(cls)
    Exception.__init__(exc, str(raw["message"]))
    if raw.get("problems") is not None:
        exc.problems = list(raw["problems"])  # type: ignore[attr-defined]
    return exc

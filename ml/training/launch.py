"""Training on several processes: launching torchrun, and the module each process runs.

``training.distributed.nproc: N`` (or ``ctr-pipeline train --nproc N``) with N > 1 makes
:func:`ml.training.job.train` call :func:`train_with_torchrun`, which runs::

    python -m torch.distributed.run --standalone --nproc-per-node N \\
        -m ml.training.launch --spec <tmp>/spec.json

and waits for it, passing every line the processes print to the caller's log. Each
process joins the group (:func:`ml.training.distributed.init_group`: NCCL on its own GPU,
else gloo) and calls :func:`ml.training.job.train` with the same arguments; rank 0 writes
the run directory and the result file this process reads back, so the caller gets the
same :class:`~ml.training.job.TrainResult` as from one process, and a bad-input error
raised in a rank comes back as the same error class (exit 2 from the CLI, no Airflow retry).
A process that dies without an error (killed, out of memory, a lost peer) is a
:class:`~ml.errors.WorkerFailedError` (retryable) naming the exit status and the last lines.

Several machines (docs/deployment.md): start the same module with torchrun on every node,
with the usual train options instead of ``--spec``::

    torchrun --nnodes 2 --node-rank 0 --nproc-per-node 8 --rdzv-backend c10d \\
        --rdzv-endpoint head:29400 --rdzv-id ctr1 -m ml.training.launch --config cfg.yaml
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from ml import errors
from ml.config import Config, config_from_dict
from ml.data.lineage import ValidatedData
from ml.errors import CtrPipelineError, TrainingError, WorkerFailedError
from ml.fsutil import atomic_write_json
from ml.training.distributed import close_group, init_group, wants_cuda
from ml.training.job import TrainResult, train
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
        "ml.training.launch",
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
) -> TrainResult:
    """Train ``cfg`` on ``training.distributed.nproc`` processes; rank 0's result.

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


def _outcome(tmp: Path, rc: int, tail: list[str]) -> TrainResult:
    result = tmp / RESULT_FILE
    if rc == 0 and result.is_file():
        r = json.loads(result.read_text())
        return TrainResult(
            Path(r["run_dir"]), r["metrics"], r["resumed_from_epoch"], r["reused"], r["url"]
        )
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


# --- in each process ----------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    from ml.cli_common import add_config_args

    p = argparse.ArgumentParser(
        prog="python -m ml.training.launch",
        description="one training process under torchrun (see ml/training/launch.py)",
    )
    p.add_argument("--spec", help="the launch file train_with_torchrun writes")
    add_config_args(p)
    p.add_argument("--features-dir", help="overrides data.features_dir")
    p.add_argument("--model-family", help="overrides model.name")
    p.add_argument("--run-dir", help="run directory (a new one by default)")
    p.add_argument("--no-resume", action="store_true", help="start over in --run-dir")
    return p


def _call(args: argparse.Namespace) -> tuple[Config, dict[str, Any], str | None]:
    """The config, :func:`~ml.training.job.train`'s other arguments, and where rank 0
    writes the result (``--spec``: the launcher's; the train options: nowhere)."""
    if not args.spec:
        from ml.cli_common import load_config_args

        cfg = load_config_args(args)
        if args.model_family:
            cfg = cfg.replace(model={"name": args.model_family})
        kw = {"features_dir": args.features_dir, "run_dir": args.run_dir}
        return cfg, kw | {"resume": not args.no_resume}, None
    s = json.loads(Path(args.spec).read_text())
    kw = {
        "features_dir": s["features_dir"],
        "data": ValidatedData.from_dict(s["data"]) if s["data"] else None,
        "run_dir": s["run_dir"],
        "run_key": s["run_key"],
        "started_at": datetime.fromisoformat(s["started_at"]) if s["started_at"] else None,
        "resume": s["resume"],
        "evaluate_test": s["evaluate_test"],
        "provenance": s["provenance"],
        "deadline": None if s["deadline_s"] is None else time.perf_counter() + s["deadline_s"],
    }
    return config_from_dict(s["config"]), kw, str(s["out"])


def main(argv: Sequence[str] | None = None) -> int:
    """One rank: join the group, train, report (rank 0) or the error (any rank)."""
    cfg, kw, out = _call(_parser().parse_args(argv))
    rank = init_group(cfg.training.device)
    try:
        result = train(cfg, **kw)
        if rank.is_main and out is not None:
            atomic_write_json(Path(out) / RESULT_FILE, _result_dict(result))
        return 0
    except CtrPipelineError as exc:
        print(f"error (rank {rank.rank}): {exc}", file=sys.stderr, flush=True)
        if out is not None:
            raw = {"type": type(exc).__name__, "message": str(exc)}
            atomic_write_json(
                Path(out) / f"error-{rank.rank}.json",
                raw | {"problems": getattr(exc, "problems", None)},
            )
        return exc.exit_code
    finally:
        close_group()


def _result_dict(result: TrainResult) -> dict[str, Any]:
    return {
        "run_dir": str(result.run_dir),
        "metrics": result.metrics,
        "resumed_from_epoch": result.resumed_from_epoch,
        "reused": result.reused,
        "url": result.url,
    }


if __name__ == "__main__":
    sys.exit(main())

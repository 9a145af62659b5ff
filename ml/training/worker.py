"""The module each torchrun process runs: join the group, train, report.

:mod:`ml.training.launch` starts it as ``-m ml.training.worker --spec FILE`` (what
:func:`ml.training.job.train` was asked, as JSON). Each process joins the group
(:func:`ml.training.distributed.init_group`: NCCL on its own GPU, else gloo), calls
:func:`ml.training.job.train` with those arguments, and then rank 0 writes its result,
or any rank the error it raised, where the launcher reads them.

Several machines (docs/deployment.md): start it with torchrun on every node, with
``ctr-pipeline train``'s options instead of ``--spec``::

    torchrun --nnodes 2 --node-rank 0 --nproc-per-node 8 --rdzv-backend c10d \\
        --rdzv-endpoint head:29400 --rdzv-id ctr1 -m ml.training.worker --config cfg.yaml
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from ml.config import Config, config_from_dict
from ml.data.lineage import ValidatedData
from ml.errors import CtrPipelineError
from ml.fsutil import atomic_write_json
from ml.training.distributed import close_group, init_group
from ml.training.job import train
from ml.training.launch import error_file, result_file


def _parser() -> argparse.ArgumentParser:
    from ml.cli_common import add_config_args

    p = argparse.ArgumentParser(
        prog="python -m ml.training.worker",
        description="one training process under torchrun (see ml/training/worker.py)",
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
            atomic_write_json(result_file(out), result.to_dict())
        return 0
    except CtrPipelineError as exc:
        print(f"error (rank {rank.rank}): {exc}", file=sys.stderr, flush=True)
        if out is not None:
            raw: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc)}
            raw["problems"] = getattr(exc, "problems", None)
            atomic_write_json(error_file(out, rank.rank), raw)
        return exc.exit_code
    finally:
        close_group()


if __name__ == "__main__":
    sys.exit(main())

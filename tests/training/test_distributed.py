"""ml.training.distributed: a rank's rows, and the DDP path of the job in a one-rank group
(the two-rank runs under torchrun are in test_launch.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as tdist

from ml.config import Config
from ml.errors import CtrPipelineError
from ml.training import run_dir as rd
from ml.training.distributed import Rank, current
from ml.training.job import train
from ml.training.tensors import EncodedSplit


def _split(rows: int) -> EncodedSplit:
    cat = np.arange(rows, dtype=np.int32).reshape(rows, 1)
    num = np.zeros((rows, 1), dtype=np.float32)
    return EncodedSplit.from_arrays(cat, num, np.arange(rows) % 2, "cpu")


def test_each_rank_gets_every_world_th_row_and_the_same_count() -> None:
    split = _split(7)
    shards = [Rank(r, 3, r, "gloo").shard(split) for r in range(3)]
    ids = [s.data[:, 0].tolist() for s in shards]
    assert ids == [[0, 3], [1, 4], [2, 5]]  # 7 // 3 = 2 rows each; row 6 unused
    assert all(s.n_cat == 1 and s.n_num == 1 for s in shards)


def test_a_plain_process_has_no_rank() -> None:
    assert current() is None


@pytest.fixture
def one_rank_group(tmp_path: Path) -> Iterator[None]:
    store = tdist.FileStore(str(tmp_path / "store"), 1)
    tdist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        yield
    finally:
        tdist.destroy_process_group()


def test_the_ddp_path_writes_the_plain_modules_weights(
    cfg: Config, home: Path, one_rank_group: None
) -> None:
    rank = current()
    assert rank == Rank(0, 1, 0, "gloo")
    cfg = cfg.replace(training={"epochs": 1})
    lines: list[str] = []
    result = train(cfg, run_dir=home / "run", log=lines.append, progress=False)
    assert rd.is_complete(result.run_dir)
    assert result.metrics["distributed"] == {"nproc": 1, "backend": "gloo"}
    assert any("on 1 processes (gloo)" in line for line in lines)
    state = torch.load(result.run_dir / "model_best.pt", weights_only=True)["state_dict"]
    assert state and not any(k.startswith("module.") for k in state)  # not the DDP wrapper's


def test_bad_input_on_rank_zero_is_raised_there(
    cfg: Config, home: Path, one_rank_group: None
) -> None:
    # rank 0 tells the other ranks to stop (a broadcast), then raises the error itself
    with pytest.raises(CtrPipelineError, match="does not exist"):
        train(cfg, features_dir=home / "absent", log=lambda _: None, progress=False)

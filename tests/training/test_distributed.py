"""ml.training.distributed: a rank's rows, the DDP path of the job in a one-rank group, in
memory and streamed, and the other ranks' side of streaming (opening rank 0's shard
cache) with rank 0's messages given (the two-rank runs under torchrun are in
test_launch.py)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.distributed as tdist

from ml.config import Config
from ml.data.layout import features_location
from ml.data.validate import validate_data
from ml.errors import CtrPipelineError
from ml.training import prepare
from ml.training import run_dir as rd
from ml.training.distributed import Rank, current
from ml.training.job import TrainingJob, _stream_ranked, train
from ml.training.reuse import RunChoice
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


def test_the_ddp_path_streams_from_the_shard_cache(
    cfg: Config, home: Path, one_rank_group: None
) -> None:
    cfg = cfg.replace(data={"streaming": True}, training={"epochs": 1})
    lines: list[str] = []
    result = train(cfg, run_dir=home / "run", log=lines.append, progress=False)
    assert rd.is_complete(result.run_dir) and result.metrics["data_loading"] == "streaming"
    assert "Data loading: streaming from a shard cache (data.streaming: true)" in lines


@dataclass(frozen=True)
class _Peer(Rank):
    """A rank other than 0 without a group: rank 0's broadcasts are ``sent``."""

    sent: Any = None

    def broadcast(self, obj: Any) -> Any:
        return self.sent

    def barrier(self) -> None:
        pass


def test_the_other_ranks_open_rank_zeros_cache_and_never_fit(
    cfg: Config, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = cfg.replace(data={"streaming": True})
    feats = features_location(cfg.data.features_dir)
    data = validate_data(feats, cfg.features, cfg.data.numeric_nan)
    lines: list[str] = []
    cpu = torch.device("cpu")
    job = TrainingJob(
        cfg, data, RunChoice(None), None, None, cpu, "fp32", True, {}, lines.append, False, None
    )
    names = ("train", "val", "test")
    pre, mine = prepare.stream_splits(cfg, feats, data.digest, cpu, None, names, lines.append)

    def no_fit(*_: Any, **__: Any) -> Any:
        raise AssertionError("a rank other than 0 fitted the preprocessing")

    monkeypatch.setattr(prepare, "fit_streaming", no_fit)
    sent = pre.state_dict()
    got = _stream_ranked(job, names, _Peer(1, 2, 1, "gloo", 2, sent=sent))
    assert got is not None and list(got[2]) == ["train"]  # train alone
    assert got[2]["train"].shards == mine["train"].shards  # rank 0's cache
    assert got[1].state_dict() == sent and lines[-1].startswith("Shard cache reused")

    # another machine, where the cache is not: its first rank builds the same one
    rows = [s.read(0, s.rows).tolist() for s in mine["train"].shards]
    shutil.rmtree(home / "experiments" / "cache" / "shards")
    lines.clear()
    got = _stream_ranked(job, names, _Peer(2, 4, 0, "gloo", 2, sent=sent))
    assert got is not None and any(line.startswith("Shard cache: encoding") for line in lines)
    rebuilt = got[2]["train"]
    assert rebuilt.shards == mine["train"].shards  # the same key, files and rows
    assert [s.read(0, s.rows).tolist() for s in rebuilt.shards] == rows
    # rank 0 failed to load the data (it reports it): the others stop quietly
    assert _stream_ranked(job, names, _Peer(1, 2, 1, "gloo", 2, sent=None)) is None

"""ml.training.stream_split: a streamed epoch sees every row once in a seeded order that
a resumed run replays from any batch; the trainer resumes mid-epoch where it stopped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from ml.config import Config
from ml.data.loading import load_split
from ml.data.preprocessing import Preprocessor
from ml.data.shard_cache import ShardCache, ShardFile, open_or_build
from ml.models import build_model
from ml.training.run_dir import CHECKPOINT_LAST
from ml.training.stream_split import ShardedSplit
from ml.training.trainer import EarlyStopping, Trainer


@pytest.fixture
def cache(cfg: Config, features_dir: Path, tmp_path: Path) -> ShardCache:
    def fit() -> Preprocessor:
        df = load_split(features_dir, "train", cfg.features)
        return Preprocessor.fit(df, cfg.features, min_frequency=2, numeric_bins=4)

    return open_or_build(
        features_dir,
        "digest",
        {"test": 1},
        ("train", "val"),
        fit,
        lambda _: None,
        root=tmp_path / "cache",
        shard_rows=500,
    )


def _split(cache: ShardCache, name: str = "train") -> ShardedSplit:
    return ShardedSplit(cache, name, torch.device("cpu"), chunk_rows=64, buffer_chunks=4)


def _rows(batches: Any) -> np.ndarray:
    out = []
    for cat, num, y in batches:
        out.append(torch.cat([cat, num.view(torch.int32), y.view(torch.int32)[:, None]], 1))
    return torch.cat(out).numpy()


def _sorted(a: np.ndarray) -> np.ndarray:
    return a[np.lexsort(a.T[::-1])]


def _all_rows(split: ShardedSplit) -> np.ndarray:
    return np.concatenate([s.read(0, s.rows) for s in split.shards])


def test_an_epoch_sees_every_row_once_in_a_seeded_order(cache: ShardCache) -> None:
    split = _split(cache)
    assert len(split.shards) > 2
    every = _all_rows(split)
    epoch1 = _rows(split.train_batches(100, seed=1, epoch=1))
    np.testing.assert_array_equal(_sorted(epoch1), _sorted(every))
    assert not np.array_equal(epoch1, every)  # shuffled
    np.testing.assert_array_equal(epoch1, _rows(split.train_batches(100, seed=1, epoch=1)))
    assert not np.array_equal(epoch1, _rows(split.train_batches(100, seed=1, epoch=2)))
    sizes = [len(y) for _, _, y in split.train_batches(100, seed=1, epoch=1)]
    assert sizes[:-1] == [100] * (len(sizes) - 1) and sum(sizes) == len(split)


def test_resuming_at_a_batch_replays_the_rest_of_the_epoch(cache: ShardCache) -> None:
    split = _split(cache)
    whole = _rows(split.train_batches(100, seed=3, epoch=2))
    for start in (1, 3, 7, 13):  # inside and at the edges of the 256-row buffers
        rest = _rows(split.train_batches(100, seed=3, epoch=2, start_batch=start))
        np.testing.assert_array_equal(rest, whole[start * 100 :])


def test_evaluation_reads_in_file_order(cache: ShardCache) -> None:
    split = _split(cache, "val")
    got = torch.cat(list(split.eval_chunks(77))).numpy()
    np.testing.assert_array_equal(got, _all_rows(split))
    y = split.y.numpy()
    np.testing.assert_array_equal(y, got[:, -1].view(np.float32))
    assert split.label_mean() == pytest.approx(float(y.mean()))
    oov = (got[:, : len(split.oov)] == 0).mean(axis=0)
    np.testing.assert_allclose(split.oov_share(), oov)


class Killed(Exception):
    pass


def _trainer(cache: ShardCache, run_dir: Path, checkpoint_every_s: float = 0.0) -> Trainer:
    torch.manual_seed(0)
    pre = cache.preprocessor
    model = build_model("logreg", vocab_sizes=pre.vocab_sizes, num_numeric=pre.num_numeric)
    return Trainer(
        model,
        run_dir=run_dir,
        checkpoint_meta={},
        learning_rate=0.01,
        weight_decay=0.0,
        batch_size=256,
        epochs=2,
        early_stopping=EarlyStopping("val_auc", patience=5),
        seed=5,
        device=torch.device("cpu"),
        log=lambda _: None,
        progress=False,
        checkpoint_every_s=checkpoint_every_s,
    )


def test_the_trainer_resumes_a_streamed_epoch_at_its_recorded_batch(
    cache: ShardCache, tmp_path: Path
) -> None:
    train, val = _split(cache), _split(cache, "val")
    straight = _trainer(cache, tmp_path / "a", checkpoint_every_s=1e9)
    (tmp_path / "a").mkdir()
    straight.fit(train, val)

    (tmp_path / "b").mkdir()
    first = _trainer(cache, tmp_path / "b")
    steps = 0
    real_step = first.train_step

    def dies_at_batch_5(*args: Any) -> torch.Tensor:
        nonlocal steps
        steps += 1
        if steps == 5 + -(-len(train) // 256):  # batch 5 of epoch 2
            raise Killed
        return real_step(*args)

    first.train_step = dies_at_batch_5  # type: ignore[method-assign]
    with pytest.raises(Killed):
        first.fit(train, val)
    state = torch.load(tmp_path / "b" / CHECKPOINT_LAST, weights_only=True)
    assert state["trainer"]["position"]["epoch"] == 2
    assert state["trainer"]["position"]["batch"] == 4
    resumed = _trainer(cache, tmp_path / "b", checkpoint_every_s=1e9)
    resumed.load_resume_state(state, None)
    resumed.fit(train, val)
    for k, v in straight.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[k], v, rtol=0, atol=0)
    a, b = straight.early.history[-1], resumed.early.history[-1]
    assert a["val_auc"] == b["val_auc"]
    assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-6)


def _chunk_sequence(split: ShardedSplit, seed: int, epoch: int) -> np.ndarray:
    """The epoch's permuted chunks' rows, in order (before the buffers' shuffling)."""
    return np.concatenate(
        [split.shards[i].read(lo, hi) for i, lo, hi in split._chunks(seed, epoch)]
    )


@pytest.mark.parametrize("world", [2, 8])  # 2100 rows: none left over, 4 left over
def test_each_rank_reads_only_its_own_range_of_the_epochs_chunk_order(
    cache: ShardCache, monkeypatch: pytest.MonkeyPatch, world: int
) -> None:
    split = _split(cache)
    n = len(split) // world
    assert n % split.chunk_rows  # the ranges' edges cut chunks
    sequence = _chunk_sequence(split, 4, 2)
    read = 0
    real_read = ShardFile.read

    def counted(shard: ShardFile, lo: int, hi: int) -> np.ndarray:
        nonlocal read
        read += hi - lo
        return real_read(shard, lo, hi)

    monkeypatch.setattr(ShardFile, "read", counted)
    ranks = []
    for r in range(world):
        view = split.for_rank(r, world)
        assert len(view) == n and len(split) == split.rows  # the split itself is untouched
        read = 0
        rows = _rows(view.train_batches(50, seed=4, epoch=2))
        assert read == n  # its own chunks only, trimmed at the range's edges
        np.testing.assert_array_equal(_sorted(rows), _sorted(sequence[r * n : (r + 1) * n]))
        ranks.append(rows)
    # disjoint ranges that together cover world * n rows of the epoch's stream
    np.testing.assert_array_equal(_sorted(np.concatenate(ranks)), _sorted(sequence[: world * n]))


def test_a_ranks_view_is_seeded_and_resumes_at_a_batch(cache: ShardCache) -> None:
    split = _split(cache)
    view = split.for_rank(1, 2)
    whole = _rows(view.train_batches(100, seed=3, epoch=2))
    np.testing.assert_array_equal(whole, _rows(view.train_batches(100, seed=3, epoch=2)))
    assert not np.array_equal(whole, _rows(view.train_batches(100, seed=3, epoch=3)))
    assert not np.array_equal(
        whole, _rows(split.for_rank(0, 2).train_batches(100, seed=3, epoch=2))
    )
    sizes = [len(y) for _, _, y in view.train_batches(100, seed=3, epoch=2)]
    assert sizes[:-1] == [100] * (len(sizes) - 1) and sum(sizes) == len(view)
    for start in (1, 4, 9):  # inside and at the edges of the buffers
        rest = _rows(view.train_batches(100, seed=3, epoch=2, start_batch=start))
        np.testing.assert_array_equal(rest, whole[start * 100 :])


def test_one_rank_of_one_is_the_split_itself(cache: ShardCache) -> None:
    split = _split(cache)
    assert split.for_rank(0, 1) is split
    with pytest.raises(ValueError, match="rank 2 is not in a group of 2"):
        split.for_rank(2, 2)


def test_a_streamed_epoch_checkpointed_by_another_process_count_starts_over(
    cache: ShardCache, tmp_path: Path
) -> None:
    train, val = _split(cache), _split(cache, "val")
    first = _trainer(cache, tmp_path)
    real_step = first.train_step
    steps = 0

    def dies_at_batch_3(*args: Any) -> torch.Tensor:
        nonlocal steps
        steps += 1
        if steps == 3:
            raise Killed
        return real_step(*args)

    first.train_step = dies_at_batch_3  # type: ignore[method-assign]
    with pytest.raises(Killed):
        first.fit(train, val)
    state = torch.load(tmp_path / CHECKPOINT_LAST, weights_only=True)
    position = state["trainer"]["position"]
    assert (position["epoch"], position["batch"], position["world"]) == (1, 2, 1)
    position["world"] = 2  # as if 2 torchrun ranks had written it
    resumed = _trainer(cache, tmp_path, checkpoint_every_s=1e9)
    resumed.load_resume_state(state, None)
    lines: list[str] = []
    resumed.log, resumed.epochs = lines.append, 1
    steps = 0
    real_step = resumed.train_step

    def counted(*args: Any) -> torch.Tensor:
        nonlocal steps
        steps += 1
        return real_step(*args)

    resumed.train_step = counted  # type: ignore[method-assign]
    resumed.fit(train, val)
    assert steps == -(-len(train) // 256)  # the whole epoch, from its first batch
    assert any(
        line.startswith("Restarting epoch 1 from its first batch") and "by 2 process" in line
        for line in lines
    ), lines

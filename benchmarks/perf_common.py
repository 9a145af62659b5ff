"""Scratch support for the perf worker's measurements (issue 10, realistic-size throughput).

Not part of ``make bench``: the ``perf_*.py`` scripts build the issue's shape (DeepFM,
embedding 16, hidden [256, 128], on the project's synthetic data) with the project's own
code and time the trainer's epoch loop and the pre-sliced compute bound under several
settings (precision, optimizer, threads, batch size, compile).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ml.config import load_config
from ml.data.generate.writer import generate_features
from ml.data.loading import load_split
from ml.data.preprocessing import Preprocessor
from ml.metrics import binary_metrics
from ml.models import build_model, model_args_for
from ml.training.sizing import batch_and_decay
from ml.training.tensors import EncodedSplit, encode_split

CHECKOUT = Path(__file__).resolve().parent.parent
WORK = Path(os.environ.get("PERF_WORK", "/tmp/perfwork"))
CFG = load_config(CHECKOUT / "config" / "model_config.yaml")


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


@dataclass(frozen=True)
class Setting:
    name: str = "fp32"
    precision: str = "fp32"  # fp32 | bf16
    optimizer: str = "adam"  # adam (for-loop) | foreach | fused
    threads: int = 1
    batch: int = 8192
    compile: bool = False
    dropout: float = 0.1
    model: str = "deepfm"
    # model levers (1 = this branch's code, 0 = main's code for that piece)
    emb: int = 1  # FieldEmbedding backward through index_add_
    drop: int = 1  # Dropout masks from 16-bit lanes
    fold: int = 1  # DeepFM: numeric vectors contracted into the FM sums and first layer
    # extra (never looked-up) rows in the first table: 45_000 gives the issue's ~1.4M
    # parameters (dense Adam and gradient zeroing scale with them, lookups do not)
    pad_rows: int = 0

    def but(self, **kw: Any) -> Setting:
        return replace(self, **kw)


@dataclass
class Data:
    pre: Preprocessor
    splits: dict[str, EncodedSplit]


def data(rows: int = 714_286, min_frequency: int = 1, seed: int = 42) -> Data:
    """The generator's data (``rows`` over the 3 splits), encoded as the trainer does."""
    feats = WORK / f"f{rows}_s{seed}"
    if not (feats / "schema.json").is_file():
        generate_features(feats, rows=rows, seed=seed, overwrite=True)
    train_df = load_split(feats, "train", CFG.features)
    pre = Preprocessor.fit(train_df, CFG.features, min_frequency=min_frequency)
    splits = {"train": encode_split(pre, train_df, torch.device("cpu"), source="train")}
    del train_df
    for name in ("val", "test"):
        df = load_split(feats, name, CFG.features)
        splits[name] = encode_split(pre, df, torch.device("cpu"), source=name)
    return Data(pre, splits)


def model_args(d: Data, s: Setting) -> dict[str, Any]:
    vocab = list(d.pre.vocab_sizes)
    vocab[0] += s.pad_rows
    return model_args_for(
        s.model,
        vocab_sizes=vocab,
        num_numeric=d.pre.num_numeric,
        hyperparameters={
            "embedding_dim": 16,
            "hidden_units": [256, 128],
            "cross_layers": 2,
            "dropout": s.dropout,
        },
    )


def weight_decay(d: Data, s: Setting) -> float:
    """The shipped config's weight decay as the trainer resolves it for this data."""
    return batch_and_decay(s.batch, CFG.training.weight_decay, len(d.splits["train"]))[1]


def build(d: Data, s: Setting, seed: int = 0) -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    model = build_model(s.model, **model_args(d, s))
    apply_levers(model, s)
    kw: dict[str, Any] = {}
    if s.optimizer == "foreach":
        kw["foreach"] = True
    elif s.optimizer == "fused":
        kw["fused"] = True
    elif s.optimizer != "adam":
        raise ValueError(s.optimizer)
    opt = torch.optim.Adam(
        model.parameters(),
        lr=CFG.training.learning_rate,
        weight_decay=weight_decay(d, s),
        **kw,
    )
    return model, opt


def _legacy_embedding_forward(self: Any, cat: torch.Tensor) -> torch.Tensor:
    return self.table(cat + self.offsets.to(cat.dtype))


def _legacy_deepfm_forward(self: Any, cat: torch.Tensor, num: torch.Tensor) -> torch.Tensor:
    vecs = num.unsqueeze(-1) * self.numeric_vectors
    if self.embedding is not None:
        vecs = torch.cat([self.embedding(cat), vecs], dim=1)
    fm = 0.5 * (vecs.sum(dim=1).pow(2) - vecs.pow(2).sum(dim=1)).sum(dim=1)
    deep = self.mlp_head(self.mlp(vecs.flatten(1))).squeeze(-1)
    return self.linear(cat, num) + fm + deep


def apply_levers(model: nn.Module, s: Setting) -> None:
    """Put main's code back for the levers ``s`` switches off."""
    import types

    from ml.models.deepfm import DeepFM
    from ml.models.layers import Dropout, FieldEmbedding

    for mod in model.modules():
        if not s.emb and isinstance(mod, FieldEmbedding):
            mod.forward = types.MethodType(_legacy_embedding_forward, mod)  # type: ignore[method-assign]
        if not s.fold and isinstance(mod, DeepFM):
            mod.forward = types.MethodType(_legacy_deepfm_forward, mod)  # type: ignore[method-assign]
        if not s.drop and isinstance(mod, nn.Sequential):
            for i, layer in enumerate(mod):
                if isinstance(layer, Dropout):
                    mod[i] = nn.Dropout(layer.p)


def autocast(s: Setting) -> Any:
    if s.precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return nullcontext()


@contextmanager
def threads(n: int) -> Iterator[None]:
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


loss_fn = nn.BCEWithLogitsLoss()


def make_step(model: nn.Module, opt: torch.optim.Optimizer, s: Setting) -> Callable[..., Any]:
    fwd: Callable[..., Any] = model
    if s.compile:
        fwd = torch.compile(model)

    def step(c: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with autocast(s):
            logits = fwd(c, x)
        loss = loss_fn(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()

    return step


def trainer_epoch(
    step: Callable[..., Any], split: EncodedSplit, bs: int, gen: torch.Generator
) -> float:
    """The trainer's epoch loop (Trainer.train_epoch's hot path) with ``step``."""
    n = len(split)
    perm = torch.randperm(n, generator=gen)
    losses = []
    for lo in range(0, n, bs):
        idx = perm[lo : lo + bs]
        c, x, y = split.batch(idx)
        losses.append(step(c, x, y))
    return float(torch.stack(losses).mean())


def presliced(split: EncodedSplit, bs: int, seed: int = 0) -> list[tuple[torch.Tensor, ...]]:
    n = len(split)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return [tuple(t.contiguous() for t in split.batch(perm[i : i + bs])) for i in range(0, n, bs)]


def bound_epoch(step: Callable[..., Any], batches: list[tuple[torch.Tensor, ...]]) -> None:
    for c, x, y in batches:
        step(c, x, y)


@torch.no_grad()
def predict(model: nn.Module, split: EncodedSplit, s: Setting) -> np.ndarray:
    model.eval()
    out = []
    for lo in range(0, len(split), 65_536):
        c, x, _ = split.unpack(split.data[lo : lo + 65_536])
        out.append(torch.sigmoid(model(c, x).float()))
    model.train()
    return torch.cat(out).double().numpy()


def auc(model: nn.Module, split: EncodedSplit, s: Setting) -> float:
    return float(binary_metrics(split.y.numpy(), predict(model, split, s))["auc"])


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def timed(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t

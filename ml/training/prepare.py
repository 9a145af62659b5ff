"""From features to tensors and a model: the preprocessing fitted on train, every split
encoded once (onto the device, or into the shard cache when streaming), each field's
vocabulary and out-of-vocabulary share reported, and the configured model built for the
fitted vocabularies.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ml.config import Config
from ml.data.layout import split_file
from ml.data.loading import load_split
from ml.data.preprocessing import Preprocessor
from ml.data.shard_cache import open_or_build, preprocessing_config
from ml.data.stream_fit import fit_streaming
from ml.models import build_model, init_output_bias, model_args_for
from ml.storage.files import Location
from ml.training.stream_split import ShardedSplit
from ml.training.tensors import encode_split
from ml.training.trainer import LogFn, Split


def encode_splits(
    cfg: Config,
    feats: Location,
    device: torch.device,
    state: dict[str, Any] | None,
    splits: tuple[str, ...],
) -> tuple[Preprocessor, dict[str, Split]]:
    """Fit the preprocessing on train (or take the resumed one) and encode each split once."""
    if state is not None:
        pre = Preprocessor.from_state(state["preprocessor"])
    else:
        train_df = load_split(feats, "train", cfg.features)
        pre = Preprocessor.fit(
            train_df,
            cfg.features,
            min_frequency=cfg.data.min_frequency,
            numeric_nan=cfg.data.numeric_nan,
            numeric_bins=cfg.data.numeric_bins,
            source=str(split_file(feats, "train")),
        )
        del train_df
    encoded: dict[str, Split] = {}
    for name in splits:
        df = load_split(feats, name, cfg.features)
        encoded[name] = encode_split(pre, df, device, source=str(split_file(feats, name)))
        del df  # the DataFrame is freed as soon as it is encoded
    return pre, encoded


def stream_splits(
    cfg: Config,
    feats: Location,
    data_digest: str,
    device: torch.device,
    state: dict[str, Any] | None,
    splits: tuple[str, ...],
    log: LogFn,
    *,
    pre: Preprocessor | None = None,
) -> tuple[Preprocessor, dict[str, Split]]:
    """The streaming path: the preprocessing fitted in one pass over train's row groups
    (or the resumed run's, or the reused cache's), every split encoded once into the
    shard cache (:mod:`ml.data.shard_cache`) and read back batch by batch. ``pre``: the
    preprocessing to use, never refitted (under torchrun rank 0's: the other ranks open
    the cache rank 0 opened or built, or build the same one where they do not find it)."""

    def fit() -> Preprocessor:
        fitted, rows = fit_streaming(
            feats,
            cfg.features,
            min_frequency=cfg.data.min_frequency,
            numeric_nan=cfg.data.numeric_nan,
            numeric_bins=cfg.data.numeric_bins,
            seed=cfg.seed,
        )
        log(f"Preprocessing fitted in one pass over {rows:,} train rows")
        return fitted

    if pre is None and state is not None:
        pre = Preprocessor.from_state(state["preprocessor"])
    cache = open_or_build(feats, data_digest, preprocessing_config(cfg), splits, fit, log, pre=pre)
    pre = pre or cache.preprocessor
    return pre, {name: ShardedSplit(cache, name, device) for name in splits}


def label_mean(split: Split) -> float:
    """The split's click rate."""
    if isinstance(split, ShardedSplit):
        return split.label_mean()
    return float(split.y.mean().item()) if len(split) else 0.0


def vocabulary_report(
    pre: Preprocessor, splits: dict[str, Split], max_oov_share: float, log: LogFn
) -> dict[str, dict[str, Any]]:
    """Log each categorical field's vocabulary size and OOV share; warn above the limit.

    A hashed field (``features.hash_buckets``) reports its buckets as ``vocab_size``,
    ``"hashed": true``, and as OOV share its share of missing values.

    Returns:
        ``{field: {"vocab_size", "oov_train", "oov_val"}}`` (recorded in metrics.json).
    """
    names = [f.name for f in pre.fields]  # the categorical columns (bin fields never OOV)
    hashed = {f.name for f in pre.fields if f.buckets}
    shares = {split: splits[split].oov_share() for split in ("train", "val") if split in splits}
    report: dict[str, dict[str, Any]] = {}
    for j, name in enumerate(names):
        entry: dict[str, Any] = {"vocab_size": pre.vocab_sizes[j] - 1}
        if name in hashed:
            entry["hashed"] = True
        entry.update({f"oov_{s}": round(v[j], 6) for s, v in shares.items()})
        report[name] = entry
    log(
        "Vocabulary (size, OOV share train/val): "
        + ", ".join(
            f"{n} {e['vocab_size']:,}{' hashed' if e.get('hashed') else ''} "
            f"({e.get('oov_train', 0):.1%}/{e.get('oov_val', 0):.1%})"
            for n, e in report.items()
        )
    )
    for name, e in report.items():
        if e.get("oov_val", 0.0) > max_oov_share and not e.get("hashed"):
            log(
                f"⚠️  {name}: {e['oov_val']:.0%} of validation rows fall in the out-of-vocabulary "
                f"bucket (above data.max_oov_share={max_oov_share:.0%}): the model learns "
                f"little from this field; lower data.min_frequency (now {pre.min_frequency}) "
                "or check that train and validation share its values"
            )
    return report


def build(
    cfg: Config, pre: Preprocessor, device: torch.device, base_rate: float | None = None
) -> tuple[Any, dict[str, Any]]:
    """The configured model for the fitted vocabularies, its output bias set to the logit of
    ``base_rate`` (the train CTR) so the first epochs learn features, not the base rate."""
    hyper = {
        "embedding_dim": cfg.model.embedding_dim,
        "hidden_units": list(cfg.model.hidden_units),
        "cross_layers": cfg.model.cross_layers,
        "dropout": cfg.model.dropout,
    }
    model_args = model_args_for(
        cfg.model.name,
        vocab_sizes=pre.vocab_sizes,
        num_numeric=pre.num_numeric,
        hyperparameters=hyper,
    )
    model = build_model(cfg.model.name, **model_args)
    if base_rate is not None and 0.0 < base_rate < 1.0:
        init_output_bias(model, math.log(base_rate / (1.0 - base_rate)))
    return model.to(device), model_args

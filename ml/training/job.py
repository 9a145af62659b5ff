"""The training job: :func:`train` turns a config and features into a complete run directory.

In small named steps: validate and fingerprint the features, choose the run directory
(reuse a finished run of the same config and data, resume an interrupted one, or start a
new one), fit the preprocessing on train and encode every split once onto the device,
report each field's vocabulary and out-of-vocabulary share, build the model, run the
:class:`~ml.training.trainer.Trainer` (a logreg in memory: its exact fit along the L2
path, :mod:`ml.training.linear`), score the best checkpoint on val (and test), and
write ``metrics.json``, ``run.json`` and ``COMPLETE`` last (see
:mod:`ml.training.run_dir`). Features and runs may be in a bucket: the run is then
uploaded checkpoint by checkpoint (:mod:`ml.training.remote_run`).

``training.distributed.nproc`` > 1: :func:`train` launches torchrun
(:mod:`ml.training.launch`), whose every process (:mod:`ml.training.worker`) calls
:func:`train` again; there rank 0 validates, chooses the run directory and writes it,
decides in memory or streaming (:func:`_streaming`) and hands its decisions to the other
ranks (:mod:`ml.training.distributed`). In memory every rank encodes train and keeps its
share of the rows; streamed, rank 0 opens or builds the shard cache first, then the
other ranks open the same cache with rank 0's preprocessing (never fitting their own) and
each reads only its range of every epoch (:func:`_stream_ranked`).
"""

from __future__ import annotations

import os
import platform
import random
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ml.choices import AUTO_MODEL
from ml.config import Config, inapplicable_warning
from ml.data.layout import features_location
from ml.data.lineage import ValidatedData
from ml.data.loading import check_features_dir
from ml.data.preprocessing import Preprocessor
from ml.errors import CtrPipelineError, TrainingError
from ml.fsutil import atomic_write_json, atomic_write_text, utc_now
from ml.provenance import code_version
from ml.storage.files import Location
from ml.training import auto, data_mode, linear
from ml.training import checkpoint as ck
from ml.training import run_dir as rd
from ml.training.calibration import calibrate_run
from ml.training.distributed import Rank, current, rank_device
from ml.training.hardware import resolve_precision
from ml.training.prepare import build, encode_splits, label_mean, stream_splits, vocabulary_report
from ml.training.remote_run import RemoteRun, is_remote, new_run
from ml.training.reuse import RunChoice, choose_run_dir
from ml.training.sizing import (
    auto_monitor,
    auto_patience,
    batch_and_decay,
    patience_reason,
    steps_per_epoch,
)
from ml.training.tensors import EncodedSplit
from ml.training.trainer import EarlyStopping, EpochCallback, LogFn, Split, Trainer


@dataclass
class TrainResult:
    """What :func:`train` produced."""

    run_dir: Path
    metrics: dict[str, Any]
    resumed_from_epoch: int | None = None
    reused: bool = False
    #: the run's URL when it lives in a bucket (``run_dir`` is then its local copy)
    url: str | None = None

    @property
    def location(self) -> str:
        """Where the run lives: its URL, or its local path."""
        return self.url or str(self.run_dir)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (what a torchrun rank 0 hands back to the launcher)."""
        return {
            "run_dir": str(self.run_dir),
            "metrics": self.metrics,
            "resumed_from_epoch": self.resumed_from_epoch,
            "reused": self.reused,
            "url": self.url,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TrainResult:
        return cls(
            Path(raw["run_dir"]),
            raw["metrics"],
            raw["resumed_from_epoch"],
            bool(raw["reused"]),
            raw["url"],
        )


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise TrainingError(
            "training.device is 'cuda' but no CUDA device is available; set it to auto or cpu"
        )
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class TrainingJob:
    """One call of :func:`train`: what it was asked and what it settled before training."""

    cfg: Config
    data: ValidatedData
    run: RunChoice
    run_key: str | None
    started_at: datetime | None
    device: torch.device
    precision: str
    evaluate_test: bool
    provenance: dict[str, Any]
    log: LogFn
    progress: bool | None
    on_epoch_end: EpochCallback | None
    wall_start: float = field(default_factory=time.perf_counter)
    deadline: float | None = None
    resume: bool = True
    rank: Rank | None = None  # under torchrun

    @property
    def feats(self) -> Location:
        return self.data.root


def train(
    cfg: Config,
    *,
    features_dir: str | os.PathLike[str] | None = None,
    data: ValidatedData | None = None,
    run_dir: str | os.PathLike[str] | None = None,
    run_key: str | None = None,
    started_at: datetime | None = None,
    resume: bool = True,
    evaluate_test: bool = True,
    provenance: dict[str, Any] | None = None,
    log: LogFn | None = None,
    progress: bool | None = None,
    on_epoch_end: EpochCallback | None = None,
    deadline: float | None = None,
) -> TrainResult:
    """Train ``cfg.model`` on the features and write a complete run directory
    (``model.name: auto``: the best candidate family's, :mod:`ml.training.auto`); with
    ``training.distributed.nproc`` > 1 on that many torchrun processes (module doc).

    Args:
        cfg: the typed configuration.
        features_dir: overrides ``cfg.data.features_dir``.
        data: the features as this run already validated and fingerprinted them
            (``ml.data.validate.validate_data``); used as it is while its files are
            unchanged, so a run reads its data for validation and hashes it once.
        run_dir: an explicit run directory: a complete one of the same config and data
            is reused, an interrupted one resumed (when ``resume``); another config's or
            data's is an error.
        run_key: train for a pipeline run (:func:`ml.training.run_dir.run_key`): its
            newest run directory is reused or resumed when config and data match,
            otherwise a new one of the key is started and the log says why.
        started_at: the pipeline run's time, for a new keyed directory's name.
        resume: continue an interrupted run (otherwise start it over).
        evaluate_test: score the test split at the end (tuning trials never read it).
        provenance: extra fields for ``run.json`` (e.g. ``dag_id``, ``run_id``).
        log: receives each log line (default: print to stdout).
        progress: progress bar on stderr (default: only when stderr is a TTY).
        on_epoch_end: called after each epoch's checkpoint as ``(epoch, record)``.
        deadline: a ``time.perf_counter()`` value after which no new epoch starts.

    Raises:
        TrainingError: missing features or columns, bad values, a run directory that
            belongs to another configuration or data, NaN loss, or CUDA without a GPU.
        WorkerFailedError: a torchrun process died without an error of its own.
    """
    log = log or (lambda line: print(line, flush=True))
    rank = current()
    if rank is None and cfg.training.distributed.nproc > 1 and cfg.model.name != AUTO_MODEL:
        if on_epoch_end is None:
            from ml.training.launch import Launch, train_with_torchrun

            launch = Launch(features_dir, data, run_dir, run_key, started_at, resume)
            got = train_with_torchrun(cfg, launch, evaluate_test, provenance, log, deadline)
            return TrainResult.from_dict(got)
        log("training.distributed.nproc ignored: a tuning trial trains in one process")
    if rank is not None and cfg.model.name == AUTO_MODEL:
        raise TrainingError(
            "model.name auto trains its candidates one after another and cannot run under "
            "torchrun; name one family (--model-family) or use `ctr-pipeline train --nproc N`, "
            "which launches torchrun for each candidate"
        )
    if rank is not None and not rank.is_main:
        log = _silent
    wall_start = time.perf_counter()
    feats = features_location(features_dir if features_dir is not None else cfg.data.features_dir)
    chosen = _choose_run(cfg, feats, data, (run_dir, run_key, resume), rank, log)
    if chosen is None:  # rank 0 rejected the input and reports it; nothing to do here
        return TrainResult(Path(), {}, None)
    data, run = chosen
    if run.reused:
        assert run.out is not None
        if rank is not None and not rank.is_main:
            return TrainResult(run.out, {}, None, reused=True)
        url = run.remote.url if run.remote else None
        shown = run.remote or run.out
        log(f"✅ Training complete (reusing finished run {shown}: same config and data)")
        return TrainResult(run.out, rd.read_metrics(run.out), None, reused=True, url=url)

    device = resolve_device(cfg.training.device)
    if rank is not None:
        device = rank_device(rank, device)
    precision, note = resolve_precision(cfg.training.precision, device.type)
    if note:
        log(note)
    threads = torch.get_num_threads()
    if cfg.training.num_threads:
        torch.set_num_threads(cfg.training.num_threads)
    job = TrainingJob(
        cfg,
        data,
        run,
        run_key,
        started_at,
        device,
        precision,
        evaluate_test,
        provenance or {},
        log,
        progress,
        on_epoch_end,
        wall_start,
        deadline,
        resume,
        rank,
    )
    try:
        return _train_auto(job) if cfg.model.name == AUTO_MODEL else _train(job)
    finally:
        torch.set_num_threads(threads)  # the thread count is process-wide: restore it


def _silent(line: str) -> None:
    """The log of the ranks other than 0: rank 0 tells what they all do."""


def _choose_run(
    cfg: Config,
    feats: Location,
    data: ValidatedData | None,
    where: tuple[Any, str | None, bool],
    rank: Rank | None,
    log: LogFn,
) -> tuple[ValidatedData, RunChoice] | None:
    """Validate the features and choose the run directory (``where``: run_dir, run_key,
    resume); under torchrun rank 0 does and the other ranks receive its choice, or
    ``None`` when rank 0 raised (only rank 0 reports the error: one clean message)."""
    run = RunChoice(None)
    if rank is None or rank.is_main:
        try:
            check_features_dir(feats)
            warning = inapplicable_warning(cfg)
            if warning:
                log(f"⚠️  {warning}")
            data = _validated(cfg, feats, data, log)
            run = choose_run_dir(cfg, where[0], where[1], data.digest, where[2])
        except CtrPipelineError:
            if rank is not None:
                rank.broadcast(None)  # the other ranks stop quietly; this one reports
            raise
        for note in run.notes:
            log(note)
    if rank is not None:
        return _shared_run(rank, data, run)
    assert data is not None
    return data, run


def _shared_run(
    rank: Rank, data: ValidatedData | None, run: RunChoice
) -> tuple[ValidatedData, RunChoice] | None:
    """Rank 0's validated data and run choice (what it resumes from) on every rank."""
    mine = None
    if rank.is_main:
        where = str(run.out) if run.out is not None else None
        mine = {"data": data, "out": where, "state": run.resume_state, "reused": run.reused}
    got = rank.broadcast(mine)
    if got is None:
        return None
    if rank.is_main:
        assert data is not None
        return data, run
    out = Path(got["out"]) if got["out"] is not None else None
    return got["data"], RunChoice(out, got["state"], got["reused"])


def _validated(
    cfg: Config, feats: Location, data: ValidatedData | None, log: LogFn
) -> ValidatedData:
    """``data`` when it describes ``feats`` as they are now, else a fresh validation."""
    if data is not None and data.current(feats):
        log(f"✅ Features valid (validated earlier in this run): {data.describe()}")
        return data
    from ml.data.validate import validate_data

    data = validate_data(feats, cfg.features, cfg.data.numeric_nan)
    log(f"✅ Features valid: {data.describe()}")
    for warning in data.warnings:
        log(f"⚠️  {warning}")
    return data


def _make_trainer(
    cfg: Config,
    model: Any,
    out: Path,
    meta: dict[str, Any],
    device: torch.device,
    patience: int,
    monitor: str,
    **kw: Any,
) -> Trainer:
    t = cfg.training
    return Trainer(
        model,
        run_dir=out,
        checkpoint_meta=meta,
        learning_rate=t.learning_rate,
        epochs=t.epochs,
        early_stopping=EarlyStopping(monitor=monitor, patience=patience, min_delta=t.min_delta),
        seed=cfg.seed,
        device=device,
        **kw,
    )


def _train(job: TrainingJob) -> TrainResult:
    cfg, run, log, feats, device = job.cfg, job.run, job.log, job.feats, job.device
    state, rank = run.resume_state, job.rank
    main = rank is None or rank.is_main
    log(
        f"🚀 Running training command... model={cfg.model.name} features={feats} device={device}"
        + (f" run_dir={run.remote or run.out}" if run.out is not None else "")
        + (f" (resuming after epoch {state['trainer']['epoch']})" if state else "")
        + (f" on {rank.world} processes ({rank.backend})" if rank is not None else "")
    )
    seed_everything(cfg.seed)
    split_names = ("train", "val", "test") if job.evaluate_test else ("train", "val")
    loaded = _load(job, split_names)  # under torchrun the ranks but 0 read train alone
    if loaded is None:  # rank 0 failed to load the data and reports it
        return TrainResult(Path(), {}, None)
    streaming, pre, splits = loaded
    vocab = vocabulary_report(pre, splits, cfg.data.max_oov_share, log) if main else {}
    model, model_args = build(cfg, pre, device, base_rate=label_mean(splits["train"]))
    n_params = sum(p.numel() for p in model.parameters())
    log(
        "Data: "
        + " / ".join(f"{name} {len(s):,}" for name, s in splits.items())
        + f" rows; {cfg.model.name} with {n_params:,} parameters on {device}"
    )
    train_seen = (len(splits["train"]), label_mean(splits["train"]))  # before sharding
    out = _make_run_dir(cfg, run, job.run_key, job.started_at, log) if main else run.out
    meta = _checkpoint_meta(cfg, model_args, pre)
    exact = linear.use_exact_fit(cfg, splits["train"], log, streaming, rank is not None, state)
    sizes = _sizes(cfg, len(splits["train"]), len(splits["val"]), log, exact) if main else None
    if rank is not None:  # rank 0's run directory and sizes; each rank its own train rows
        out, sizes = rank.broadcast((str(out), sizes))
        out, splits["train"] = Path(out), rank.shard(splits["train"])
    assert out is not None and sizes is not None
    trainer = _make_trainer(
        cfg,
        model,
        out,
        meta,
        device,
        log=log,
        progress=job.progress if main else False,
        on_epoch_end=_uploading(run.remote, job.on_epoch_end),
        precision=job.precision,
        deadline=job.deadline,
        rank=rank,
        **sizes,
    )
    if not main:
        if state is not None:
            trainer.load_resume_state(state, None)
        trainer.fit(splits["train"], None)
        return TrainResult(out, {}, int(state["trainer"]["epoch"]) if state else None)
    started, resumed_from = _start(trainer, cfg, out, state, pre, job.data.fingerprint)
    trainer.resume_meta["streaming"] = streaming
    fitted = _fit(trainer, cfg, splits, exact)
    calibration = calibrate_run(trainer, splits, out / rd.MODEL_BEST, log)
    metrics = _final_metrics(cfg, trainer, splits, vocab, n_params, device, job.wall_start)
    metrics.update(fitted)
    metrics["rows"]["train"], metrics["base_ctr"]["train"] = train_seen
    if rank is not None:
        metrics["distributed"] = {"nproc": rank.world, "backend": rank.backend}
    metrics["calibration"] = calibration
    metrics["data_loading"] = "streaming" if streaming else "in_memory"
    if trainer.cut_short:
        metrics["cut_short"] = trainer.cut_short
    _write_complete(out, metrics, _run_info(job, started, resumed_from))
    if run.remote is not None:
        run.remote.push_complete()
    test = f", test AUC {metrics['test_auc']:.4f}" if "test_auc" in metrics else ""
    log(
        f"✅ Training complete: best epoch {metrics['best_epoch']}, "
        f"val AUC {metrics['val_auc']:.4f}{test}, {metrics['wall_time_s']:.1f}s → "
        f"{run.remote or out}"
    )
    url = run.remote.url if run.remote else None
    return TrainResult(out, metrics, resumed_from, reused=False, url=url)


def _fit(trainer: Trainer, cfg: Config, splits: dict[str, Split], exact: bool) -> dict[str, Any]:
    """Train (the loop; a logreg's exact fit, :mod:`ml.training.linear`) and load the kept
    weights into the model; returns what the fit adds to the metrics."""
    fitted: dict[str, Any] = {}
    if exact:
        train = splits["train"]
        assert isinstance(train, EncodedSplit)  # use_exact_fit: never streamed
        fitted["linear_fit"] = linear.fit_path(
            trainer, train, splits["val"], cfg.training.weight_decay
        )
    else:
        trainer.fit(splits["train"], splits["val"])
    if trainer.best_state is None:
        raise TrainingError(
            f"no epoch produced a finite {cfg.training.monitor}; check the data and the config"
        )
    trainer.model.load_state_dict(trainer.best_state)
    return fitted


def _train_auto(job: TrainingJob) -> TrainResult:
    """``model.name: auto``: the candidates train through :func:`train` into the run's
    ``candidates/`` (reused or resumed there like any run), the best is copied up."""
    cfg, log = job.cfg, job.log
    out = _make_run_dir(cfg, job.run, job.run_key, job.started_at, log)
    started = utc_now()

    def train_candidate(ccfg: Config, run_dir: Path, deadline: float | None) -> dict[str, Any]:
        return train(
            ccfg,
            features_dir=job.feats,
            data=job.data,
            run_dir=run_dir,
            resume=job.resume,
            evaluate_test=job.evaluate_test,
            provenance=job.provenance,
            log=log,
            progress=job.progress,
            deadline=deadline,
        ).metrics

    choice, chosen = auto.choose(
        cfg,
        out,
        train_candidate,
        train_rows=job.data.rows.get("train", 0),
        val_rows=job.data.rows.get("val", 0),
        log=log,
    )
    wall = time.perf_counter() - job.wall_start
    metrics = auto.write_run(out, chosen, choice, _run_info(job, started, None), wall)
    if job.run.remote is not None:
        job.run.remote.push_complete()
    test = f", test AUC {metrics['test_auc']:.4f}" if "test_auc" in metrics else ""
    log(
        f"✅ Training complete (model auto: {choice.chosen}): val AUC "
        f"{metrics['val_auc']:.4f}{test}, {wall:.1f}s → {job.run.remote or out}"
    )
    url = job.run.remote.url if job.run.remote else None
    return TrainResult(out, metrics, None, reused=False, url=url)


def _run_info(job: TrainingJob, started: str, resumed_from: int | None) -> dict[str, Any]:
    """``run.json``: where the data came from, what config and code trained, when, where."""
    return {
        "features_dir": str(job.feats),
        "data_fingerprint": job.data.fingerprint,
        "config_digest": job.cfg.digest(),
        "code_version": code_version(),
        "seed": job.cfg.seed,
        "started_at": started,
        "finished_at": utc_now(),
        "resumed_from_epoch": resumed_from,
        **_host(job.device),
        **job.provenance,
    }


def _load(
    job: TrainingJob, names: tuple[str, ...]
) -> tuple[bool, Preprocessor, dict[str, Any]] | None:
    """``(streaming, preprocessor, splits)``: the splits encoded in memory, or their shard
    cache (see :func:`_streaming`). ``names``: the splits rank 0 (or the one process)
    reads; under torchrun the other ranks read train alone. ``None`` on the ranks but 0
    when rank 0 failed (it raises and reports the error)."""
    cfg, feats, device, state, rank = job.cfg, job.feats, job.device, job.run.resume_state, job.rank
    streaming = _streaming(job, names)
    if streaming is None:
        return None
    if rank is not None and streaming:
        return _stream_ranked(job, names, rank)
    if rank is not None and not rank.is_main:
        names = ("train",)
    if streaming:
        pre, splits = stream_splits(cfg, feats, job.data.digest, device, state, names, job.log)
    else:
        pre, splits = encode_splits(cfg, feats, device, state, names)
    return streaming, pre, dict(splits)


def _streaming(job: TrainingJob, names: tuple[str, ...]) -> bool | None:
    """Stream or load into memory: as the resumed run did (its checkpoint's position
    means a place in the streamed order), else as ``data.streaming`` decides (logged;
    under torchrun counting a train split per process on this machine). Under torchrun
    rank 0 decides and the other ranks receive its choice (``None`` when it failed)."""
    rank, state = job.rank, job.run.resume_state
    streaming = None
    if rank is None or rank.is_main:
        try:
            if state is not None and "streaming" in state:
                streaming = bool(state["streaming"])
                how = "streaming" if streaming else "in memory"
                job.log(f"Data loading: {how} (as the resumed run)")
            else:
                copies = rank.local_world if rank is not None else 1
                mode = data_mode.choose(job.cfg, job.feats, names, job.device, copies)
                job.log(data_mode.describe(mode))
                streaming = mode.streaming
        except CtrPipelineError:
            if rank is not None:
                rank.broadcast(None)  # the other ranks stop quietly; this one reports
            raise
    if rank is None:
        return streaming
    got: bool | None = rank.broadcast(streaming)
    return got


def _stream_ranked(
    job: TrainingJob, names: tuple[str, ...], rank: Rank
) -> tuple[bool, Preprocessor, dict[str, Any]] | None:
    """Streaming under torchrun: rank 0 opens or builds the shard cache of ``names``
    and sends its preprocessing; then the other ranks open that cache for train (the
    first rank of each other machine first: where the cache is not on a disk it shares
    with rank 0, it builds the same one, once per machine, with rank 0's preprocessing)."""
    cfg, feats, device, state, log = job.cfg, job.feats, job.device, job.run.resume_state, job.log
    digest = job.data.digest
    if rank.is_main:
        try:
            pre, splits = stream_splits(cfg, feats, digest, device, state, names, log)
        except CtrPipelineError:
            rank.broadcast(None)
            raise
        rank.broadcast(pre.state_dict())
        rank.barrier()  # the other machines' first ranks have their cache
        return True, pre, dict(splits)
    got = rank.broadcast(None)
    if got is None:
        return None
    pre = Preprocessor.from_state(got)
    if rank.local_rank == 0:
        _, splits = stream_splits(cfg, feats, digest, device, state, names, log, pre=pre)
    rank.barrier()
    if rank.local_rank != 0:
        _, splits = stream_splits(cfg, feats, digest, device, state, names, log, pre=pre)
    return True, pre, {"train": splits["train"]}


def _make_run_dir(
    cfg: Config, run: RunChoice, run_key: str | None, started_at: datetime | None, log: LogFn
) -> Path:
    """The run directory, created only now (after the data and the model built), so that
    bad input leaves no empty run behind. In a bucket: its name claimed there, and a
    local working copy (``run.remote`` set)."""
    if run.out is None and is_remote(cfg.output.runs_dir):
        url = new_run(str(cfg.output.runs_dir), cfg.experiment_name, key=run_key, when=started_at)
        run.remote = RemoteRun(url)
        run.out = run.remote.start_fresh()
    out = run.out or rd.new_run_dir(
        cfg.output.runs_dir, cfg.experiment_name, key=run_key, when=started_at
    )
    out.mkdir(parents=True, exist_ok=True)
    log(f"Run directory: {run.remote or out}")
    return out


def _uploading(remote: RemoteRun | None, callback: EpochCallback | None) -> EpochCallback | None:
    """``callback``, preceded by uploading the epoch's checkpoint when the run is in a bucket."""
    if remote is None:
        return callback

    def after_epoch(epoch: int, record: dict[str, Any]) -> None:
        remote.push_checkpoint()
        if callback is not None:
            callback(epoch, record)

    return after_epoch


def _checkpoint_meta(cfg: Config, model_args: dict[str, Any], pre: Preprocessor) -> dict[str, Any]:
    """The plain fields every ``model_best.pt`` carries besides the weights."""
    return {
        "model_name": cfg.model.name,
        "model_args": model_args,
        "preprocessor": pre.state_dict(),
        "features": cfg.features.to_dict(),
        "config": cfg.recorded_dict(),
    }


def _sizes(
    cfg: Config, train_rows: int, val_rows: int, log: LogFn, exact: bool = False
) -> dict[str, Any]:
    """``training.batch_size``, ``weight_decay``, ``patience`` and ``monitor``, the
    automatic ones for ``null`` (``auto``); a logreg's weight decay for ``null`` is
    :func:`ml.training.linear.start_weight_decay` (``exact``: a logreg fitted exactly,
    which uses only the monitor)."""
    t = cfg.training
    batch, decay = batch_and_decay(t.batch_size, t.weight_decay, train_rows)
    if cfg.model.name == "logreg" and t.weight_decay is None:
        decay = linear.start_weight_decay(train_rows)
    patience = t.patience if t.patience is not None else auto_patience(val_rows)
    monitor = t.monitor if t.monitor != "auto" else auto_monitor(val_rows)
    if t.monitor == "auto":
        log(
            f"Early stopping on {monitor} (monitor automatic: {val_rows:,} val rows; val_auc "
            "from 10,000, where it is steady; the kept epoch is calibrated afterwards)"
        )
    auto = [k for k in ("batch_size", "weight_decay", "patience") if getattr(t, k) is None]
    if auto and not exact:
        log(
            f"Batch size {batch}, weight decay {decay:.2g}, patience {patience} "
            f"({', '.join(auto)} automatic: {train_rows:,} train rows, "
            f"{steps_per_epoch(train_rows, batch)} steps per epoch, {val_rows:,} val rows)"
            + (f"; patience {patience_reason(val_rows)}" if t.patience is None else "")
        )
    return {"batch_size": batch, "weight_decay": decay, "patience": patience, "monitor": monitor}


def _start(
    trainer: Trainer,
    cfg: Config,
    out: Path,
    state: dict[str, Any] | None,
    pre: Preprocessor,
    fingerprint: dict[str, Any],
) -> tuple[str, int | None]:
    """Restore a resumed run's trainer (or write the new run's config); returns
    ``(started_at, resumed_from_epoch)``."""
    started = utc_now()
    resumed_from: int | None = None
    if state is not None:
        best_path = out / rd.MODEL_BEST
        best = ck.load_checkpoint(best_path)["state_dict"] if best_path.is_file() else None
        trainer.load_resume_state(state, best)
        resumed_from = trainer.epoch
        started = str(state.get("started_at", started))
    else:
        atomic_write_text(out / rd.CONFIG_YAML, cfg.to_yaml())
    trainer.resume_meta = {
        "config_digest": cfg.digest(),
        "data_fingerprint": fingerprint,
        "preprocessor": pre.state_dict(),
        "started_at": started,
    }
    return started, resumed_from


def _final_metrics(
    cfg: Config,
    trainer: Trainer,
    splits: dict[str, Split],
    vocab: dict[str, Any],
    n_params: int,
    device: torch.device,
    wall_start: float,
) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    for name in ("test", "val"):
        if name in splits:
            m = trainer.evaluate(splits[name])
            metrics.update({f"{name}_{k}": m[k] for k in ("auc", "logloss", "accuracy")})
    history = trainer.early.history
    train_s = sum(h["train_s"] for h in history)
    metrics.update(
        {
            "monitor": trainer.early.monitor,
            "best_epoch": trainer.early.best_epoch,
            "epochs_run": trainer.epoch,
            "stopped_early": trainer.early.stopped,
            "batch_size": trainer.batch_size,
            "weight_decay": trainer.weight_decay,
            "patience": trainer.early.patience,
            "precision": trainer.precision,
            "samples_per_sec": sum(h["train_samples"] for h in history) / max(train_s, 1e-9),
            "train_time_s": round(sum(h["epoch_s"] for h in history), 4),
            "wall_time_s": round(time.perf_counter() - wall_start, 4),
            "device": str(device),
            "model": cfg.model.name,
            "n_params": n_params,
            "rows": {k: len(v) for k, v in splits.items()},
            "base_ctr": {k: label_mean(v) for k, v in splits.items()},
            "vocabulary": vocab,
            "history": history,
        }
    )
    return metrics


def _host(device: torch.device) -> dict[str, Any]:
    return {
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "device": str(device),
        "hostname": socket.gethostname(),
    }


def _write_complete(out: Path, metrics: dict[str, Any], run_info: dict[str, Any]) -> None:
    atomic_write_json(out / rd.METRICS_JSON, metrics)
    atomic_write_json(out / rd.RUN_JSON, run_info)
    rd.mark_complete(out)
    # The resume state is only needed while running; the finished run keeps model_best.pt.
    (out / rd.CHECKPOINT_LAST).unlink(missing_ok=True)

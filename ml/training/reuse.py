"""Where a training job runs: reuse a finished run, resume an interrupted one, or start anew.

A finished run is reused, and an interrupted one resumed, only when it was trained on
the same config (digest) and the same data (fingerprint digest); otherwise a keyed run
gets a new directory of its key and the log says why, and an explicit ``--run-dir`` is an
error (it names what differs).

In a bucket (``runs_dir`` or ``--run-dir`` a URL) the same decisions are taken from the
objects: a finished run is downloaded, an interrupted one's checkpoint and resume
state are (:mod:`ml.training.remote_run`), and ``out`` is the local working copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ml import paths
from ml.config import Config
from ml.errors import CheckpointError, TrainingError
from ml.training import checkpoint as ck
from ml.training import run_dir as rd
from ml.training.remote_run import RemoteRun, is_remote, runs_for_key


@dataclass
class RunChoice:
    """The decision about where to train: a directory, and what it already holds."""

    out: Path | None  # None: create a new one once the data has loaded
    resume_state: dict[str, Any] | None = None
    reused: bool = False
    notes: list[str] = field(default_factory=list)
    #: the run in a bucket that ``out`` is the working copy of
    remote: RemoteRun | None = None


def choose_run_dir(
    cfg: Config, run_dir: Any, run_key: str | None, data_digest: str, resume: bool
) -> RunChoice:
    digest = cfg.digest()
    if is_remote(run_dir) or (run_dir is None and is_remote(cfg.output.runs_dir)):
        return _choose_remote(cfg, run_dir, run_key, data_digest, resume)
    if run_dir is not None:
        out = paths.resolve(run_dir)
        if rd.is_complete(out):
            why = rd.mismatch(out, config_digest=digest, data_digest=data_digest)
            if why:
                raise TrainingError(
                    f"{out} is a finished run of other inputs ({why}); pass a new --run-dir "
                    "or omit it"
                )
            return RunChoice(out, reused=True)
        return RunChoice(
            out, _resume_state(out, digest, data_digest, strict=True) if resume else None
        )
    if run_key is None:
        return RunChoice(None)
    candidates = rd.runs_for_key(cfg.output.runs_dir, cfg.experiment_name, run_key)
    if not candidates:
        return RunChoice(None)
    newest = candidates[-1]
    if rd.is_complete(newest):
        why = rd.mismatch(newest, config_digest=digest, data_digest=data_digest)
        if why is None:
            return RunChoice(newest, reused=True)
        return RunChoice(None, notes=[f"Not reusing {newest}: {why}; starting a new run directory"])
    state = _resume_state(newest, digest, data_digest, strict=False) if resume else None
    if state is None and (newest / rd.CHECKPOINT_LAST).is_file():
        return RunChoice(
            None, notes=[f"Not resuming {newest}: other config or data; starting anew"]
        )
    return RunChoice(newest, state)


def _resume_state(
    out: Path, config_digest: str, data_digest: str, *, strict: bool
) -> dict[str, Any] | None:
    """The resume state in ``out`` when it matches config and data (else None or error)."""
    last = out / rd.CHECKPOINT_LAST
    if not last.is_file():
        return None
    try:
        state = ck.load_checkpoint(last, required=ck.RESUME_KEYS)
    except CheckpointError:
        if strict:
            raise
        return None
    old_data = (state.get("data_fingerprint") or {}).get("digest")
    if state.get("config_digest") == config_digest and old_data in (None, data_digest):
        return state
    if not strict:
        return None
    raise TrainingError(
        f"{out} holds an interrupted run of a different configuration or data (config "
        f"digest {str(state.get('config_digest'))[:12]} vs {config_digest[:12]}); pass a new "
        f"--run-dir, or resume with the config saved in {out / rd.CONFIG_YAML}"
    )


def _choose_remote(
    cfg: Config, run_dir: str | None, run_key: str | None, data_digest: str, resume: bool
) -> RunChoice:
    """:func:`choose_run_dir` for runs in a bucket (``out`` is the local working copy)."""
    digest = cfg.digest()
    strict = run_dir is not None
    if run_dir is None:
        found = (
            runs_for_key(str(cfg.output.runs_dir), cfg.experiment_name, run_key) if run_key else []
        )
        if not found:
            return RunChoice(None)
        run_dir = found[-1]
    remote = RemoteRun(str(run_dir))
    if remote.is_complete():
        local = remote.pull()
        why = rd.mismatch(local, config_digest=digest, data_digest=data_digest)
        if why is None:
            return RunChoice(local, reused=True, remote=remote)
        if strict:
            raise TrainingError(
                f"{remote} is a finished run of other inputs ({why}); pass a new --run-dir or "
                "omit it"
            )
        return RunChoice(None, notes=[f"Not reusing {remote}: {why}; starting a new run directory"])
    if not resume:
        return RunChoice(remote.start_fresh(), remote=remote)
    local = remote.pull((rd.CHECKPOINT_LAST, rd.MODEL_BEST, rd.CONFIG_YAML))
    state = _resume_state(local, digest, data_digest, strict=strict)
    if state is None and (local / rd.CHECKPOINT_LAST).is_file():
        return RunChoice(
            None, notes=[f"Not resuming {remote}: other config or data; starting anew"]
        )
    if state is not None:
        epoch = state["trainer"]["epoch"]
        note = f"Resuming {remote} from the checkpoint of epoch {epoch} in the bucket"
        return RunChoice(local, state, remote=remote, notes=[note])
    return RunChoice(remote.start_fresh(), remote=remote)

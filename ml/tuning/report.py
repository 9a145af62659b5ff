"""What a person reads: a line per finished trial, the final table, ``tuning.json``, a plot.

The final outputs go next to the best run, in the study's directory
(``<base>/experiments/tuning/<study>/``): ``tuning.json`` (every trial: number, state,
value, parameters, seconds, run directory, error, worker) and
``optimization_history.png`` (Optuna's optimisation-history plot, matplotlib Agg).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml.fsutil import atomic_write, atomic_write_json, display_path, utc_now
from ml.tuning import study as st
from ml.tuning.storage import study_dir
from ml.tuning.trial import AUTO_CHOICE_ATTR, RESULT_ATTR, RUN_DIR_ATTR, WORKER_ATTR

if TYPE_CHECKING:
    import optuna

TUNING_JSON = "tuning.json"
HISTORY_PNG = "optimization_history.png"
TOP = 5


def _params(params: dict[str, Any]) -> str:
    parts = [f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()]
    return " ".join(parts) or "-"


def seconds(trial: optuna.trial.FrozenTrial) -> float | None:
    duration = trial.duration
    return round(duration.total_seconds(), 3) if duration is not None else None


def trial_line(trial: optuna.trial.FrozenTrial, metric: str) -> str:
    """``trial   3  COMPLETE  val_auc 0.7412    12.3s  model.dropout=0.12 ...``."""
    value = f"{metric} {trial.value:.4f}" if trial.value is not None else f"{metric}    -  "
    secs = seconds(trial)
    line = (
        f"trial {trial.number:>3}  {trial.state.name:<8}  {value}  "
        f"{secs if secs is not None else float('nan'):7.1f}s  {_params(trial.params)}"
    )
    if AUTO_CHOICE_ATTR in trial.user_attrs:
        line += f"  (model.name auto's choice in trial {trial.user_attrs[AUTO_CHOICE_ATTR]})"
    elif trial.user_attrs.get(st.DEFAULTS_ATTR):
        line += "  (the config's own values)"
    if st.ERROR_ATTR in trial.user_attrs:
        line += f"  ✗ {trial.user_attrs[st.ERROR_ATTR]}"
    if trial.state.name == "PRUNED" and trial.last_step is not None:
        line += f"  (pruned after epoch {trial.last_step})"
    return line


def top_table(study: optuna.Study, metric: str, n: int = TOP) -> list[str]:
    """The ``n`` best complete trials, best first."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    reverse = study.direction.name == "MAXIMIZE"
    best = sorted(trials, key=lambda t: float(t.value or 0.0), reverse=reverse)[:n]
    if not best:
        return ["No complete trial."]
    lines = [f"Top {len(best)} of {len(trials)} complete trials by {metric}:"]
    lines += [f"  {'#':>4}  {metric:>11}  {'seconds':>8}  parameters"]
    for t in best:
        secs = seconds(t)
        lines.append(
            f"  {t.number:>4}  {float(t.value or 0.0):>11.4f}  "
            f"{secs if secs is not None else float('nan'):>8.1f}  {_params(t.params)}"
        )
    return lines


def importances(study: optuna.Study) -> tuple[dict[str, float], str | None]:
    """Optuna's parameter importances, or ``({}, why not)`` with too few trials."""
    import optuna
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 3:
        return {}, f"importances need at least 3 complete trials ({len(complete)} so far)"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = optuna.importance.get_param_importances(study)
    except (ValueError, RuntimeError, ZeroDivisionError) as exc:
        return {}, f"importances unavailable: {exc}"
    if not found:
        return {}, "importances unavailable: no parameter varied across the complete trials"
    return {k: float(v) for k, v in found.items() if math.isfinite(v)}, None


def importance_lines(found: dict[str, float], why_not: str | None) -> list[str]:
    if why_not:
        return [f"Parameter importances: {why_not}"]
    lines = ["Parameter importances:"]
    for key, value in found.items():
        lines.append(f"  {key:<28} {value:6.3f}  {'#' * round(value * 30)}")
    return lines


def trial_record(t: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """One trial in ``tuning.json``."""
    attrs = t.user_attrs
    result = attrs.get(RESULT_ATTR) or {}
    return {
        "number": t.number,
        "state": t.state.name,
        "value": t.value,
        "params": dict(t.params),
        "seconds": seconds(t),
        "run_dir": attrs.get(RUN_DIR_ATTR),
        "best_epoch": result.get("best_epoch"),
        "epochs_run": result.get("epochs_run"),
        "resumed_from_epoch": result.get("resumed_from_epoch"),
        "defaults": bool(attrs.get(st.DEFAULTS_ATTR)),
        "retry_of": attrs.get(st.RETRY_OF_ATTR, t.system_attrs.get("failed_trial")),
        "error": attrs.get(st.ERROR_ATTR),
        "worker": attrs.get(WORKER_ATTR),
        "started": t.datetime_start.isoformat() if t.datetime_start else None,
        "finished": t.datetime_complete.isoformat() if t.datetime_complete else None,
    }


def summary(study: optuna.Study, ref: st.StudyRef, metric: str) -> dict[str, Any]:
    """The study in brief: counts and the best trial (for the run summary and messages)."""
    best = st.best_trial(study)
    return {
        "study": ref.name,
        "storage": ref.storage.describe(),
        "metric": metric,
        "direction": study.direction.name.lower(),
        "trials": st.counts(study).to_dict(),
        "best": (
            {
                "number": best.number,
                "value": best.value,
                "params": dict(best.params),
                "run_dir": best.user_attrs.get(RUN_DIR_ATTR),
            }
            if best is not None
            else None
        ),
    }


def write_outputs(study: optuna.Study, ref: st.StudyRef, metric: str) -> tuple[Path, Path | None]:
    """Write ``tuning.json`` and the optimisation-history PNG into the study directory."""
    out = study_dir(ref.name)
    found, why_not = importances(study)
    data = {
        **summary(study, ref, metric),
        "written_at": utc_now(),
        "importances": found,
        "importances_note": why_not,
        "trials": [trial_record(t) for t in study.get_trials(deepcopy=False)],
    }
    json_path = out / TUNING_JSON
    atomic_write_json(json_path, data)
    png = out / HISTORY_PNG
    return json_path, png if _plot(study, metric, png) else None


def _plot(study: optuna.Study, metric: str, path: Path) -> bool:
    from optuna.trial import TrialState

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization.matplotlib import plot_optimization_history

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ax = plot_optimization_history(study, target_name=metric)
    ax.set_title(f"Optimisation history: {display_path(path.parent)}", fontsize=9)
    figure = ax.get_figure(root=True)
    assert figure is not None
    try:
        atomic_write(path, lambda fh: figure.savefig(fh, format="png", dpi=100))
    finally:
        plt.close(figure)
    return True

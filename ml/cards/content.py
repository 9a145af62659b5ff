"""What a model card says, computed from what was measured (no formatting here).

:func:`card_content` turns a run's (or a version's) recorded files and the test
predictions into one JSON-able dict of sections that :mod:`ml.cards.render` writes as
Markdown and HTML. The "limitations" are generated from the numbers: fields whose
validation OOV share exceeds ``data.max_oov_share``, a calibration error above
:data:`ECE_LIMIT`, a thin margin over the baseline or production, a small test split,
a model still improving at its last epoch, and whatever could not be measured.
"""

from __future__ import annotations

import platform
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import yaml

from ml.cards.predictions import Predictions
from ml.cards.stats import delong_auc_difference, model_metrics

#: Expected calibration error (absolute CTR) above which the card warns.
ECE_LIMIT = 0.01
#: AUC margin over the logistic-regression baseline below which the card warns.
BASELINE_MARGIN = 0.005
#: Fewer test rows than this and the card warns about the interval's width.
SMALL_TEST_ROWS = 20_000
LIBRARIES = ("torch", "numpy", "pandas", "pyarrow", "scikit-learn", "matplotlib")


@dataclass
class CardInputs:
    """Everything a card is built from.

    ``lineage`` has run.json's keys (``features_dir``, ``data_fingerprint``,
    ``started_at``, ``finished_at``, ``device``, ``hostname``, ``torch_version``,
    ``python_version``, ``code_version``, ``seed``, ``config_digest``, ``dag_id``,
    ``run_id``); ``evaluation`` the evaluate step's summary (``gates``, ``champion``,
    ``baseline``) when the pipeline registered the run.
    """

    name: str
    metrics: dict[str, Any]
    config_text: str
    lineage: dict[str, Any]
    built_at: str
    run_dir: str | None = None
    predictions: Predictions | None = None
    predictions_note: str | None = None
    evaluation: dict[str, Any] | None = None
    evaluation_note: str | None = None
    model_bytes: int | None = None
    origin: str = "registration"
    libraries: dict[str, str | None] = field(default_factory=dict)


def library_versions() -> dict[str, str | None]:
    """Installed versions of the libraries a model depends on (None: not installed)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for dist in LIBRARIES:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def _config(text: str) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def card_content(inp: CardInputs, version: str) -> dict[str, Any]:
    """The card's sections for ``version`` (see module doc)."""
    cfg = _config(inp.config_text)
    m = inp.metrics
    preds = inp.predictions
    measured = model_metrics(preds.labels, preds.scores) if preds is not None else None
    content: dict[str, Any] = {
        "name": inp.name,
        "version": version,
        "built_at": inp.built_at,
        "origin": inp.origin,
        "model": _model_section(m, cfg, inp.model_bytes),
        "model_choice": _model_choice(m),
        "metrics": _metrics_section(m, measured),
        "gates": _gates_section(inp),
        "production": _production_section(preds, measured, inp),
        "data": _data_section(m, inp.lineage, preds),
        "vocabulary": _vocabulary(m, cfg),
        "training": _training_section(m, inp.lineage, preds),
        "environment": _environment(inp),
        "provenance": _provenance(inp),
        "config": inp.config_text,
        "predictions_note": inp.predictions_note,
    }
    content["limitations"] = limitations(content, m, cfg)
    return content


def _model_section(
    m: Mapping[str, Any], cfg: Mapping[str, Any], size: int | None
) -> dict[str, Any]:
    model_cfg = cfg.get("model") if isinstance(cfg.get("model"), dict) else {}
    return {
        "family": m.get("model") or (model_cfg or {}).get("name"),
        "parameters": m.get("n_params"),
        "checkpoint_bytes": size,
        "architecture": dict(model_cfg or {}),
    }


def _model_choice(m: Mapping[str, Any]) -> dict[str, Any] | None:
    """``model.name: auto``'s choice and its candidates table (None: one family was set)."""
    choice = m.get("auto")
    if not isinstance(choice, dict) or not choice.get("chosen"):
        return None
    return {k: choice.get(k) for k in ("chosen", "metric", "reason", "budget_s", "seconds")} | {
        "candidates": [c for c in choice.get("candidates") or () if isinstance(c, dict)]
    }


def _metrics_section(m: Mapping[str, Any], measured: Mapping[str, Any] | None) -> dict[str, Any]:
    keys = ("test_auc", "test_logloss", "test_accuracy", "val_auc", "val_logloss")
    out: dict[str, Any] = {k: m.get(k) for k in keys if m.get(k) is not None}
    calibration = m.get("calibration") if isinstance(m.get("calibration"), dict) else {}
    if (calibration or {}).get("test_logloss_raw") is not None:
        out["test_logloss_raw"] = calibration["test_logloss_raw"]  # type: ignore[index]
    if measured is not None:
        for k in ("auc", "logloss", "accuracy"):
            out.setdefault(f"test_{k}", measured[k])
        out["test_ece"] = measured["ece"]
        out["test_mean_score"] = measured["mean_score"]
    return out


def _gates_section(inp: CardInputs) -> dict[str, Any]:
    ev = inp.evaluation or {}
    gates = ev.get("gates")
    if isinstance(gates, list) and gates:
        return {"results": gates, "note": None}
    note = inp.evaluation_note or "the quality gates were not run for this registration"
    return {"results": [], "note": note}


def _production_section(
    preds: Predictions | None, measured: Mapping[str, Any] | None, inp: CardInputs
) -> dict[str, Any]:
    if preds is None or measured is None:
        return {"note": inp.predictions_note or "no test predictions were available"}
    if preds.production_scores is None:
        return {"note": "there was no production model at registration time"}
    prod = model_metrics(preds.labels, preds.production_scores)
    interval = delong_auc_difference(preds.labels, preds.production_scores, preds.scores)
    return {
        "version": preds.production_version,
        "rows": preds.rows,
        "model": {k: measured[k] for k in ("auc", "logloss", "accuracy", "ece")},
        "production": {k: prod[k] for k in ("auc", "logloss", "accuracy", "ece")},
        "auc_difference": interval,
    }


def _data_section(
    m: Mapping[str, Any], lineage: Mapping[str, Any], preds: Predictions | None
) -> dict[str, Any]:
    rows = m.get("rows") if isinstance(m.get("rows"), dict) else {}
    ctr = m.get("base_ctr") if isinstance(m.get("base_ctr"), dict) else {}
    splits = [
        {"split": s, "rows": (rows or {}).get(s), "base_ctr": (ctr or {}).get(s)}
        for s in ("train", "val", "test")
        if s in (rows or {}) or s in (ctr or {})
    ]
    if not any(s["split"] == "test" for s in splits) and preds is not None:
        splits.append({"split": "test", "rows": preds.rows, "base_ctr": float(preds.labels.mean())})
    fp = (
        lineage.get("data_fingerprint") if isinstance(lineage.get("data_fingerprint"), dict) else {}
    )
    return {
        "features_dir": lineage.get("features_dir"),
        "fingerprint": (fp or {}).get("digest"),
        "files": len((fp or {}).get("files") or {}),
        "splits": splits,
    }


def _vocabulary(m: Mapping[str, Any], cfg: Mapping[str, Any]) -> dict[str, Any]:
    limit = _max_oov_share(cfg)
    vocab = m.get("vocabulary") if isinstance(m.get("vocabulary"), dict) else {}
    fields = []
    for name, entry in (vocab or {}).items():
        if not isinstance(entry, dict):
            continue
        oov_val = entry.get("oov_val")
        hashed = bool(entry.get("hashed"))  # buckets, and its "OOV" is its missing values
        fields.append(
            {
                "field": name,
                "vocab_size": entry.get("vocab_size"),
                "oov_train": entry.get("oov_train"),
                "oov_val": oov_val,
                "above_limit": not hashed and isinstance(oov_val, (int, float)) and oov_val > limit,
                "hashed": hashed,
            }
        )
    return {"max_oov_share": limit, "fields": fields}


def _max_oov_share(cfg: Mapping[str, Any]) -> float:
    data = cfg.get("data") if isinstance(cfg.get("data"), dict) else {}
    value = (data or {}).get("max_oov_share", 0.5)
    return float(value) if isinstance(value, (int, float)) else 0.5


def _training_section(
    m: Mapping[str, Any], lineage: Mapping[str, Any], preds: Predictions | None
) -> dict[str, Any]:
    keys = (
        "monitor",
        "best_epoch",
        "epochs_run",
        "stopped_early",
        "train_time_s",
        "wall_time_s",
        "samples_per_sec",
    )
    out: dict[str, Any] = {k: m.get(k) for k in keys if m.get(k) is not None}
    if isinstance(m.get("calibration"), dict):
        out["calibration"] = m["calibration"].get("method")
    out.update(
        {k: lineage.get(k) for k in ("started_at", "finished_at", "resumed_from_epoch", "seed")}
    )
    if preds is not None and preds.score_seconds:
        out["scoring_rows_per_sec"] = preds.rows / max(float(preds.score_seconds), 1e-9)
    out["history"] = m.get("history") if isinstance(m.get("history"), list) else []
    return out


def _environment(inp: CardInputs) -> dict[str, Any]:
    lin = inp.lineage
    libraries = dict(inp.libraries or library_versions())
    if lin.get("torch_version"):
        libraries["torch"] = lin["torch_version"]
    if lin.get("python_version"):
        libraries["python"] = lin["python_version"]
    code = lin.get("code_version") if isinstance(lin.get("code_version"), dict) else {}
    return {
        "device": lin.get("device") or inp.metrics.get("device"),
        "hostname": lin.get("hostname"),
        "platform": f"{platform.system()} {platform.machine()}",
        "libraries": libraries,
        "code_version": code or {},
    }


def _provenance(inp: CardInputs) -> dict[str, Any]:
    lin = inp.lineage
    return {
        "dag_id": lin.get("dag_id"),
        "run_id": lin.get("run_id"),
        "run_dir": inp.run_dir,
        "config_digest": lin.get("config_digest"),
    }


def limitations(
    content: Mapping[str, Any], m: Mapping[str, Any], cfg: Mapping[str, Any]
) -> list[str]:
    """Plain sentences about what the measurements say this model is weak at."""
    out: list[str] = []
    vocab = content["vocabulary"]
    for f in vocab["fields"]:
        if f["above_limit"]:
            out.append(
                f"{f['field']}: {f['oov_val']:.0%} of validation rows fall in the "
                f"out-of-vocabulary bucket (above data.max_oov_share="
                f"{vocab['max_oov_share']:.0%}); the model learns little from this field."
            )
    metrics = content["metrics"]
    ece = metrics.get("test_ece")
    if isinstance(ece, float) and ece > ECE_LIMIT:
        out.append(
            f"Calibration: expected calibration error {ece:.4f} is above {ECE_LIMIT:.2f}; "
            "predicted CTRs should be recalibrated before they are used as probabilities "
            "(bids, budgets)."
        )
    out += _gate_margins(content)
    test_rows = next((s["rows"] for s in content["data"]["splits"] if s["split"] == "test"), None)
    if isinstance(test_rows, int) and test_rows < SMALL_TEST_ROWS:
        out.append(
            f"The test split has only {test_rows:,} rows: differences in AUC below about "
            "0.01 are within noise."
        )
    best, ran = m.get("best_epoch"), m.get("epochs_run")
    if isinstance(best, int) and best == ran and not m.get("stopped_early") and best > 1:
        out.append(
            f"Validation {m.get('monitor', 'val_auc')} was still improving at the last epoch "
            f"({ran}): more epochs may give a better model."
        )
    if content["predictions_note"]:
        out.append(f"No plots or production comparison: {content['predictions_note']}.")
    return out


def _gate_margins(content: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for gate in content["gates"]["results"]:
        value, threshold = gate.get("value"), gate.get("threshold")
        if gate.get("name") != "baseline" or value is None or threshold is None:
            continue
        margin = float(value) - float(threshold)
        if margin < BASELINE_MARGIN:
            out.append(
                f"Baseline gate: test AUC is only {margin:+.4f} from the logistic-regression "
                "baseline's floor; the model adds little over one-hot logistic regression."
            )
    prod = content["production"]
    diff = prod.get("auc_difference")
    if isinstance(diff, dict) and isinstance(diff.get("high"), float) and diff["high"] < 0:
        out.append(
            f"Production {prod.get('version')} scores a higher AUC on the same rows "
            f"({diff['diff']:+.4f}, 95% interval {diff['low']:+.4f} to {diff['high']:+.4f}); "
            "promote only for a reason other than AUC."
        )
    return out

"""ml.tuning.report: the live line, the final table, importances, tuning.json and the plot."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial

from ml.tuning import report
from ml.tuning import study as st
from ml.tuning.storage import StorageSpec

DISTS = {
    "model.dropout": FloatDistribution(0.0, 0.5),
    "model.name": CategoricalDistribution(["dcnv2", "deepfm"]),
}


def _study(values: list[float | None], name: str = "r") -> optuna.Study:
    study = optuna.create_study(
        study_name=name, storage=StorageSpec().open(name), direction="maximize"
    )
    for i, value in enumerate(values):
        params = {"model.dropout": 0.05 * i, "model.name": "dcnv2" if i % 2 else "deepfm"}
        attrs = {st.ERROR_ATTR: "TrainingError: nan"} if value is None else {}
        study.add_trial(
            create_trial(
                state=TrialState.FAIL if value is None else TrialState.COMPLETE,
                value=value,
                params=params,
                distributions=DISTS,
                user_attrs={**attrs, "run_dir": f"experiments/tuning/{name}/run{i}"},
            )
        )
    return study


def test_trial_line_names_number_state_metric_seconds_and_params(project_home: Path) -> None:
    complete, failed = _study([0.7123, None]).get_trials()
    line = report.trial_line(complete, "val_auc")
    assert line.startswith("trial   0  COMPLETE  val_auc 0.7123 ")
    assert line.endswith("s  model.dropout=0 model.name=deepfm")
    assert "✗ TrainingError: nan" in report.trial_line(failed, "val_auc")


def test_top_table_lists_the_best_first(project_home: Path) -> None:
    lines = report.top_table(_study([0.6, 0.8, None, 0.7]), "val_auc", n=2)
    assert lines[0] == "Top 2 of 3 complete trials by val_auc:"
    assert [ln.split()[0] for ln in lines[2:]] == ["1", "3"]


def test_importances_need_a_few_complete_trials(project_home: Path) -> None:
    found, why = report.importances(_study([0.6, 0.7, None], "few"))
    assert found == {} and why == "importances need at least 3 complete trials (2 so far)"
    found, why = report.importances(_study([0.6, 0.7, 0.75, 0.8, 0.62, 0.9], "many"))
    assert why is None and set(found) == {"model.dropout", "model.name"}
    assert abs(sum(found.values()) - 1.0) < 1e-6
    assert report.importance_lines({}, "x")[0] == "Parameter importances: x"


def test_write_outputs_puts_tuning_json_and_the_plot_in_the_study_dir(project_home: Path) -> None:
    study = _study([0.6, None, 0.8, 0.7], "out")
    json_path, png = report.write_outputs(study, st.StudyRef("out", StorageSpec()), "val_auc")
    assert json_path == project_home / "experiments" / "tuning" / "out" / "tuning.json"
    data = json.loads(json_path.read_text())
    assert data["study"] == "out" and data["metric"] == "val_auc"
    assert data["best"]["number"] == 2 and data["best"]["run_dir"].endswith("run2")
    assert data["trials"][1]["state"] == "FAIL" and data["trials"][1]["error"]
    assert [t["number"] for t in data["trials"]] == [0, 1, 2, 3]
    assert data["importances"] and data["importances_note"] is None
    assert png is not None and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_write_outputs_without_a_complete_trial_writes_no_plot(project_home: Path) -> None:
    study = _study([None], "none")
    json_path, png = report.write_outputs(study, st.StudyRef("none", StorageSpec()), "val_auc")
    assert png is None and json.loads(json_path.read_text())["best"] is None

"""scripts/run_pipeline.py without an Airflow run: conf parsing, inputs, the request."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ml import paths
from scripts import run_pipeline


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"epochs": 2, "min_auc": 0.7}', {"epochs": 2, "min_auc": 0.7}),
        # What `make run ARGS='--conf {"epochs":2}'` delivers after the shell strips quotes.
        (
            "{epochs:2,min_auc:0.7,auto_promote:true,model_name:m1}",
            {"epochs": 2, "min_auc": 0.7, "auto_promote": True, "model_name": "m1"},
        ),
        ("{}", {}),
    ],
)
def test_parse_conf_reads_json_and_the_quote_stripped_form(text: str, expected: dict) -> None:
    assert run_pipeline.parse_conf(text) == expected


@pytest.mark.parametrize("bad", ["epochs=2", "[1, 2]", "{epochs}"])
def test_parse_conf_rejects_non_objects(bad: str) -> None:
    with pytest.raises(run_pipeline.RunError, match="--conf"):
        run_pipeline.parse_conf(bad)


def test_parse_set_pairs() -> None:
    assert run_pipeline.parse_set(["epochs=2", "model_name=ctr_b", "epochs=null"]) == {
        "epochs": None,
        "model_name": "ctr_b",
    }
    with pytest.raises(run_pipeline.RunError, match="KEY=VALUE"):
        run_pipeline.parse_set(["epochs"])


def test_split_task_logs_groups_lines_by_task() -> None:
    lines = [
        "x [DAG TEST] starting task_id=validate_features map_index=-1",
        "a",
        "y [DAG TEST] starting task_id=train_model map_index=-1",
        "b",
    ]
    groups = run_pipeline.split_task_logs(lines)
    assert groups["validate_features"] == lines[:2]
    assert groups["train_model"] == lines[2:]


def test_airflow_request_runs_the_dag_then_asks_airflow_for_its_state() -> None:
    date = "2026-01-02T03:04:05.000006+00:00"
    request = run_pipeline.airflow_request({"epochs": 2}, date, Path("/r.json"))
    assert request["migrate"] is True
    argvs = [c["argv"] for c in request["commands"]]
    assert argvs == [
        ["dags", "test", "training_pipeline", date, "-c", '{"epochs": 2}'],
        ["dags", "list-runs", "training_pipeline", "-o", "json"],
        ["tasks", "states-for-dag-run", "training_pipeline", date, "-o", "json"],
    ]
    assert [c["capture"] for c in request["commands"]] == [False, True, True]
    # Once check-migrations passed for this database, it is not asked again.
    assert (
        run_pipeline.airflow_request({}, date, Path("/r.json"), migrate=False)["migrate"] is False
    )


def test_run_state_picks_the_run_with_our_logical_date(project_home: Path) -> None:
    date = "2026-01-02T03:04:05.000006+00:00"
    runs = [
        {"run_id": "scheduled__x", "state": "running", "logical_date": "2026-01-01T00:00:00Z"},
        {"run_id": "manual__ours", "state": "failed", "logical_date": date},
    ]
    states = [
        {"task_id": "validate_features", "state": "success",
         "start_date": "2026-01-02T03:04:06+00:00", "end_date": "2026-01-02T03:04:07.5+00:00"},
        {"task_id": "train_model", "state": "failed",
         "start_date": "2026-01-02T03:04:08+00:00", "end_date": None},
    ]  # fmt: skip
    report = {"commands": [{"exit_status": 1}, {"json": runs}, {"json": states}]}
    run = run_pipeline.run_state(report, date)
    assert run is not None
    assert (run["run_id"], run["state"], run["summary"]) == ("manual__ours", "failed", None)
    assert run["tasks"] == {
        "validate_features": {"state": "success", "seconds": 1.5},
        "train_model": {"state": "failed", "seconds": None},
    }
    # A conf rejected at trigger time makes no run: nothing matches.
    assert run_pipeline.run_state({"commands": [{}, {"json": runs[:1]}, {}]}, date) is None


def test_run_state_reads_the_pipeline_summary(project_home: Path) -> None:
    from ml.pipeline.summary import update_summary

    update_summary("training_pipeline", "manual__s", model_version="v3", state="success")
    runs = [{"run_id": "manual__s", "state": "success", "logical_date": "2026-01-02T00:00:00Z"}]
    date = "2026-01-02T00:00:00+00:00"
    run = run_pipeline.run_state({"commands": [{}, {"json": runs}, {"json": []}]}, date)
    assert run is not None and run["summary"]["model_version"] == "v3"


def _write_config(home: Path, name: str, features_dir: str) -> str:
    text = (paths.resolve(paths.DEFAULT_CONFIG)).read_text()
    assert "features_dir:" in text
    lines = [
        f"  features_dir: {features_dir}" if ln.strip().startswith("features_dir:") else ln
        for ln in text.splitlines()
    ]
    (home / "config" / name).write_text("\n".join(lines) + "\n")
    return f"config/{name}"


def test_ensure_features_generates_only_the_default_data_when_missing(
    project_home: Path,
) -> None:
    seconds = run_pipeline.ensure_features({}, rows=600)
    assert seconds > 0
    assert (project_home / paths.FEATURES_DIR / "train" / "data.parquet").is_file()
    assert run_pipeline.ensure_features({}, rows=600) == 0.0  # present: nothing to do


def test_ensure_features_never_touches_other_data(project_home: Path) -> None:
    # A config pointing at the user's own data: nothing generated anywhere.
    config = _write_config(project_home, "mine.yaml", "data/mine")
    assert run_pipeline.ensure_features({"config_path": config}, rows=600) == 0.0
    assert run_pipeline.ensure_features({"features_path": "data/other"}, rows=600) == 0.0
    assert not (project_home / "data").exists()
    # The default directory holding files it did not write: left byte-for-byte alone.
    default = project_home / paths.FEATURES_DIR
    (default / "train").mkdir(parents=True)
    (default / "train" / "data.parquet").write_bytes(b"user bytes")
    (default / "notes.txt").write_text("mine")
    assert run_pipeline.ensure_features({}, rows=600) == 0.0
    assert (default / "train" / "data.parquet").read_bytes() == b"user bytes"
    assert sorted(p.name for p in default.iterdir()) == ["notes.txt", "train"]


def test_main_rejects_bad_conf_before_starting_airflow(
    project_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_pipeline.main(["--home", str(project_home), "--conf", "[1]"]) == 2
    assert "error: --conf must be a JSON object" in capsys.readouterr().err
    assert not (project_home / "airflow_home" / "logs" / "make_run").exists()


def test_summary_json_keys_for_the_benchmark(tmp_path: Path) -> None:
    from scripts.run_report import summary_data

    run = {"run_id": "r", "state": "success", "tasks": {}, "summary": {"model_version": "v1"}}
    data = summary_data(run, total_s=10.0, generate_s=1.0, migrate_s=0.0)
    assert json.loads(json.dumps(data))["model_version"] == "v1"
    assert data["overhead_s"] == 9.0

"""ml.monitoring.drift: PSI against the reference profile; the pipeline's check_drift."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ml.data.generate.world_default import DEFAULT_SPEC
from ml.errors import DriftDetectedError, GateConfigError, GateFailedError, UserError
from ml.monitoring.drift import check_drift, psi
from ml.registry.model_registry import ModelRegistry
from testkit.drift import register_with_profile


def test_psi_is_zero_for_equal_shares_and_grows_with_the_shift() -> None:
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0.0
    small, large = psi([0.5, 0.5], [0.45, 0.55]), psi([0.5, 0.5], [0.1, 0.9])
    assert 0 < small < 0.05 < 0.25 < large
    assert psi([0.5, 0.5, 0.0], [0.5, 0.4, 0.1]) < 10  # an empty bin stays finite


@pytest.fixture
def registry(tmp_path: Path, tiny_profile: dict) -> ModelRegistry:
    reg = ModelRegistry(tmp_path / "models")
    register_with_profile(reg, tmp_path / "runs" / "a", tiny_profile)
    return reg


def test_unshifted_world_is_not_flagged(registry: ModelRegistry, unshifted_dir: Path) -> None:
    report = check_drift(unshifted_dir, DEFAULT_SPEC, model_name="ctr_model", registry=registry)
    assert report.reference == "ctr_model v1 (production)"
    assert report.drifted == [] and report.passed
    assert len(report.fields) == 15 and max(f.psi for f in report.fields) < 0.1
    assert "0 of 15 field(s) past max_psi 0.25" in report.lines()[0]


def test_shifted_world_is_flagged_on_the_shifted_fields(
    registry: ModelRegistry, shifted_dir: Path
) -> None:
    report = check_drift(shifted_dir, DEFAULT_SPEC, model_name="ctr_model", registry=registry)
    assert sorted(f.name for f in report.drifted) == ["device_type", "item_price"]
    assert report.passed  # warn
    device = next(f for f in report.fields if f.name == "device_type")
    assert device.largest.startswith("'ctv': 2.7% -> ")
    lines = "\n".join(report.lines())
    assert "2 of 15 field(s) past max_psi 0.25" in lines and "⚠️  device_type" in lines
    failing = check_drift(
        shifted_dir, DEFAULT_SPEC, model_name="ctr_model", registry=registry, action="fail"
    )
    assert not failing.passed
    assert "device_type (PSI" in failing.failure_message()
    assert issubclass(DriftDetectedError, GateFailedError)


def test_reference_is_production_else_latest_staging_else_none(
    tmp_path: Path, tiny_profile: dict, shifted_dir: Path
) -> None:
    reg = ModelRegistry(tmp_path / "models")
    report = check_drift(shifted_dir, DEFAULT_SPEC, model_name="ctr_model", registry=reg)
    assert report.passed and report.fields == []
    assert "no production or staging version of 'ctr_model'" in report.headline()
    register_with_profile(reg, tmp_path / "runs" / "a", tiny_profile, promote=False)
    report = check_drift(shifted_dir, DEFAULT_SPEC, model_name="ctr_model", registry=reg)
    assert report.reference == "ctr_model v1 (staging)" and report.drifted
    register_with_profile(reg, tmp_path / "runs" / "b", None)  # v2: old, no profile
    report = check_drift(shifted_dir, DEFAULT_SPEC, model_name="ctr_model", registry=reg)
    assert report.passed and report.fields == []
    assert "v2 (production) has no data_profile.json" in report.headline()


def test_check_drift_rejects_bad_params(registry: ModelRegistry, shifted_dir: Path) -> None:
    with pytest.raises(GateConfigError, match="max_psi must be a positive number"):
        check_drift(shifted_dir, DEFAULT_SPEC, model_name="ctr_model", registry=registry, max_psi=0)
    with pytest.raises(GateConfigError, match="drift_action must be one of"):
        check_drift(
            shifted_dir, DEFAULT_SPEC, model_name="ctr_model", registry=registry, action="x"
        )


def test_a_tampered_profile_is_an_error(registry: ModelRegistry, shifted_dir: Path) -> None:
    path = registry.path_of("ctr_model", "v1", "production") / "data_profile.json"
    path.write_text("{}")
    with pytest.raises(UserError, match="differs from the version's manifest"):
        check_drift(shifted_dir, DEFAULT_SPEC, model_name="ctr_model", registry=registry)


def test_validate_step_reports_drift_in_the_summary_and_fails_when_asked(
    project_home: Path, tiny_features_dir: Path, shifted_dir: Path, tiny_profile: dict
) -> None:
    from ml.pipeline import steps
    from ml.pipeline.params import Params, PipelineRun
    from ml.pipeline.summary import read_summary
    from testkit.airflow import small_config

    (project_home / "config" / "small.yaml").write_text(small_config())
    shutil.copytree(shifted_dir, project_home / "data" / "shifted")
    register_with_profile(ModelRegistry(), project_home / "runs" / "a", tiny_profile)
    base = {"config_path": "config/small.yaml", "features_path": "data/shifted"}
    run = PipelineRun("training_pipeline", "manual__drift")
    steps.validate(Params.from_mapping(base), run)
    summary = read_summary("training_pipeline", "manual__drift")
    assert summary is not None and summary["drift"]["drifted"] == ["device_type", "item_price"]
    assert summary["steps"]["validate"]["state"] == "success"
    strict = Params.from_mapping({**base, "drift_action": "fail", "max_psi": 0.3})
    with pytest.raises(DriftDetectedError, match=r"item_price \(PSI .*past max_psi 0.3"):
        steps.validate(strict, PipelineRun("training_pipeline", "manual__drift2"))
    failed = read_summary("training_pipeline", "manual__drift2")
    assert failed is not None and failed["steps"]["validate"]["state"] == "failed"
    text = steps.finish(Params.from_mapping(base), run, None, "v9", "models/x")
    assert "🌊 Drift vs ctr_model v1 (production)" in text and "⚠️ device_type: PSI" in text

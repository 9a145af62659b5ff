"""ml.serving.service.state: one worker's models, logs and readiness."""

from __future__ import annotations

from pathlib import Path

from ml.serving.service.settings import ServeSettings
from ml.serving.service.state import Service


def _service(registry_dir: Path, tmp_path: Path, **settings: object) -> Service:
    s = ServeSettings(
        registry_dir=str(registry_dir), log_dir=str(tmp_path / "logs"), threads=1, **settings
    )
    return Service(s)


def test_service_serves_production_current_and_reports_it(
    registry_dir: Path, tmp_path: Path
) -> None:
    service = _service(registry_dir, tmp_path)
    try:
        ready = service.readiness()
        assert ready["control"] == {"version": "v1", "stage": "production"}
        assert ready["candidate"] is None and ready["traffic"] == 0.0
    finally:
        service.close()


def test_service_spec_is_the_union_of_the_loaded_models_columns(
    registry_dir: Path, tmp_path: Path
) -> None:
    service = _service(registry_dir, tmp_path, candidate="v2", traffic=0.5)
    try:
        control = service.watcher.model
        spec = service.spec(control)
        assert set(control.predictor.features.categorical) <= set(spec.categorical)
        assert service.spec(control) is spec  # cached per control model
        assert service.readiness()["candidate"]["version"] == "v2"
    finally:
        service.close()

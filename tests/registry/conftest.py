from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ml.registry.model_registry import ModelRegistry
from testkit.registry import make_run_dir

MakeRun = Callable[..., Path]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh base directory; the working directory is elsewhere on purpose."""
    base = tmp_path / "home"
    base.mkdir()
    monkeypatch.setenv("CTR_PIPELINE_HOME", str(base))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return base


@pytest.fixture
def registry(home: Path) -> ModelRegistry:
    return ModelRegistry("models", lock_timeout=5)


@pytest.fixture
def make_run(home: Path) -> MakeRun:
    """``make_run("a")`` builds a small complete run directory under the base directory."""
    counter = iter(range(1_000_000))

    def _make(name: str | None = None, payload: bytes | None = None, **kw: object) -> Path:
        i = next(counter)
        name = name or f"run{i}"
        payload = payload if payload is not None else f"weights-{name}-{i}".encode() * 64
        return make_run_dir(home / "experiments" / "runs" / name, payload, **kw)  # type: ignore[arg-type]

    return _make


@pytest.fixture
def fake_predictor(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """``Predictor.load`` records the path it was given instead of building a model."""
    from ml.serving import predictor

    loaded: list[Path] = []

    def load(path: Path) -> tuple[str, Path]:
        loaded.append(path)
        return ("predictor", path)

    monkeypatch.setattr(predictor.Predictor, "load", staticmethod(load))
    return loaded

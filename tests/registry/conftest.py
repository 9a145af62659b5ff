from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ml.registry.model_registry import ModelRegistry
from testkit.registry import make_run_dir


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
def make_run(home: Path) -> Callable[..., Path]:
    """``make_run("a")`` builds a small complete run directory under the base directory."""
    counter = iter(range(1_000_000))

    def _make(name: str | None = None, payload: bytes | None = None, **kw: bool) -> Path:
        i = next(counter)
        name = name or f"run{i}"
        payload = payload if payload is not None else f"weights-{name}-{i}".encode() * 64
        return make_run_dir(home / "experiments" / "runs" / name, payload, **kw)

    return _make

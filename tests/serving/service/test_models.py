"""ml.serving.service.models: the hot-reload watcher, driven by hand (no thread)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from ml.registry.model_registry import ModelRegistry
from ml.serving.service.models import CurrentWatcher, load_pinned
from testkit.serving import NAME


def _point(prod: Path, version: str) -> None:
    os.symlink(version, prod / ".current-test")
    os.replace(prod / ".current-test", prod / "current")


def test_watcher_swaps_only_verified_versions_and_retries_a_refused_one(
    registry_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    registry = ModelRegistry(registry_dir)
    events: list[tuple[str, str]] = []
    watcher = CurrentWatcher(
        registry, NAME, retry_s=0.0, on_event=lambda o, v: events.append((o, v))
    )
    first = watcher.model
    assert first.version == "v1" and watcher.poll() is False  # nothing moved
    registry.promote_to_production(NAME, "v2")
    assert watcher.poll() is True and watcher.model.version == "v2"
    assert first.version == "v1"  # a request holding the old model keeps it intact
    prod = registry_dir / "production" / NAME
    shutil.copytree(registry_dir / "staging" / NAME / "v3", prod / "v3")
    good = (prod / "v3" / "model.pt").read_bytes()
    (prod / "v3" / "model.pt").write_bytes(good[:-10])
    _point(prod, "v3")
    with caplog.at_level("ERROR", logger="ml.serving"):
        assert watcher.poll() is False and watcher.poll() is False
    assert watcher.model.version == "v2" and caplog.text.count("Refused ctr_model v3") == 1
    assert watcher.last_error is not None and "size" in watcher.last_error
    (prod / "v3" / "model.pt").write_bytes(good)  # repaired: the retry loads it
    assert watcher.poll() is True and watcher.model.version == "v3"
    assert watcher.last_error is None
    assert events == [("loaded", "v1"), ("loaded", "v2"), ("refused", "v3"), ("loaded", "v3")]


def test_watcher_keeps_serving_when_the_link_is_removed_or_broken(registry_dir: Path) -> None:
    watcher = CurrentWatcher(ModelRegistry(registry_dir), NAME)
    prod = registry_dir / "production" / NAME
    (prod / "current").unlink()
    assert watcher.poll() is False and watcher.model.version == "v1"
    os.symlink("../../elsewhere", prod / "current")
    assert watcher.poll() is False and watcher.model.version == "v1"
    assert watcher.last_error is not None and "cannot read the current link" in watcher.last_error


def test_pinned_versions_prefer_the_production_copy(registry_dir: Path) -> None:
    registry = ModelRegistry(registry_dir)
    assert load_pinned(registry, NAME, "v1").stage == "production"
    assert load_pinned(registry, NAME, "v3").stage == "staging"

"""ml.serving.service.canary: following the registry's canary setting (fake registry)."""

from __future__ import annotations

from typing import Any

import pytest

from ml.errors import IntegrityError
from ml.serving.service import canary as canary_module
from ml.serving.service.canary import ActiveCanary, CanaryFollower


class FakeRegistry:
    def __init__(self) -> None:
        self.setting: dict[str, Any] | None = None
        self.broken: set[str] = set()

    def get_canary(self, name: str) -> dict[str, Any] | None:
        return self.setting


class FakeModel:
    def __init__(self, version: str) -> None:
        self.version, self.load_seconds = version, 0.0


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> FakeRegistry:
    reg = FakeRegistry()
    loads: list[str] = []

    def load_pinned(registry: FakeRegistry, name: str, version: str) -> FakeModel:
        if version in registry.broken:
            raise IntegrityError(f"{version}: model.pt sha256 differs")
        loads.append(version)
        return FakeModel(version)

    monkeypatch.setattr(canary_module, "load_pinned", load_pinned)
    reg.loads = loads  # type: ignore[attr-defined]
    return reg


def test_follower_loads_the_canary_then_swaps_traffic_then_clears(registry: FakeRegistry) -> None:
    changes: list[ActiveCanary | None] = []
    follower = CanaryFollower(registry, "ctr_model", on_change=changes.append)
    assert follower.poll() is False and follower.active is None
    registry.setting = {"version": "v2", "traffic": 0.1}
    assert follower.poll() is True
    assert follower.active is not None and follower.active.model.version == "v2"
    assert follower.active.traffic == 0.1 and follower.active.salt == "ctr_model:v2"
    assert follower.poll() is False  # unchanged: nothing loaded again
    registry.setting = {"version": "v2", "traffic": 0.5}
    assert follower.poll() is True and follower.active.traffic == 0.5
    assert registry.loads == ["v2"]  # type: ignore[attr-defined]
    registry.setting = None
    assert follower.poll() is True and follower.active is None
    assert [c.traffic if c else None for c in changes] == [0.1, 0.5, None]


def test_follower_refuses_a_broken_version_and_keeps_the_previous_state(
    registry: FakeRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    follower = CanaryFollower(registry, "ctr_model", retry_s=3600)
    registry.setting = {"version": "v2", "traffic": 0.1}
    follower.poll()
    registry.broken.add("v3")
    registry.setting = {"version": "v3", "traffic": 0.1}
    with caplog.at_level("ERROR", logger="ml.serving"):
        assert follower.poll() is False
        assert follower.poll() is False  # not retried before retry_s
    assert follower.active is not None and follower.active.model.version == "v2"
    assert caplog.text.count("Refused canary ctr_model v3") == 1
    assert follower.last_error is not None and "sha256" in follower.last_error


def test_follower_survives_an_unreadable_setting(registry: FakeRegistry) -> None:
    def damaged(name: str) -> None:
        raise IntegrityError("canary.json is damaged")

    registry.get_canary = damaged  # type: ignore[method-assign]
    follower = CanaryFollower(registry, "ctr_model")
    assert follower.poll() is False and follower.active is None
    assert "damaged" in str(follower.last_error)

"""The facade: the spec's import path, its API and the flow the spec walks through."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

import pytest

from ml.errors import InvalidNameError
from ml.registry.model_registry import ModelRegistry
from ml.registry.model_registry import ModelRegistry as Exported
from testkit.registry import check_consistent

MakeRun = Callable[..., Path]

SPEC_METHODS = (
    "register",
    "list_models",
    "get_latest_version",
    "promote_to_production",
    "rollback",
    "load",
    "verify",
    "history",
    "delete",
    "gc",
    "find_version",
    "versions",
)


def test_the_spec_import_path_and_methods() -> None:
    assert Exported is ModelRegistry
    for method in SPEC_METHODS:
        assert callable(getattr(ModelRegistry, method))
    params = inspect.signature(ModelRegistry.register).parameters
    assert "extra_files" in params and params["extra_files"].kind is inspect.Parameter.KEYWORD_ONLY
    assert list(inspect.signature(ModelRegistry.find_version).parameters)[2:] == [
        "data_digest",
        "config_digest",
        "code_digest",
    ]


def test_the_spec_flow(
    registry: ModelRegistry, make_run: MakeRun, home: Path, fake_predictor: list[Path]
) -> None:
    registry.register(make_run(), dag_id="training_pipeline")
    registry.register(make_run())
    assert registry.list_models("staging") == {"ctr_model": ["v1", "v2"]}
    assert registry.get_latest_version("ctr_model", stage="staging") == "v2"
    registry.promote_to_production("ctr_model", "v2")
    assert registry.load("ctr_model", "current") == (
        "predictor",
        home / "models" / "production" / "ctr_model" / "v2" / "model.pt",
    )
    assert check_consistent(registry, "ctr_model") == []


def test_relative_base_dir_resolves_against_home_not_cwd(
    registry: ModelRegistry, make_run: MakeRun, home: Path
) -> None:
    registry.register(make_run())
    assert registry.base_dir == (home / "models").resolve()
    assert not Path("models").exists()  # cwd is elsewhere
    assert repr(registry) == f"ModelRegistry({str(registry.base_dir)!r})"


def test_an_empty_base_dir_is_refused(home: Path) -> None:
    with pytest.raises(InvalidNameError, match="the registry root is empty"):
        ModelRegistry("")


def test_invalid_names_are_rejected_before_disk_access(
    registry: ModelRegistry, make_run: MakeRun, home: Path
) -> None:
    run = make_run()
    for call in (
        lambda: registry.register(run, "a/b"),
        lambda: registry.get_latest_version("../x"),
        lambda: registry.history(".hidden"),
        lambda: registry.delete("a b", "v1"),
        lambda: registry.rollback("-x"),
    ):
        with pytest.raises(InvalidNameError, match="invalid model name"):
            call()
    assert not (home / "models").exists()

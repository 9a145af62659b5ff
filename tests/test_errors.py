"""ml.errors: one root, three branches, and the CLI's translation of each."""

from __future__ import annotations

import errno
import importlib
import inspect
import pkgutil

import pytest

import ml
from ml import errors
from ml.cli import main


def _all_ml_exceptions() -> list[type[BaseException]]:
    found: set[type[BaseException]] = set()
    for info in pkgutil.walk_packages(ml.__path__, "ml."):
        module = importlib.import_module(info.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__.startswith("ml."):
                found.add(obj)
    return sorted(found, key=lambda c: f"{c.__module__}.{c.__qualname__}")


def test_every_ml_error_is_under_the_root_and_one_branch() -> None:
    classes = _all_ml_exceptions()
    assert len(classes) > 15
    branches = (errors.UserError, errors.RetryableError, errors.GateFailedError)
    for cls in classes:
        assert issubclass(cls, errors.CtrPipelineError), cls
        groups = (errors.RegistryError, errors.StorageLayerError)  # bases across branches
        if cls not in (errors.CtrPipelineError, *branches, *groups):
            assert sum(issubclass(cls, b) for b in branches) == 1, cls


def test_exit_codes_by_branch() -> None:
    assert errors.UserError.exit_code == 2
    assert errors.RetryableError.exit_code == 3
    assert errors.GateFailedError.exit_code == 1


def test_storage_error_names_the_action_path_and_cause() -> None:
    err = errors.storage_error(OSError(errno.ENOSPC, "No space left on device"), "writing", "/x/y")
    assert isinstance(err, errors.RetryableError) and isinstance(err, OSError)
    assert "writing /x/y failed: No space left on device" in str(err)
    assert errors.is_environment_oserror(OSError(errno.EIO, "I/O error"))
    assert not errors.is_environment_oserror(OSError(errno.ENOENT, "missing"))


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--config", "/no/such.yaml"],
        ["data", "validate", "--features-dir", "/no/such/dir"],
        ["registry", "show", "bad name!"],
        ["evaluate", "--run-dir", "/no/such/run"],
    ],
)
def test_cli_prints_a_user_error_as_one_error_line_with_exit_2(
    argv: list[str], project_home: object, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    assert err.count("error: ") == 1


def test_cli_exit_3_for_an_environment_error(
    monkeypatch: pytest.MonkeyPatch, project_home: object, capsys: pytest.CaptureFixture[str]
) -> None:
    def full(*args: object, **kwargs: object) -> None:
        raise errors.storage_error(OSError(errno.ENOSPC, "No space left"), "writing", "/d")

    monkeypatch.setattr("ml.training.job.train", full)
    assert main(["train"]) == 3
    assert "No space left" in capsys.readouterr().err


def test_the_docstring_draws_the_current_class_tree() -> None:
    drawing = errors.draw_tree()
    assert drawing in (errors.__doc__ or ""), (
        "ml/errors.py's docstring drawing is out of date: paste `python -m ml.errors`"
    )
    for name, cls in inspect.getmembers(errors, inspect.isclass):
        if issubclass(cls, errors.CtrPipelineError):
            assert f" {name}" in drawing, name


def test_every_public_error_class_lives_in_ml_errors() -> None:
    elsewhere = [
        f"{c.__module__}.{c.__qualname__}"
        for c in _all_ml_exceptions()
        if c.__module__ != "ml.errors" and not c.__name__.startswith("_")
    ]
    assert elsewhere == []


def test_draw_tree_marks_second_bases_and_nesting() -> None:
    lines = errors.draw_tree().splitlines()
    assert lines[0].split()[0] == "CtrPipelineError"
    assert any("RegistryLockTimeoutError (LockTimeoutError)" in line for line in lines)
    assert any("│   ├── ConfigError (ValueError)" in line for line in lines)


def test_storage_errors_sit_on_the_branch_that_says_what_to_do() -> None:
    for cls in (
        errors.InvalidLocationError,
        errors.BucketNotFoundError,
        errors.AccessDeniedError,
        errors.ObjectNotFoundError,
    ):
        assert issubclass(cls, errors.UserError) and cls.exit_code == 2
    for cls in (errors.StorageUnavailableError, errors.ConditionFailedError):
        assert issubclass(cls, errors.RetryableError) and cls.exit_code == 3
    assert issubclass(errors.ObjectNotFoundError, LookupError)

"""ml.paths: one base directory, never the working directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml import paths
from ml.errors import BaseDirError, UserError


def test_base_dir_is_the_env_var_or_the_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(paths.ENV_VAR, str(tmp_path))
    assert paths.base_dir() == tmp_path
    monkeypatch.delenv(paths.ENV_VAR)
    assert (paths.base_dir() / "pyproject.toml").is_file()


def test_resolve_ignores_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(paths.ENV_VAR, str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    monkeypatch.chdir(tmp_path)
    assert paths.resolve("data/x") == tmp_path / "home" / "data" / "x"
    assert paths.resolve("/abs/y") == Path("/abs/y")


@pytest.mark.parametrize("value", ["relative/home", "/definitely/not/here"])
def test_bad_base_dir_is_a_user_error_naming_the_variable(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(paths.ENV_VAR, value)
    with pytest.raises(BaseDirError, match=paths.ENV_VAR) as info:
        paths.base_dir()
    assert isinstance(info.value, UserError)


def test_resolve_refuses_a_url_and_location_leaves_it_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ml.errors import InvalidLocationError

    monkeypatch.setenv("CTR_PIPELINE_HOME", str(tmp_path))
    with pytest.raises(InvalidLocationError, match=r"'s3://k:\*\*\*@b/m' is a URL") as info:
        paths.resolve("s3://k:secret@b/m")
    assert "secret" not in str(info.value)
    assert paths.location("s3://bucket/models") == "s3://bucket/models"
    assert paths.location("models") == tmp_path / "models"

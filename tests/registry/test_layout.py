from __future__ import annotations

import os
from pathlib import Path

import pytest

from ml.errors import (
    IntegrityError,
    InvalidNameError,
    ModelNotFoundError,
    RegistryAccessError,
    VersionNotFoundError,
)
from ml.registry.layout import (
    RESERVED_FILES,
    RUN_ARTIFACTS,
    Layout,
    is_file_name,
    validate_name,
    validate_stage,
    validate_version,
    version_number,
)
from ml.training import run_dir


@pytest.mark.parametrize("bad", ["", "../x", "a/b", ".hidden", "a..b", "-x", "x" * 129, "a b"])
def test_validate_name_rejects_unsafe_names(bad: str) -> None:
    with pytest.raises(InvalidNameError, match="invalid model name"):
        validate_name(bad)


@pytest.mark.parametrize("good", ["ctr_model", "m", "a.b-c_1", "X" * 128])
def test_validate_name_accepts_plain_names(good: str) -> None:
    assert validate_name(good) == good


@pytest.mark.parametrize("bad", ["7", "v07", "v-1", "v1/../v2", "V1", "v", "v" + "9" * 19])
def test_validate_version_rejects_non_canonical(bad: str) -> None:
    with pytest.raises(InvalidNameError, match="invalid version"):
        validate_version(bad)
    assert version_number(bad) is None


def test_version_number_parses_canonical_names() -> None:
    assert version_number("v12") == 12
    assert version_number("v" + "9" * 18) == 10**18 - 1


def test_validate_stage_names_the_choices() -> None:
    with pytest.raises(InvalidNameError, match="invalid stage 'prod': use one of staging"):
        validate_stage("prod")


def test_run_artifacts_use_the_run_directory_names() -> None:
    assert set(RUN_ARTIFACTS) == {run_dir.MODEL_BEST, run_dir.CONFIG_YAML, run_dir.METRICS_JSON}
    assert RUN_ARTIFACTS[run_dir.MODEL_BEST] == "model.pt"
    assert {"MANIFEST.json", "metadata.json", "model.pt"} <= RESERVED_FILES


@pytest.mark.parametrize(
    ("name", "ok"), [("card.md", True), ("a/b", False), (".x", False), ("", False)]
)
def test_is_file_name_accepts_plain_names_only(name: str, ok: bool) -> None:
    assert is_file_name(name) is ok


@pytest.mark.parametrize("root", ["", "   "])
def test_empty_root_is_refused(home: Path, root: str) -> None:
    with pytest.raises(InvalidNameError, match="the registry root is empty"):
        Layout(root)


def test_root_that_is_a_regular_file_is_refused(home: Path) -> None:
    (home / "models").write_text("not a registry")
    with pytest.raises(RegistryAccessError, match=r"registry root models is a regular file"):
        Layout("models")


def test_root_below_a_regular_file_is_refused(home: Path) -> None:
    (home / "notes.txt").write_text("x")
    with pytest.raises(RegistryAccessError, match=r"notes\.txt/models cannot be created: .*notes"):
        Layout("notes.txt/models")


def test_root_that_does_not_exist_yet_is_accepted(home: Path) -> None:
    assert Layout("a/b/models").base_dir == (home / "a" / "b" / "models").resolve()


def test_relative_root_resolves_against_home(home: Path) -> None:
    assert Layout("models").base_dir == (home / "models").resolve()


def test_paths_are_validated_before_they_are_built(home: Path) -> None:
    layout = Layout("models")
    assert layout.version_dir("staging", "m", "v3") == layout.base_dir / "staging" / "m" / "v3"
    with pytest.raises(InvalidNameError):
        layout.version_dir("staging", "../m", "v3")
    assert layout.writer_lock("m", layout.base_dir / "staging" / "m" / ".tmp-abc").name == "abc"


def test_check_no_links_refuses_a_linked_directory(home: Path, tmp_path: Path) -> None:
    layout = Layout("models")
    outside = tmp_path / "outside"
    outside.mkdir()
    (layout.base_dir / "staging").mkdir(parents=True)
    (layout.base_dir / "staging" / "m").symlink_to(outside)
    with pytest.raises(IntegrityError, match=r"staging/m is a symbolic link"):
        layout.check_no_links(layout.base_dir / "staging" / "m" / "v1")
    with pytest.raises(IntegrityError):
        layout.ensure_dir(layout.base_dir / "staging" / "m" / "v1")
    assert os.listdir(outside) == []


def test_version_numbers_scan_directories_only(home: Path) -> None:
    layout = Layout("models")
    model = layout.model_dir("staging", "m")
    model.mkdir(parents=True)
    for entry in ("v1", "v10", "v2", ".tmp-x", "v07", "notes"):
        (model / entry).mkdir()
    (model / "v3").write_text("a file")
    (model / "v4").symlink_to("v1")
    assert layout.version_numbers("staging", "m") == [1, 2, 10]
    assert layout.version_numbers("staging", "m", dirs_only=False) == [1, 2, 3, 4, 10]


def test_require_version_names_model_version_and_dir(home: Path) -> None:
    layout = Layout("models")
    with pytest.raises(ModelNotFoundError, match=r"Model 'm' has no version under models/staging"):
        layout.require_version("staging", "m", "v1")
    (layout.model_dir("staging", "m") / "v1").mkdir(parents=True)
    (layout.model_dir("staging", "m") / "v1" / "MANIFEST.json").write_text("{}")
    with pytest.raises(
        VersionNotFoundError,
        match=r"Model 'm' version v7 not found under models/staging; available: v1",
    ):
        layout.require_version("staging", "m", "v7")

from __future__ import annotations

import errno
import io
from collections.abc import Callable
from pathlib import Path

import pytest

from ml.errors import InvalidRunError, RegistryStorageError
from ml.registry import _fs, runs
from testkit.registry import checkpoint_bytes

MakeRun = Callable[..., Path]


def test_read_run_reads_a_complete_run(make_run: MakeRun) -> None:
    source = runs.read_run(make_run("a"))
    assert source.metrics["test_auc"] == 0.75
    assert source.config == {"experiment_name": "ctr_model", "seed": 42}
    assert source.run_info["data_fingerprint"]["digest"] == "d" * 64


def test_read_run_resolves_a_linked_run_directory(make_run: MakeRun, home: Path) -> None:
    run = make_run("a")
    (home / "latest").symlink_to(run)
    assert runs.read_run("latest").path == run.resolve()


def test_read_run_refuses_an_incomplete_run(make_run: MakeRun) -> None:
    with pytest.raises(InvalidRunError, match=r"not complete \(no COMPLETE marker\)"):
        runs.read_run(make_run("a", complete=False))


def test_read_run_refuses_a_missing_directory(home: Path) -> None:
    with pytest.raises(InvalidRunError, match="does not exist"):
        runs.read_run("experiments/runs/nope")


@pytest.mark.parametrize("missing", ["model_best.pt", "config.yaml", "metrics.json"])
def test_read_run_names_a_missing_file(make_run: MakeRun, missing: str) -> None:
    run = make_run("a")
    (run / missing).unlink()
    with pytest.raises(InvalidRunError, match=rf"marked complete but has no {missing}"):
        runs.read_run(run)


def test_read_run_refuses_an_empty_file(make_run: MakeRun) -> None:
    run = make_run("a")
    (run / "config.yaml").write_text("")
    with pytest.raises(InvalidRunError, match=r"config\.yaml is empty"):
        runs.read_run(run)


def test_read_run_refuses_a_linked_model_file(make_run: MakeRun, tmp_path: Path) -> None:
    """A linked model_best.pt would copy whatever it points at into the registry."""
    run = make_run("a")
    secret = tmp_path / "id_rsa"
    secret.write_bytes(b"PRIVATE KEY")
    secret.chmod(0o600)
    (run / "model_best.pt").unlink()
    (run / "model_best.pt").symlink_to(secret)
    with pytest.raises(InvalidRunError, match=r"model_best\.pt is a symbolic link"):
        runs.read_run(run)


def test_read_mapping_says_unreadable_not_invalid(
    make_run: MakeRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = make_run("a")

    def denied(path: Path, limit: int = 0) -> bytes:
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(_fs, "read_regular", denied)
    with pytest.raises(
        InvalidRunError, match=r"metrics\.json cannot be read \(Permission denied\)"
    ):
        runs.read_mapping(run / "metrics.json", "JSON")


def test_read_mapping_io_error_is_a_storage_error(
    make_run: MakeRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = make_run("a")

    def broken(path: Path, limit: int = 0) -> bytes:
        raise OSError(errno.EIO, "Input/output error", str(path))

    monkeypatch.setattr(_fs, "read_regular", broken)
    with pytest.raises(RegistryStorageError, match=r"metrics\.json: Input/output error"):
        runs.read_mapping(run / "metrics.json", "JSON")


@pytest.mark.parametrize(
    ("content", "kind", "message"),
    [
        (b"\xff\xfe", "JSON", "is not UTF-8 text"),
        (b"{not json", "JSON", "is not valid JSON"),
        (b"[1, 2]", "JSON", "must hold a JSON mapping, got list"),
        (b"- a\n- b\n", "YAML", "must hold a YAML mapping, got list"),
        (b"a: [", "YAML", "is not valid YAML"),
    ],
)
def test_read_mapping_names_what_is_wrong(
    tmp_path: Path, content: bytes, kind: str, message: str
) -> None:
    (tmp_path / "f").write_bytes(content)
    with pytest.raises(InvalidRunError, match=message):
        runs.read_mapping(tmp_path / "f", kind)


def test_check_checkpoint_accepts_a_real_checkpoint(tmp_path: Path) -> None:
    (tmp_path / "model.pt").write_bytes(checkpoint_bytes(b"weights"))
    runs.check_checkpoint(tmp_path / "model.pt", tmp_path / "model_best.pt")


def test_check_checkpoint_refuses_arbitrary_bytes(tmp_path: Path) -> None:
    (tmp_path / "model.pt").write_bytes(b"root:x:0:0:root:/root:/bin/bash\n")
    with pytest.raises(InvalidRunError, match=r"run/model_best\.pt is not a model checkpoint"):
        runs.check_checkpoint(tmp_path / "model.pt", tmp_path / "run" / "model_best.pt")


class _Bomb:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("pickle code ran",))


def test_check_checkpoint_never_runs_pickled_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    buf = io.BytesIO()
    torch.save({"format_version": 1, "payload": _Bomb()}, buf)
    (tmp_path / "model.pt").write_bytes(buf.getvalue())
    with pytest.raises(InvalidRunError, match="is not a model checkpoint"):
        runs.check_checkpoint(tmp_path / "model.pt", tmp_path / "model_best.pt")
    assert "pickle code ran" not in capsys.readouterr().out


def test_check_checkpoint_refuses_missing_keys(tmp_path: Path) -> None:
    import torch

    buf = io.BytesIO()
    torch.save({"format_version": 1, "state_dict": {}}, buf)
    (tmp_path / "model.pt").write_bytes(buf.getvalue())
    with pytest.raises(InvalidRunError, match=r"missing checkpoint key\(s\)"):
        runs.check_checkpoint(tmp_path / "model.pt", tmp_path / "model_best.pt")

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from ml.cli import main
from ml.config import load_config


@pytest.fixture
def tsv(project_home: Path) -> Path:
    path = project_home / "raw" / "clicks.tsv"
    path.parent.mkdir()
    rows = [f"{i % 3 == 0:d}\tu{i % 17}\t{i % 5}\t{i * 0.1:.1f}" for i in range(400)]
    path.write_text("click\tuser\tslot\tscore\n" + "\n".join(rows) + "\n")
    return path


def test_cli_import_prints_features_block(
    tsv: Path, project_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["data", "import", "raw/clicks.tsv", "--out", "data/features/mine"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("✅ Imported 400 rows from raw/clicks.tsv: random split")
    assert "✅ train: data/features/mine/train/data.parquet (" in out
    block = out.split("Paste into your config (or pass --write-config PATH):\n", 1)[1]
    parsed = yaml.safe_load(block)
    assert parsed["features"] == {
        "label": "click",
        "categorical": ["user", "slot"],
        "numeric": ["score"],
    }
    assert parsed["data"] == {"features_dir": "data/features/mine"}


def test_cli_import_write_config_then_validate(
    tsv: Path, project_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["data", "import", str(tsv), "--out", "data/features/mine"]
    assert main([*args, "--write-config", "config/mine.yaml"]) == 0
    out = capsys.readouterr().out
    assert "📝 Wrote config/mine.yaml" in out
    assert "next: ctr-pipeline data validate --config config/mine.yaml" in out
    assert load_config("config/mine.yaml").data.features_dir == "data/features/mine"
    assert main(["data", "validate", "--config", "config/mine.yaml"]) == 0
    assert "features valid" in capsys.readouterr().out


def test_cli_import_time_split_and_options(
    project_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = project_home / "log.csv"
    src.write_text("".join(f"{i},{i % 2},s{i % 4},{i % 7}\n" for i in range(100)))
    args = ["data", "import", "log.csv", "--out", "f", "--no-header"]
    args += ["--columns", "ts,y,site,n", "--label", "y", "--time-column", "ts"]
    args += ["--numeric", "n", "--split", "0.6,0.2,0.2"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "time split on 'ts' at [60, 80]" in out
    assert "(60 rows, CTR 50.00%)" in out


def test_cli_import_malformed_line_is_one_line_error(
    project_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = project_home / "bad.tsv"
    src.write_text("0\t1\t\tab\n1\tx\t2\tcd\n")
    args = ["data", "import", "bad.tsv", "--format", "criteo", "--out", "f"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: bad.tsv: line 1, field 'I4': expected 40 fields")
    assert not (project_home / "f").exists()


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_cli_import_never_touches_user_data(
    tsv: Path,
    user_data: Path,
    digests: Callable[[Path], dict[str, str]],
    capsys: pytest.CaptureFixture[str],
    overwrite: list[str],
) -> None:
    before = digests(user_data)
    source_digest = hashlib.sha256(tsv.read_bytes()).hexdigest()
    assert main(["data", "import", str(tsv), "--out", str(user_data), *overwrite]) == 2
    assert "holds data that was not written by" in capsys.readouterr().err
    assert digests(user_data) == before
    assert hashlib.sha256(tsv.read_bytes()).hexdigest() == source_digest


def test_cli_import_bad_arguments(project_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "import", "--out", "f"]) == 2
    assert "nothing to import" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["data", "import", "x.csv", "--out", "f", "--seed", "-1"])
    assert "must be >= 0" in capsys.readouterr().err

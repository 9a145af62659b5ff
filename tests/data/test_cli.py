"""``ctr-pipeline data generate|worlds|validate|import`` through ml.cli.main."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from ml.cli import main
from ml.config import load_config
from ml.data.layout import split_path


def test_cli_generate_then_validate(project_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "generate", "--rows", "1200", "--seed", "5"]) == 0
    out = capsys.readouterr().out
    features = project_home / "data/features/v1"
    assert "✅ train: data/features/v1/train/data.parquet (840 rows, CTR" in out
    assert "oracle AUC val" in out
    schema = json.loads((features / "schema.json").read_text())
    assert schema["seed"] == 5
    assert schema["rows"] == {"train": 840, "val": 180, "test": 180}

    assert main(["data", "validate"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("✅ train data: data/features/v1/train/data.parquet (")
    assert out[1].startswith("✅ val data: data/features/v1/val/data.parquet (")
    assert out[2].startswith("✅ test data: data/features/v1/test/data.parquet (")
    assert out[3].startswith("features valid")


def test_cli_generate_split_and_out(project_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["data", "generate", "--out", "elsewhere", "--rows", "1000", "--split", "0.6,0.2,0.2"])
        == 0
    )
    assert pq.ParquetFile(split_path(project_home / "elsewhere", "val")).metadata.num_rows == 200


def test_cli_generate_existing_needs_overwrite(
    project_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["data", "generate", "--rows", "300"]) == 0
    capsys.readouterr()
    assert main(["data", "generate", "--rows", "300"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert "data/features/v1 already exists and is not empty; pass --overwrite" in err
    assert main(["data", "generate", "--rows", "400", "--overwrite"]) == 0


def test_cli_generate_bad_split(project_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "generate", "--split", "0.5,0.1,0.1"]) == 2
    assert "split fractions must sum to 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["data", "generate", "--split", "a,b"])
    assert "three comma-separated fractions" in capsys.readouterr().err


def test_cli_validate_reports_every_problem(
    project_home: Path, tiny_features_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    features = project_home / "feats"
    shutil.copytree(tiny_features_dir, features)
    split_path(features, "val").write_bytes(b"")
    table = pq.read_table(split_path(features, "test")).drop_columns(["ad_position"])
    pq.write_table(table, split_path(features, "test"))
    assert main(["data", "validate", "--features-dir", "feats"]) == 2
    err = capsys.readouterr().err
    assert "error: 2 problem(s) with the features in feats:" in err
    assert "feats/val/data.parquet is empty (0 bytes)" in err
    assert "feats/test/data.parquet: categorical column 'ad_position' is missing" in err


def test_cli_validate_missing_dir(project_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "validate"]) == 2
    assert "features directory data/features/v1 does not exist" in capsys.readouterr().err


def test_cli_validate_numeric_nan_flag(
    project_home: Path, tiny_features_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import numpy as np
    import pyarrow as pa

    features = project_home / "feats"
    shutil.copytree(tiny_features_dir, features)
    table = pq.read_table(split_path(features, "train"))
    x = table["ad_quality"].to_numpy().copy()
    x[0] = np.nan
    idx = table.schema.get_field_index("ad_quality")
    pq.write_table(table.set_column(idx, "ad_quality", pa.array(x)), split_path(features, "train"))

    assert main(["data", "validate", "--features-dir", "feats"]) == 0
    assert "⚠️  feats/train/data.parquet: numeric column 'ad_quality' has 1 NaN" in (
        capsys.readouterr().out
    )
    assert main(["data", "validate", "--features-dir", "feats", "--numeric-nan", "error"]) == 2
    assert "data.numeric_nan is 'error'" in capsys.readouterr().err


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_cli_generate_never_touches_user_data(
    project_home: Path,
    user_data: Path,
    digests: Callable[[Path], dict[str, str]],
    capsys: pytest.CaptureFixture[str],
    overwrite: list[str],
) -> None:
    before = digests(user_data)
    assert main(["data", "generate", "--out", str(user_data), "--rows", "300", *overwrite]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {user_data} holds data that was not written by")
    assert "6 entries: NOTES.md, nested/, raw_clicks.parquet, test/, train/, val/" in err
    assert digests(user_data) == before


def test_cli_generate_world_and_worlds(
    project_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["data", "worlds"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("default: display ads")
    assert "   categorical: user_id, item_id," in out
    assert main(["data", "generate", "--world", "mars", "--rows", "300"]) == 2
    assert "unknown world 'mars'; choose one of default" in capsys.readouterr().err
    assert main(["data", "generate", "--world", "default", "--rows", "300"]) == 0
    assert "world default (seed 20240101)" in capsys.readouterr().out


# --- data import ------------------------------------------------------------------------


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

from __future__ import annotations

from pathlib import Path

import pytest

from ml.data.importer.options import ImportOptions, detect_format, first_line
from ml.errors import DataImportError


@pytest.mark.parametrize(
    ("name", "text", "fmt"),
    [
        ("a.csv", "x,y\n", "csv"),
        ("a.TSV", "x\ty\n", "tsv"),
        ("a.parquet", "", "parquet"),
        ("a.libfm", "", "libsvm"),
        ("a.txt", "1 3:1 17:0.5\n", "libsvm"),
        ("a.txt", "-1 2:3:1 5:7:1\n", "libsvm"),
        ("a.txt", "0\t1\t\tab\n", "tsv"),
        ("data", "a,b\n", "csv"),
    ],
)
def test_detect_format(tmp_path: Path, name: str, text: str, fmt: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    assert detect_format(path, "auto") == fmt
    assert detect_format(path, "criteo") == "criteo"


def test_first_line_skips_blank_lines_and_bom(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(b"\n\r\n\xef\xbb\xbfa,b\r\n1,2\n")
    assert first_line(path) == "a,b"


def test_options_need_sources_or_all_three_files(tmp_path: Path) -> None:
    f = tmp_path / "a.csv"
    f.write_text("a\n")
    with pytest.raises(DataImportError, match="nothing to import"):
        ImportOptions(out_dir="o").check()
    with pytest.raises(DataImportError, match="all three of --train, --val and --test"):
        ImportOptions(out_dir="o", train=f, val=f).check()
    with pytest.raises(DataImportError, match="either SOURCE files"):
        ImportOptions(out_dir="o", sources=(f,), train=f, val=f, test=f).check()
    with pytest.raises(DataImportError, match="with --train/--val/--test the files are"):
        ImportOptions(out_dir="o", train=f, val=f, test=f, time_column="ts").check()
    ImportOptions(out_dir="o", train=f, val=f, test=f).check()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"split": (0.8, 0.3, 0.1)}, "must sum to 1"),
        ({"split": (1.0, 0.0, 0.0)}, r"three fractions in \(0, 1\)"),
        ({"format": "xml"}, "--format must be one of"),
        ({"delimiter": "::"}, "one character"),
        ({"sources": ("missing.csv",)}, "missing.csv does not exist"),
    ],
)
def test_options_bad_values(tmp_path: Path, kwargs: dict[str, object], match: str) -> None:
    f = tmp_path / "a.csv"
    f.write_text("a\n")
    opts = {"out_dir": "o", "sources": (f,), **kwargs}
    with pytest.raises(DataImportError, match=match):
        ImportOptions(**opts).check()  # type: ignore[arg-type]


def test_input_paths_resolve_against_base_dir(project_home: Path) -> None:
    opts = ImportOptions(out_dir="o", sources=("raw/a.csv", "/abs/b.csv"))
    assert opts.input_paths() == [project_home / "raw/a.csv", Path("/abs/b.csv")]

"""What ``ctr-pipeline data import`` was asked to do, checked before any file is read."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ml import paths
from ml.errors import DataImportError
from ml.fsutil import display_path

FORMATS = ("auto", "csv", "tsv", "criteo", "libsvm", "parquet")
DEFAULT_SPLIT = (0.8, 0.1, 0.1)
DEFAULT_SEED = 42
#: Label column names tried, in order, when ``--label`` is not given.
LABEL_NAMES = ("label", "click", "clicked", "is_click", "y", "target")

#: Criteo's layout: label, 13 integer features, 26 hashed categorical ones, tab-separated.
CRITEO_NUMERIC = tuple(f"I{i}" for i in range(1, 14))
CRITEO_CATEGORICAL = tuple(f"C{i}" for i in range(1, 27))
CRITEO_COLUMNS = ("label", *CRITEO_NUMERIC, *CRITEO_CATEGORICAL)

_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".libsvm": "libsvm",
    ".svm": "libsvm",
    ".libfm": "libsvm",
    ".ffm": "libsvm",
}
_LIBSVM_LINE = re.compile(r"^\s*[-+]?\d+(\.\d*)?(\s+(\d+:)?\d+:\S+)+\s*$")


@dataclass(frozen=True)
class ImportOptions:
    """Everything the importer needs; paths may be relative to the base directory.

    Either ``sources`` (one or more files read in order, then split by ``split``
    fractions: at random with ``seed``, or by ``time_column``) or all of ``train``,
    ``val`` and ``test`` (files used as they are).
    """

    out_dir: str | os.PathLike[str]
    sources: tuple[str | os.PathLike[str], ...] = ()
    train: str | os.PathLike[str] | None = None
    val: str | os.PathLike[str] | None = None
    test: str | os.PathLike[str] | None = None
    format: str = "auto"
    label: str | None = None
    categorical: tuple[str, ...] = ()
    numeric: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    header: bool | None = None
    delimiter: str | None = None
    field_map: str | os.PathLike[str] | None = None
    field_ranges: str | None = None
    split: tuple[float, float, float] = DEFAULT_SPLIT
    seed: int = DEFAULT_SEED
    time_column: str | None = None
    overwrite: bool = False

    def split_files(self) -> dict[str, Path] | None:
        """``{"train": path, ...}`` when the splits come as files, else None."""
        given = {k: v for k, v in (("train", self.train), ("val", self.val), ("test", self.test))}
        if all(v is None for v in given.values()):
            return None
        return {k: paths.resolve(v) for k, v in given.items() if v is not None}

    def check(self) -> None:
        """Raise :class:`DataImportError` for inconsistent options (before reading data)."""
        files = self.split_files()
        if files is not None and (self.sources or len(files) != 3):
            raise DataImportError(
                "give either SOURCE files (split by --split or --time-column) or all three "
                "of --train, --val and --test"
            )
        if files is None and not self.sources:
            raise DataImportError("nothing to import: give a SOURCE file or --train/--val/--test")
        if files is not None and self.time_column is not None:
            raise DataImportError(
                "--time-column splits one SOURCE; with --train/--val/--test the files are "
                "the splits"
            )
        if self.format not in FORMATS:
            raise DataImportError(f"--format must be one of {', '.join(FORMATS)}")
        fractions = self.split
        if len(fractions) != 3 or any(not 0 < f < 1 for f in fractions):
            raise DataImportError(f"--split needs three fractions in (0, 1), got {fractions}")
        if abs(sum(fractions) - 1) > 1e-6:
            raise DataImportError(f"--split fractions must sum to 1, got {fractions}")
        for path in self.input_paths():
            if not path.is_file():
                raise DataImportError(f"source file {display_path(path)} does not exist")
        if self.delimiter is not None and len(self.delimiter) != 1:
            raise DataImportError(f"--delimiter must be one character, got {self.delimiter!r}")

    def input_paths(self) -> list[Path]:
        """Every source file, resolved, in reading order."""
        files = self.split_files()
        if files is not None:
            return list(files.values())
        return [paths.resolve(s) for s in self.sources]


def detect_format(path: Path, requested: str) -> str:
    """The file's format: ``requested`` unless ``auto``, else by extension, else by sniffing.

    A ``.txt`` or extension-less file is libsvm when its first line looks like
    ``1 3:1 17:0.5``, TSV when it holds a tab, CSV otherwise. Criteo's files need
    ``--format criteo`` (their layout cannot be told from a line).
    """
    if requested != "auto":
        return requested
    fmt = _EXTENSIONS.get(path.suffix.lower())
    if fmt is not None:
        return fmt
    line = first_line(path)
    if _LIBSVM_LINE.match(line):
        return "libsvm"
    return "tsv" if "\t" in line else "csv"


def first_line(path: Path) -> str:
    """The first non-empty line of a text file (without its newline)."""
    with path.open("rb") as fh:
        for raw in fh:
            line = raw.decode("utf-8-sig", errors="replace").rstrip("\r\n")
            if line.strip():
                return line
    return ""

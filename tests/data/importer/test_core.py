from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from ml.data import layout
from ml.data.generate.writer import generate_features
from ml.data.importer import core
from ml.data.importer.core import import_features
from ml.data.importer.options import ImportOptions
from ml.data.validate import validate_features
from ml.errors import DataImportError

Digests = Callable[[Path], dict[str, str]]


def _read(out: Path, split: str) -> dict[str, list[object]]:
    return pq.read_table(layout.split_path(out, split)).to_pydict()


def test_import_csv_random_split_writes_layout_and_schema(clicks_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "feats"
    report = import_features(ImportOptions(out_dir=out, sources=(clicks_csv,), seed=3))
    assert sum(report["rows"].values()) == 600
    assert report["split"] == {"method": "random", "fractions": [0.8, 0.1, 0.1], "seed": 3}
    schema = layout.read_schema(out)
    assert schema is not None and layout.writer_of(out) == layout.IMPORTER
    assert schema["imported"]["sources"][0]["path"] == str(clicks_csv)
    assert schema["imported"]["sources"][0]["format"] == "csv"
    assert layout.spec_from_schema(schema) == report["spec"]
    validate_features(out, report["spec"])
    ids = [i for s in layout.SPLITS for i in _read(out, s)["ts"]]
    assert sorted(ids) == sorted(set(ids)) and len(ids) == 600  # every row exactly once
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clicks.csv", "feats"]


def test_import_random_split_is_deterministic_and_block_independent(
    clicks_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import_features(ImportOptions(out_dir=tmp_path / "a", sources=(clicks_csv,)))
    monkeypatch.setattr("ml.data.importer.csv_source.BLOCK_BYTES", 1024)
    monkeypatch.setattr(core, "ROW_GROUP_ROWS", 50)
    import_features(ImportOptions(out_dir=tmp_path / "b", sources=(clicks_csv,)))
    for split in layout.SPLITS:
        assert _read(tmp_path / "a", split) == _read(tmp_path / "b", split)
    assert pq.ParquetFile(layout.split_path(tmp_path / "b", "train")).num_row_groups > 5


def test_import_time_split_puts_later_rows_in_later_splits(
    clicks_csv: Path, tmp_path: Path
) -> None:
    out = tmp_path / "feats"
    report = import_features(
        ImportOptions(out_dir=out, sources=(clicks_csv,), time_column="ts", split=(0.6, 0.2, 0.2))
    )
    assert report["rows"] == {"train": 360, "val": 120, "test": 120}
    train, val, test = (_read(out, s)["ts"] for s in layout.SPLITS)
    assert max(train) < min(val) and max(val) < min(test)  # type: ignore[type-var]
    assert report["split"]["cuts"] == [min(val), min(test)]
    assert "ts" not in report["spec"].categorical  # kept in the files, not a feature


def test_import_time_split_over_two_sources_with_iso_times(tmp_path: Path) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("when,item,label\n" + "".join(f"2024-01-{d:02d} 10:00:00,i{d},{d % 2}\n"
                                                for d in range(1, 21)))  # fmt: skip
    b.write_text("when,item,label\n" + "".join(f"2024-02-{d:02d} 09:30:00,i{d},{d % 2}\n"
                                                for d in range(1, 11)))  # fmt: skip
    out = tmp_path / "feats"
    report = import_features(
        ImportOptions(out_dir=out, sources=(a, b), time_column="when", split=(0.5, 0.25, 0.25))
    )
    assert report["rows"] == {"train": 15, "val": 7, "test": 8}
    assert str(report["split"]["cuts"][0]).startswith("2024-01-16")
    assert all(str(t).startswith("2024-02") for t in _read(out, "test")["when"])


def test_import_criteo_layout(criteo_txt: Path, tmp_path: Path) -> None:
    out = tmp_path / "criteo"
    opts = ImportOptions(out_dir=out, sources=(criteo_txt,), format="criteo")
    report = import_features(opts)
    assert len(report["spec"].numeric) == 13 and len(report["spec"].categorical) == 26
    validate_features(out, report["spec"])
    schema = pq.read_schema(layout.split_path(out, "train"))
    assert str(schema.field("I1").type) == "double" and str(schema.field("C1").type) == "string"


def test_import_libfm_with_field_ranges(frappe_libfm: Path, tmp_path: Path) -> None:
    out = tmp_path / "frappe"
    opts = ImportOptions(
        out_dir=out, sources=(frappe_libfm,), field_ranges="user=0-99,item=100-149,ctx=150-159"
    )
    report = import_features(opts)
    assert report["spec"].categorical == ("user", "item", "ctx")
    validate_features(out, report["spec"])


def test_import_parquet_split_files(parquet_splits: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "pq"
    report = import_features(ImportOptions(out_dir=out, **parquet_splits))  # type: ignore[arg-type]
    assert report["rows"] == {"train": 300, "val": 60, "test": 60}
    assert report["split"] == {"method": "files"}
    assert _read(out, "val")["clicked"] == [
        int(v) for v in pq.read_table(parquet_splits["val"])["clicked"].to_pylist()
    ]
    schema = layout.read_schema(out)
    assert schema is not None
    assert [s["split"] for s in schema["imported"]["sources"]] == ["train", "val", "test"]


def test_import_malformed_line_leaves_nothing_behind(tmp_path: Path) -> None:
    src = tmp_path / "clicks.csv"
    src.write_text("label,shop,x\n" + "1,a,0.5\n" * 50 + "1,b,zero\n" + "0,c,1\n" * 50)
    out = tmp_path / "feats"
    with pytest.raises(DataImportError, match=r"clicks\.csv: line 52, field 'x': 'zero' is not"):
        import_features(ImportOptions(out_dir=out, sources=(src,), numeric=("x",)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clicks.csv"]


def test_import_bad_label_names_line(tmp_path: Path) -> None:
    src = tmp_path / "clicks.csv"
    src.write_text("label,shop\n" + "1,a\n" * 5 + "3,b\n")
    with pytest.raises(DataImportError, match=r"line 7, field 'label': the label is 3, not 0 or 1"):
        import_features(ImportOptions(out_dir=tmp_path / "o", sources=(src,)))


def test_import_empty_split_is_error(tmp_path: Path) -> None:
    src = tmp_path / "tiny.csv"
    src.write_text("label,shop\n1,a\n0,b\n")
    with pytest.raises(DataImportError, match=r"split\(s\) \[.*\] got no rows"):
        import_features(ImportOptions(out_dir=tmp_path / "o", sources=(src,)))
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("overwrite", [False, True])
def test_import_never_touches_user_data(
    clicks_csv: Path, user_data: Path, digests: Digests, overwrite: bool
) -> None:
    before = digests(user_data)
    opts = ImportOptions(out_dir=user_data, sources=(clicks_csv,), overwrite=overwrite)
    with pytest.raises(DataImportError, match="holds data that was not written by ctr-pipeline"):
        import_features(opts)
    assert digests(user_data) == before


def test_import_replaces_own_or_generated_output_with_overwrite(
    clicks_csv: Path, tmp_path: Path
) -> None:
    out = tmp_path / "feats"
    generate_features(out, rows=300, seed=1)
    opts = ImportOptions(out_dir=out, sources=(clicks_csv,))
    with pytest.raises(DataImportError, match="pass --overwrite"):
        import_features(opts)
    import_features(ImportOptions(out_dir=out, sources=(clicks_csv,), overwrite=True))
    import_features(ImportOptions(out_dir=out, sources=(clicks_csv,), overwrite=True, seed=9))
    assert layout.writer_of(out) == layout.IMPORTER


def test_import_source_inside_output_is_error(tmp_path: Path) -> None:
    out = tmp_path / "feats"
    generate_features(out, rows=300, seed=1)
    src = layout.split_path(out, "train")
    opts = ImportOptions(out_dir=out, sources=(src,), overwrite=True)
    with pytest.raises(DataImportError, match="lies inside the output directory"):
        import_features(opts)


def test_import_labels_positives_match_files(clicks_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "feats"
    report = import_features(ImportOptions(out_dir=out, sources=(clicks_csv,)))
    schema = json.loads((out / "schema.json").read_text())
    for split in layout.SPLITS:
        labels = np.asarray(_read(out, split)["click"])
        assert schema["positives"][split] == report["positives"][split] == int(labels.sum())

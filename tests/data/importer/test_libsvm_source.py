from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from ml.data.importer import libsvm_source
from ml.data.importer.libsvm_source import LibsvmSource
from ml.errors import DataImportError


def _table(src: LibsvmSource) -> pa.Table:
    return pa.Table.from_batches([b for _, b in src.batches()])


def test_libfm_fields_from_positions(frappe_libfm: Path) -> None:
    src = LibsvmSource(frappe_libfm)
    assert src.mode == "position" and src.fields == ["f1", "f2", "f3"]
    table = _table(src)
    assert table.num_rows == 400
    assert set(table.column("label").to_pylist()) == {0, 1}
    f2 = np.asarray(table.column("f2"))
    assert f2.min() >= 100 and f2.max() < 150


def test_libsvm_fields_from_ranges_and_map(frappe_libfm: Path, tmp_path: Path) -> None:
    inline = LibsvmSource(frappe_libfm, field_ranges="user=0-99,item=100-149,ctx=150-159")
    fmap = tmp_path / "fields.json"
    fmap.write_text(json.dumps({"ctx": [150, 159], "user": [0, 99], "item": [100, 149]}))
    mapped = LibsvmSource(frappe_libfm, field_map=fmap)
    text_map = tmp_path / "fields.txt"
    text_map.write_text("# field first last\nuser 0 99\nitem 100 149\nctx 150 159\n")
    assert inline.fields == mapped.fields == ["user", "item", "ctx"]
    assert LibsvmSource(frappe_libfm, field_map=text_map).fields == inline.fields
    assert _table(inline).equals(_table(mapped))


def test_libsvm_missing_fields_are_null_and_single_index_is_numeric(tmp_path: Path) -> None:
    path = tmp_path / "a.libsvm"
    path.write_text("1 3:1 10:0.5\n0 12:1\n+1 4:1 10:2.5 12:1\n")
    src = LibsvmSource(path, field_ranges="a=0-9,score=10-10,b=11-19")
    assert src.numeric == {"score"}
    table = _table(src)
    assert table.column("label").to_pylist() == [1, 0, 1]
    assert table.column("a").to_pylist() == [3, None, 4]
    assert table.column("score").to_pylist() == [0.5, None, 2.5]
    assert table.column("b").to_pylist() == [None, 12, 12]


def test_libffm_fields_from_field_numbers(tmp_path: Path) -> None:
    path = tmp_path / "a.ffm"
    path.write_text("1 0:5:1 2:9:1\n0 0:6:1 1:7:0.25 2:8:1\n")
    src = LibsvmSource(path, numeric=("f1",))
    assert src.mode == "ffm" and src.fields == ["f0", "f1", "f2"]
    table = _table(src)
    assert table.column("f0").to_pylist() == [5, 6]
    assert table.column("f1").to_pylist() == [None, 0.25]


def test_libsvm_blank_and_comment_lines_keep_line_numbers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(libsvm_source, "BLOCK_BYTES", 16)
    path = tmp_path / "a.libsvm"
    path.write_text("# comment\n1 1:1 5:1\n\n0 2:1 6:1\n1 3:1 7:1")
    src = LibsvmSource(path)
    assert _table(src).num_rows == 3
    assert src.where(0) == "line 2" and src.where(2) == "line 5"


@pytest.mark.parametrize(
    ("line", "kwargs", "match"),
    [
        ("2 1:1 5:1", {}, r"line 3, field 'label': '2' is not a binary label"),
        ("1 1x:1 5:1", {}, r"line 3, field 'f1' \(entry 1, '1x:1'\): the index is not a whole"),
        (
            "1 1:1 5:y",
            {"numeric": ("f2",)},
            r"line 3, field 'f2' \(entry 2, '5:y'\): the value is not a number",
        ),
        ("1 1:1", {}, r"line 3, field 'f2': 1 entries where the first line has 2"),
        ("1 1:1 1:1", {"field_ranges": "a=0-3,b=4-9"}, r"line 3, field 'f2' .*'a' appears twice"),
        (
            "1 1:1 50:1",
            {"field_ranges": "a=0-3,b=4-9"},
            r"line 3, field 'f2' \(entry 2, '50:1'\): its index is in no field range",
        ),
        ("1 1:1 2:5:1", {}, r"line 3, field 'f2' \(entry 2, '2:5:1'\): entries must all be"),
    ],
)
def test_libsvm_malformed_line_names_line_and_field(
    tmp_path: Path, line: str, kwargs: dict[str, object], match: str
) -> None:
    path = tmp_path / "bad.libsvm"
    path.write_text(f"1 1:1 5:1\n0 2:1 6:1\n{line}\n")
    with pytest.raises(DataImportError, match=rf"bad\.libsvm: {match}"):
        _table(LibsvmSource(path, **kwargs))  # type: ignore[arg-type]


def test_libsvm_bad_field_options(frappe_libfm: Path, tmp_path: Path) -> None:
    with pytest.raises(DataImportError, match="'a' and 'b' overlap"):
        LibsvmSource(frappe_libfm, field_ranges="a=0-10,b=5-20")
    with pytest.raises(DataImportError, match="must be FIRST-LAST indices"):
        LibsvmSource(frappe_libfm, field_ranges="a=0..10")
    with pytest.raises(DataImportError, match=r"--numeric names \['zz'\]"):
        LibsvmSource(frappe_libfm, numeric=("zz",))
    empty = tmp_path / "empty.libsvm"
    empty.write_text("\n# nothing\n")
    with pytest.raises(DataImportError, match="holds no data lines"):
        LibsvmSource(empty)

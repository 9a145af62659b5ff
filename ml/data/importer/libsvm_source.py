"""libSVM / libFM / libFFM text: ``label idx:val ...`` or ``label field:idx:val ...``.

Public CTR sets ship one-hot rows in these formats; the importer turns each *field* back
into a column. Fields are recovered from

- a field map (``--field-map FILE``: JSON ``{"user": [0, 953], ...}`` or lines
  ``user 0 953``) or inline ranges (``--field-ranges user=0-953,item=954-5335``): an
  index belongs to the field whose inclusive range holds it; a one-index range is a
  numeric field;
- the entry's own field number (libFFM's ``field:idx:val``): columns ``f<field>``;
- otherwise the entry's position in the line (libFM files from the FM/NFM papers hold
  one entry per field, in order): columns ``f1``, ``f2``, ...; every line must then hold
  the same number of entries.

A categorical field's value is the active index (int64); a numeric field's value is the
entry's value (float64; ``--numeric`` names them in the FFM and position modes). A field
absent from a line is null. Labels ``1``/``0`` or ``+1``/``-1`` become 1/0.

Lines are parsed in blocks with pyarrow's string kernels (no Python loop per line);
problems name the line, the field and the entry.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from ml.data.importer.sources import Source
from ml.errors import DataImportError

BLOCK_BYTES = 8 << 20
Ranges = list[tuple[str, int, int]]


@dataclass(frozen=True)
class _Block:
    """The data lines of one block, tokenised."""

    path: str
    line_nos: npt.NDArray[np.int64]  # per data line
    labels: pa.Array  # label token per line
    counts: npt.NDArray[np.int64]  # entries per line
    parts: pa.Array  # list<string> per entry: [idx, val] or [field, idx, val]
    form: int  # 2 (idx:val) or 3 (field:idx:val)

    @property
    def parent(self) -> npt.NDArray[np.int64]:
        """The line (0-based, within the block) of every entry."""
        return np.repeat(np.arange(len(self.line_nos)), self.counts)

    def entry_error(self, i: int, problem: str) -> DataImportError:
        """An error naming the line and the position of entry ``i``."""
        line = int(self.parent[i])
        pos = i - int(np.sum(self.counts[:line])) + 1
        token = ":".join(self.parts[i].as_py())
        return DataImportError(
            f"{self.path}: line {self.line_nos[line]}, field 'f{pos}' (entry {pos}, "
            f"{token!r}): {problem}"
        )

    def ints(self, k: int, what: str) -> npt.NDArray[np.int64]:
        values = pc.list_element(self.parts, k)
        ok = np.asarray(pc.match_substring_regex(values, r"^\d+$").fill_null(False))
        if not ok.all():
            raise self.entry_error(int(np.flatnonzero(~ok)[0]), f"{what} is not a whole number")
        return np.asarray(pc.cast(values, pa.int64()), dtype=np.int64)

    def floats(self, k: int) -> npt.NDArray[np.float64]:
        values = pc.list_element(self.parts, k)
        try:
            return np.asarray(pc.cast(values, pa.float64()), dtype=np.float64)
        except pa.ArrowInvalid:
            for i, v in enumerate(values.to_pylist()):
                try:
                    float(v)
                except (TypeError, ValueError):
                    raise self.entry_error(i, "the value is not a number") from None
            raise

    def label(self) -> npt.NDArray[np.int64]:
        text = np.asarray(self.labels.to_pylist(), dtype=object)
        ok = np.isin(text, _POSITIVE + _NEGATIVE)
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            raise DataImportError(
                f"{self.path}: line {self.line_nos[i]}, field 'label': {text[i]!r} is not a "
                "binary label (1/0 or +1/-1)"
            )
        return np.isin(text, _POSITIVE).astype(np.int64)


_POSITIVE = ["1", "+1", "1.0", "+1.0"]
_NEGATIVE = ["0", "-1", "0.0", "-1.0", "+0"]


class LibsvmSource(Source):
    format = "libsvm"
    text = False

    def __init__(
        self,
        path: Path,
        *,
        field_map: Path | None = None,
        field_ranges: str | None = None,
        numeric: tuple[str, ...] = (),
    ) -> None:
        super().__init__(path)
        self.ranges = _load_ranges(field_map, field_ranges)
        self.mode, self.fields, self._ffm = self._sniff()
        self.numeric = set(numeric) | {name for name, lo, hi in self.ranges if lo == hi}
        unknown = sorted(self.numeric - set(self.fields))
        if unknown:
            raise DataImportError(
                f"--numeric names {unknown}, which are not fields of {self.shown} "
                f"(fields: {self.fields})"
            )

    def _sniff(self) -> tuple[str, list[str], dict[int, int]]:
        """How fields are recovered, the field names and (libFFM) field number -> column."""
        if self.ranges:
            return "ranges", [name for name, _, _ in self.ranges], {}
        for block in self._blocks():
            if block.form == 3:
                numbers = sorted({int(x) for x in block.ints(0, "the field number")})
                return "ffm", [f"f{n}" for n in numbers], {n: i for i, n in enumerate(numbers)}
            return "position", [f"f{i}" for i in range(1, int(block.counts[0]) + 1)], {}
        raise DataImportError(f"{self.shown} holds no data lines")

    def _blocks(self) -> Iterator[_Block]:
        for first, lines in _read_blocks(self.path):
            block = _tokenise(lines, first, self.shown)
            if block is not None:
                yield block

    def raw_schema(self) -> pa.Schema:
        types = [("label", pa.int64())]
        types += [(f, pa.float64() if f in self.numeric else pa.int64()) for f in self.fields]
        return pa.schema(types)

    def batches(self, columns: list[str] | None = None) -> Iterator[tuple[int, pa.RecordBatch]]:
        done = 0
        for block in self._blocks():
            batch = self._columns(block)
            if columns is not None:
                batch = batch.select(columns)
            yield done, batch
            done += batch.num_rows

    def _columns(self, block: _Block) -> pa.RecordBatch:
        n = len(block.line_nos)
        parent = block.parent
        field = self._field_of(block)
        keys = parent * len(self.fields) + field
        if np.unique(keys).size != keys.size:
            order = np.argsort(keys, kind="stable")
            dup = int(order[1:][np.diff(keys[order]) == 0].min())
            raise block.entry_error(
                dup,
                f"field {self.fields[field[dup]]!r} appears twice in the line (one value per "
                "field; a multi-hot field needs one column per value)",
            )
        k = block.form - 2  # where the index sits
        index = block.ints(k, "the index")
        values = block.floats(k + 1) if self.numeric else None
        arrays: dict[str, pa.Array] = {"label": pa.array(block.label())}
        for j, name in enumerate(self.fields):
            sel = field == j
            present = np.zeros(n, dtype=bool)
            present[parent[sel]] = True
            source = values if name in self.numeric and values is not None else index
            out = np.zeros(n, dtype=source.dtype)
            out[parent[sel]] = source[sel]
            arrays[name] = pa.array(out, mask=~present)
        return pa.RecordBatch.from_pydict(arrays)

    def _field_of(self, block: _Block) -> npt.NDArray[np.int64]:
        """The field (column index) of every entry."""
        if self.mode == "position":
            bad = np.flatnonzero(block.counts != len(self.fields))
            if bad.size:
                i = int(bad[0])
                raise DataImportError(
                    f"{self.shown}: line {block.line_nos[i]}, field "
                    f"'f{min(int(block.counts[i]) + 1, len(self.fields))}': {block.counts[i]} "
                    f"entries where the first line has {len(self.fields)}; without --field-map "
                    "or --field-ranges a field is an entry's position, so every line needs the "
                    "same number of entries"
                )
            starts = np.cumsum(block.counts) - block.counts
            return np.arange(len(block.parent)) - np.repeat(starts, block.counts)
        if self.mode == "ffm":
            numbers = block.ints(0, "the field number")
            field = np.array([self._ffm.get(int(x), -1) for x in numbers], dtype=np.int64)
            why = "its field number is not among the fields of the first lines"
            return _check_found(block, field, why)
        index = block.ints(0, "the index")
        starts = np.array([lo for _, lo, _ in self.ranges])
        ends = np.array([hi for _, _, hi in self.ranges])
        field = np.searchsorted(starts, index, side="right") - 1
        field[(field < 0) | (index > ends[np.maximum(field, 0)])] = -1
        return _check_found(block, field, "its index is in no field range (--field-map)")

    def where(self, row: int) -> str:
        seen = 0
        for block in self._blocks():
            if row < seen + len(block.line_nos):
                return f"line {block.line_nos[row - seen]}"
            seen += len(block.line_nos)
        return f"data row {row + 1}"


def _read_blocks(path: Path) -> Iterator[tuple[int, list[bytes]]]:
    """``(first line number, lines)`` in blocks of about :data:`BLOCK_BYTES`."""
    line_no, rest = 1, b""
    with path.open("rb") as fh:
        while block := fh.read(BLOCK_BYTES):
            block = rest + block
            cut = block.rfind(b"\n")
            if cut < 0:
                rest = block
                continue
            lines, rest = block[:cut].split(b"\n"), block[cut + 1 :]
            yield line_no, lines
            line_no += len(lines)
    if rest:
        yield line_no, [rest]


def _tokenise(lines: list[bytes], first: int, shown: str) -> _Block | None:
    """The data lines of a block (blank and ``#`` lines skipped), or None if it has none."""
    try:
        text = pa.array(lines, type=pa.binary()).cast(pa.string())
    except pa.ArrowInvalid:
        bad = next(i for i, b in enumerate(lines) if not _is_utf8(b))
        raise DataImportError(
            f"{shown}: line {first + bad}, field 'label': the line is not UTF-8 text"
        ) from None
    text = pc.utf8_trim_whitespace(text)
    keep = pc.and_(pc.greater(pc.utf8_length(text), 0), pc.invert(pc.starts_with(text, "#")))
    line_nos = (first + np.arange(len(lines), dtype=np.int64))[np.asarray(keep)]
    if not len(line_nos):
        return None
    tokens = pc.utf8_split_whitespace(text.filter(keep))
    entries = pc.list_slice(tokens, 1)
    counts = np.asarray(pc.list_value_length(entries), dtype=np.int64)
    parts = pc.split_pattern(pc.list_flatten(entries), ":")
    n_parts = np.asarray(pc.list_value_length(parts))
    block = _Block(shown, line_nos, pc.list_element(tokens, 0), counts, parts, 2)
    if len(n_parts):
        block = dataclasses.replace(block, form=int(n_parts[0]))
        odd = np.flatnonzero((n_parts != n_parts[0]) | (n_parts < 2) | (n_parts > 3))
        if odd.size:
            i = int(odd[0])
            raise block.entry_error(
                i, "entries must all be idx:value (libSVM/libFM) or all field:idx:value (libFFM)"
            )
    return block


def _is_utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _check_found(block: _Block, field: npt.NDArray[np.int64], why: str) -> npt.NDArray[np.int64]:
    missing = np.flatnonzero(field < 0)
    if missing.size:
        raise block.entry_error(int(missing[0]), why)
    return field


def _load_ranges(field_map: Path | None, inline: str | None) -> Ranges:
    """(name, first index, last index) sorted by first index; overlaps are an error."""
    pairs: list[tuple[str, str]] = []
    if field_map is not None:
        text = field_map.read_text(encoding="utf-8")
        if text.lstrip().startswith("{"):
            data = json.loads(text)
            pairs = [(str(k), f"{v[0]}-{v[1]}") for k, v in data.items()]
        else:
            for line in text.splitlines():
                parts = line.split()
                if parts and not parts[0].startswith("#"):
                    pairs.append((parts[0], "-".join(parts[1:3])))
    if inline:
        pairs += [tuple(p.split("=", 1)) for p in inline.split(",")]  # type: ignore[misc]
    ranges: Ranges = []
    for name, span in pairs:
        try:
            lo, hi = (int(x) for x in span.split("-"))
        except ValueError:
            raise DataImportError(
                f"field range {name}={span!r} must be FIRST-LAST indices, e.g. user=0-953"
            ) from None
        ranges.append((name.strip(), lo, hi))
    ranges.sort(key=lambda r: r[1])
    for (a, _, a_hi), (b, b_lo, _) in itertools.pairwise(ranges):
        if b_lo <= a_hi:
            raise DataImportError(f"field ranges {a!r} and {b!r} overlap")
    return ranges

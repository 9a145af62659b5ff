"""The per-model index: what readers need without opening every version directory.

Two append-only files in ``.registry/<name>/``, both caches of what the version
directories say, written after a version is published (and by recovery when its
writer died first), so readers check them against the directories and fall back to
the directories for anything missing:

- ``published-<stage>``: the version numbers the registry published in a stage, as
  ranges (``1-9999;`` then ``10001;``...), replaced atomically. A ``vN`` directory only
  appears by renaming a complete one, so a listed number needs no ``stat`` of its
  manifest; an unlisted ``vN`` (made by hand, or published just now) is checked for its
  manifest. This keeps ``list_models`` at one ``scandir`` plus
  one small read per model (10,000 versions in a few milliseconds).
- ``index.jsonl``: one line of facts per published version, newest last: ``version``,
  ``created_at``, ``test_auc``, ``test_logloss``, the producing run (``dag_id``,
  ``run_id``, ``run_dir``), the lineage digests (``data_digest``, ``config_digest``,
  ``code_digest``) and ``source_key``. Versions are immutable, so a line never goes stale;
  a deleted version simply is not listed any more.

``last_version`` (also here) is the highest number ever handed out. The version
directories and ``.archive/`` already keep numbers unique, so it is written (durably)
only before retention purges versions for good (``gc --keep-last``).
"""

from __future__ import annotations

import bisect
import errno
import json
import re
from typing import Any

from ml.errors import IntegrityError
from ml.fsutil import atomic_write_bytes, fsync_dir
from ml.registry import _fs
from ml.registry.layout import INDEX, LAST_VERSION, Layout, version_number
from ml.registry.provenance import lineage_digests, source_key

_RANGE = re.compile(rb"(\d+)(?:-(\d+))?;")
#: the start of an index line (the version comes first). JSON escapes a quote inside a
#: string, so this text only ever appears where a line's object begins.
_LINE_START = re.compile(rb'\{"version":"v([1-9][0-9]{0,17})"')


def _ranges(raw: bytes) -> list[tuple[int, int]]:
    return [(int(lo), int(hi or lo)) for lo, hi in _RANGE.findall(raw)]


def published(layout: Layout, stage: str, name: str) -> list[tuple[int, int]] | None:
    """The ranges of numbers listed in ``published-<stage>``; None when there is no file."""
    path = layout.published_file(stage, name)
    try:
        raw = _fs.read_regular(path, limit=1 << 28)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return _ranges(raw)


def in_ranges(numbers: list[int], ranges: list[tuple[int, int]]) -> list[bool]:
    """For each of the ascending ``numbers``, whether one of ``ranges`` holds it."""
    if len(ranges) == 1 and numbers and ranges[0][0] <= numbers[0] and numbers[-1] <= ranges[0][1]:
        return [True] * len(numbers)  # the usual case: one unbroken run of versions
    starts = [lo for lo, _ in ranges]
    out = []
    for n in numbers:
        i = bisect.bisect_right(starts, n) - 1
        out.append(i >= 0 and n <= ranges[i][1])
    return out


def write_published(layout: Layout, stage: str, name: str, numbers: list[int]) -> None:
    """Replace ``published-<stage>`` with ``numbers``, kept as ranges (``1-9999;``)."""
    runs: list[list[int]] = []
    for n in sorted(set(numbers)):
        if runs and runs[-1][1] == n - 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    text = "".join(f"{lo}-{hi};\n" if hi != lo else f"{lo};\n" for lo, hi in runs)
    atomic_write_bytes(layout.published_file(stage, name), text.encode())


def change_published(
    layout: Layout, stage: str, name: str, *, add: int | None = None, remove: int | None = None
) -> None:
    """Add or remove one number (a rewrite of a few ranges, under the model's lock)."""
    numbers = {n for lo, hi in published(layout, stage, name) or [] for n in range(lo, hi + 1)}
    if add is not None:
        numbers.add(add)
    if remove is not None:
        numbers.discard(remove)
    write_published(layout, stage, name, sorted(numbers))


def entry(metadata: dict[str, Any], version: str) -> dict[str, Any]:
    """The index line of a version, from its ``metadata.json``."""
    raw_source, raw_metrics = metadata.get("source"), metadata.get("metrics")
    source: dict[str, Any] = raw_source if isinstance(raw_source, dict) else {}
    metrics: dict[str, Any] = raw_metrics if isinstance(raw_metrics, dict) else {}
    data, config, code = lineage_digests(metadata)
    run_dir, model_sha = source.get("run_dir"), source.get("model_sha256")
    return {
        "version": version,  # first: readers find it without parsing the line
        "created_at": metadata.get("created_at"),
        "test_auc": metrics.get("test_auc"),
        "test_logloss": metrics.get("test_logloss"),
        "dag_id": source.get("dag_id"),
        "run_id": source.get("run_id"),
        "run_dir": run_dir,
        "data_digest": data,
        "config_digest": config,
        "code_digest": code,
        "source_key": (
            source_key(run_dir, model_sha)
            if isinstance(run_dir, str) and isinstance(model_sha, str)
            else None
        ),
    }


def append(layout: Layout, name: str, line: dict[str, Any]) -> None:
    blob = json.dumps(line, separators=(",", ":"), default=str) + "\n"
    _fs.append_line(layout.meta_file(name, INDEX), blob.encode(), sync=False)


def _raw(layout: Layout, name: str) -> bytes:
    try:
        return _fs.read_regular(layout.meta_file(name, INDEX), limit=1 << 30)
    except (FileNotFoundError, NotADirectoryError):
        return b""


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None  # torn by a crash: the version's metadata.json still has it all
    return record if isinstance(record, dict) else None


def _line_at(raw: bytes, pos: int) -> bytes:
    start = raw.rfind(b"\n", 0, pos) + 1
    end = raw.find(b"\n", pos)
    return raw[start : end if end >= 0 else len(raw)]


def indexed_numbers(layout: Layout, name: str) -> set[int]:
    """Numbers of the versions that have an index line (the lines are not parsed)."""
    return set(map(int, _LINE_START.findall(_raw(layout, name))))


def search(layout: Layout, name: str, text: str) -> tuple[set[int], dict[int, dict[str, Any]]]:
    """In one read: every indexed number, and the parsed lines that contain ``text``."""
    raw = _raw(layout, name)
    found: dict[int, dict[str, Any]] = {}
    needle, pos = text.encode(), 0
    while needle and (pos := raw.find(needle, pos)) >= 0:
        line = _line_at(raw, pos)
        record = _parse(line)
        n = version_number(str(record.get("version"))) if record else None
        if record is not None and n is not None:
            found[n] = record
        pos += len(needle)
    return set(map(int, _LINE_START.findall(raw))), found


def entries(
    layout: Layout, name: str, numbers: set[int] | None = None
) -> dict[int, dict[str, Any]]:
    """Index lines by version number (only ``numbers`` when given; the newest line wins)."""
    raw = _raw(layout, name)
    out: dict[int, dict[str, Any]] = {}
    if numbers is None:
        for line in raw.splitlines():
            record = _parse(line)
            n = version_number(str(record.get("version"))) if record else None
            if record is not None and n is not None:
                out[n] = record
        return out
    for n in numbers:  # a few versions (a listing's page): look each one up from the end
        pos = raw.rfind(b'\n{"version":"v%d"' % n)
        if pos < 0 and raw.startswith(b'{"version":"v%d"' % n):
            pos = 0
        record = _parse(_line_at(raw, pos + 1)) if pos >= 0 else None
        if record is not None and record.get("version") == f"v{n}":
            out[n] = record
    return out


def write_all(layout: Layout, name: str, lines: list[dict[str, Any]]) -> None:
    """Replace ``index.jsonl`` (to backfill a registry written before the index existed)."""
    blob = "".join(json.dumps(line, separators=(",", ":"), default=str) + "\n" for line in lines)
    atomic_write_bytes(layout.meta_file(name, INDEX), blob.encode())


# --- last_version: the highest number ever handed out ---------------------------------


def last_version(layout: Layout, name: str) -> int:
    """The number in ``last_version`` (0 when absent).

    Raises:
        IntegrityError: the file holds anything but a version number.
    """
    path = layout.meta_file(name, LAST_VERSION)
    try:
        raw = _fs.read_regular(path, limit=64)
    except (FileNotFoundError, NotADirectoryError):
        return 0
    except OSError as exc:
        if exc.errno != errno.EFBIG:
            raise
        raw = b"?"
    n = version_number("v" + raw.decode("ascii", "replace").strip())
    if n is None:
        raise IntegrityError(
            f"{layout.display(path)} is damaged (it must hold the highest version number "
            f"handed out, got {raw[:20]!r}); write the highest number of any version, "
            "archived ones included, into it (or delete it if no version was ever purged)"
        )
    return n


def raise_last_version(layout: Layout, name: str, number: int, *, durable: bool = False) -> None:
    """Record that ``number`` was handed out (no-op when a higher one already was)."""
    if number <= last_version(layout, name):
        return
    path = layout.meta_file(name, LAST_VERSION)
    atomic_write_bytes(path, f"{number}\n".encode())
    if durable:
        fsync_dir(path.parent)

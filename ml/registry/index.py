"""The per-model index: what readers need without opening every version directory.

Two append-only files in ``.registry/<name>/``, both caches of what the version
directories say, written after a version is published (and by recovery when its
writer died first), so readers check them against the directories and fall back to
the directories for anything missing:

- ``published-<stage>``: the version numbers the registry published in a stage, one per
  line, each ended by ``;`` (a number torn by a crash lacks it and is ignored). A ``vN``
  directory only appears by renaming a complete one, so a listed number needs no
  ``stat`` of its manifest; an unlisted ``vN`` (made by hand, or published just now) is
  checked for its manifest. This keeps ``list_models`` at one ``scandir`` plus
  one small read per model (10,000 versions in a few milliseconds).
- ``index.jsonl``: one line of facts per published version, newest last: ``version``,
  ``created_at``, ``test_auc``, ``test_logloss``, the producing run (``dag_id``,
  ``run_id``, ``run_dir``), the lineage digests (``data_digest``, ``config_digest``,
  ``code_digest``) and ``source_key``. Versions are immutable, so a line never goes stale;
  a deleted version simply is not listed any more.

``last_version`` (also here) is the highest number ever handed out, so that numbers stay
unique after versions are purged for good (``gc --keep-last``).
"""

from __future__ import annotations

import errno
import json
from typing import Any

from ml.fsutil import atomic_write_bytes, fsync_dir
from ml.registry import _fs
from ml.registry.errors import IntegrityError
from ml.registry.layout import INDEX, LAST_VERSION, Layout, version_number
from ml.registry.provenance import lineage_digests, source_key

_PREFIX = '{"version":"v'


def published(layout: Layout, stage: str, name: str) -> set[int] | None:
    """Numbers listed in ``published-<stage>``; None when the file does not exist."""
    path = layout.published_file(stage, name)
    try:
        raw = _fs.read_regular(path, limit=1 << 28)
    except (FileNotFoundError, NotADirectoryError):
        return None
    # "12;": a number cut short by a crash ("12" of "123;") lacks its ";" and is skipped
    return {int(tok[:-1]) for tok in raw.split() if tok[-1:] == b";" and tok[:-1].isdigit()}


def add_published(layout: Layout, stage: str, name: str, number: int) -> None:
    _fs.append_line(layout.published_file(stage, name), f"{number};\n".encode(), sync=False)


def write_published(layout: Layout, stage: str, name: str, numbers: list[int]) -> None:
    """Replace ``published-<stage>`` (after a delete, or to backfill an old registry)."""
    text = "".join(f"{n};\n" for n in sorted(numbers))
    atomic_write_bytes(layout.published_file(stage, name), text.encode())


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


def _lines(layout: Layout, name: str) -> list[bytes]:
    path = layout.meta_file(name, INDEX)
    try:
        return _fs.read_regular(path, limit=1 << 30).splitlines()
    except (FileNotFoundError, NotADirectoryError):
        return []


def _number(line: bytes) -> int | None:
    text = line[: len(_PREFIX) + 20].decode("ascii", "replace")
    if not text.startswith(_PREFIX):
        return None
    end = text.find('"', len(_PREFIX))
    return version_number(text[len(_PREFIX) - 1 : end]) if end > 0 else None


def indexed_numbers(layout: Layout, name: str) -> set[int]:
    """Numbers of the versions that have an index line (the lines are not parsed)."""
    return {n for n in map(_number, _lines(layout, name)) if n is not None}


def search(layout: Layout, name: str, text: str) -> tuple[set[int], dict[int, dict[str, Any]]]:
    """In one read: every indexed number, and the parsed lines that contain ``text``."""
    numbers: set[int] = set()
    found: dict[int, dict[str, Any]] = {}
    needle = text.encode()
    for line in _lines(layout, name):
        n = _number(line)
        if n is None:
            continue
        numbers.add(n)
        if needle in line:
            record = _parse(line)
            if record is not None:
                found[n] = record
    return numbers, found


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None  # torn by a crash: the version's metadata.json still has it all
    return record if isinstance(record, dict) else None


def entries(
    layout: Layout, name: str, numbers: set[int] | None = None
) -> dict[int, dict[str, Any]]:
    """Index lines by version number (only ``numbers`` when given)."""
    out: dict[int, dict[str, Any]] = {}
    for line in _lines(layout, name):
        n = _number(line)
        if n is None or (numbers is not None and n not in numbers):
            continue
        record = _parse(line)
        if record is not None:
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

"""``data.streaming``: train from memory (fastest while the data fits) or stream shards.

``true`` and ``false`` force a path. ``auto`` estimates what the in-memory path needs,
from the parquet footers only (no rows read):

- the encoded splits: rows x (fields + numerics + 1) x 4 bytes, on the training
  device (host memory on a CPU, GPU memory on CUDA);
- while loading, the largest split's columns decoded: its uncompressed column-chunk
  sizes from the footer, counted twice (arrow, then pandas).

and compares it with the memory available: ``MemAvailable`` of ``/proc/meminfo``
(psutil), lowered to what a cgroup memory limit leaves (``memory.max`` minus
``memory.current``, or the v1 files), and on CUDA the device's free memory. Streaming
is chosen when the need exceeds :data:`HEADROOM` of what is available. The choice and
its reason are logged.

Under torchrun (``copies``: the processes on this machine, ``LOCAL_WORLD_SIZE``) every
process decodes and holds its own encoded train split at the same time, so the host
need counts ``copies`` of train's (each GPU holds one copy: the GPU need is unchanged).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ml.config import Config
from ml.data.layout import split_file
from ml.storage.files import Location

__all__ = ["HEADROOM", "DataMode", "available_memory", "choose", "describe", "in_memory_need"]

#: The in-memory path is chosen while it needs at most this share of the free memory.
HEADROOM = 0.6


@dataclass(frozen=True)
class DataMode:
    streaming: bool
    reason: str


def _cgroup_room() -> int | None:
    """Bytes a cgroup memory limit still allows this process's group, if one is set."""
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
        ),
    ):
        try:
            raw = Path(limit_file).read_text().strip()
            used = int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if raw == "max" or not raw.isdigit() or int(raw) >= 1 << 60:
            return None
        return max(int(raw) - used, 0)
    return None


def available_memory() -> int:
    """Bytes of host memory this process can still use (the tighter of the OS's
    available memory and a cgroup limit)."""
    import psutil

    avail = int(psutil.virtual_memory().available)
    room = _cgroup_room()
    return min(avail, room) if room is not None else avail


def _footer_sizes(feats: Location, split: str, columns: tuple[str, ...]) -> tuple[int, int]:
    """``(rows, uncompressed bytes of the columns)`` of a split from its footer."""
    import pyarrow.parquet as pq

    md = pq.ParquetFile(split_file(feats, split).open()).metadata
    wanted = set(columns)
    size = 0
    for rg in range(md.num_row_groups):
        group = md.row_group(rg)
        for c in range(group.num_columns):
            col = group.column(c)
            if col.path_in_schema in wanted:
                size += int(col.total_uncompressed_size)
    return int(md.num_rows), size


def _split_needs(
    cfg: Config, feats: Location, splits: tuple[str, ...]
) -> dict[str, tuple[int, int]]:
    """Per split: ``(bytes encoded, peak bytes decoding it)``."""
    spec = cfg.features
    width = len(spec.categorical) + len(spec.numeric) * (2 if cfg.data.numeric_bins > 1 else 1)
    needs: dict[str, tuple[int, int]] = {}
    for name in splits:
        rows, raw = _footer_sizes(feats, name, spec.all_columns)
        needs[name] = (rows * (width + 1) * 4, 2 * raw)
    return needs


def _combined(needs: dict[str, tuple[int, int]], copies: int) -> tuple[int, int]:
    """``(bytes encoded, peak bytes decoding)`` with ``copies`` processes holding train."""
    encoded = sum(e * (copies if name == "train" else 1) for name, (e, _) in needs.items())
    decode = max(
        (d * (copies if name == "train" else 1) for name, (_, d) in needs.items()), default=0
    )
    return encoded, decode


def in_memory_need(
    cfg: Config, feats: Location, splits: tuple[str, ...], copies: int = 1
) -> tuple[int, int]:
    """``(bytes of the encoded splits, peak bytes of decoding the largest split)``, with
    ``copies`` processes each decoding and holding the train split (module doc)."""
    return _combined(_split_needs(cfg, feats, splits), copies)


def choose(
    cfg: Config,
    feats: Location,
    splits: tuple[str, ...],
    device: torch.device,
    copies: int = 1,
) -> DataMode:
    """The path ``data.streaming`` asks for, with the reason for the log (``copies``:
    the processes on this machine that each load the train split, torchrun's)."""
    setting = str(cfg.data.streaming)
    if setting == "true":
        return DataMode(True, "data.streaming: true")
    if setting == "false":
        return DataMode(False, "data.streaming: false")
    needs = _split_needs(cfg, feats, splits)
    encoded, decode = _combined(needs, copies)
    host_need = decode + (encoded if device.type == "cpu" else 0)
    host = available_memory()
    each = f" ({copies} processes each holding train)" if copies > 1 else ""
    if host_need > HEADROOM * host:
        return DataMode(
            True,
            f"data.streaming auto: in memory would need ~{_gb(host_need)} of host memory"
            f"{each}, {_gb(host)} available",
        )
    if device.type == "cuda":
        encoded, _ = _combined(needs, 1)  # each process's GPU holds one copy
        free, _ = torch.cuda.mem_get_info(device)
        if encoded > HEADROOM * free:
            return DataMode(
                True,
                f"data.streaming auto: the encoded splits need ~{_gb(encoded)} of GPU memory, "
                f"{_gb(free)} free",
            )
    return DataMode(
        False,
        f"data.streaming auto: in memory needs ~{_gb(max(host_need, encoded))}{each}, "
        f"{_gb(host)} available",
    )


def _gb(n: int | float) -> str:
    return f"{n / 1e9:.2f} GB"


def describe(mode: DataMode) -> str:
    path = "streaming from a shard cache" if mode.streaming else "in memory"
    return f"Data loading: {path} ({mode.reason})"

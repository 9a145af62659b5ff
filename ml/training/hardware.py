"""What the CPU can do, read from ``/proc/cpuinfo``: the training job warns about bf16
on a CPU that only emulates it, and ``make bench`` records the CPU beside its figures."""

from __future__ import annotations

import os
from pathlib import Path


def cpu_info(cpuinfo: str | os.PathLike[str] = "/proc/cpuinfo") -> dict[str, str]:
    """The first processor's fields of ``/proc/cpuinfo`` (``model name``, ``flags``, ...);
    empty where it cannot be read (not Linux)."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return {}
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            break  # the end of the first processor's block
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def cpu_has_native_bf16(cpuinfo: str | os.PathLike[str] = "/proc/cpuinfo") -> bool | None:
    """Whether the CPU computes bf16 natively (``avx512_bf16`` or ``amx_bf16`` among its
    flags): where it does not, bf16 autocast is emulated and slower than fp32 (measured
    on an AVX2-only AMD EPYC). ``None`` when the flags cannot be read (not Linux)."""
    flags = cpu_info(cpuinfo).get("flags")
    if flags is None:
        return None
    return bool({"avx512_bf16", "amx_bf16"} & set(flags.split()))

"""What the CPU can do, read from ``/proc/cpuinfo``: ``training.precision: auto`` trains
in bf16 where the device computes it natively, the training job warns about an explicit
bf16 on a CPU that only emulates it, and ``make bench`` records the CPU beside its
figures."""

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


BF16_EMULATED_WARNING = (
    "training.precision is bf16 but this CPU has no native bf16 instructions (AVX-512 BF16 "
    "or AMX): autocast emulates bf16 and trains several times slower than fp32; "
    "set training.precision: auto (or fp32)"
)


def resolve_precision(precision: str, device_type: str) -> tuple[str, str]:
    """``training.precision`` as trained, and the line the training log shows about it
    (empty when there is nothing to say).

    ``auto`` is bf16 where the device computes it natively (a CUDA GPU with bf16, a CPU
    with AVX-512 BF16 or AMX) and fp32 elsewhere; ``fp32`` and ``bf16`` are kept as
    asked, with a warning for bf16 on a CPU that only emulates it. bf16 autocast runs the
    forward pass's matmuls in bf16 (weights, optimizer and evaluation stay fp32): ~1.6-1.9x
    the samples/s on an AVX-512 BF16 CPU, the same test AUC to the fourth decimal on the
    realistic-shape benchmark and the defaults table's worlds; emulated (AVX2 only) it
    is ~9x slower, hence fp32 there.
    """
    if precision != "auto":
        emulated = precision == "bf16" and device_type == "cpu" and cpu_has_native_bf16() is False
        return precision, f"⚠️  {BF16_EMULATED_WARNING}" if emulated else ""
    if device_type == "cuda":
        import torch

        native = torch.cuda.is_bf16_supported(including_emulation=False)
        why = "the GPU computes bf16" if native else "the GPU has no native bf16"
    else:
        native = device_type == "cpu" and bool(cpu_has_native_bf16())
        why = (
            "this CPU has native bf16 (AVX-512 BF16 or AMX)"
            if native
            else "no native bf16 on this device"
        )
    chosen = "bf16" if native else "fp32"
    return chosen, f"Precision {chosen} (automatic: {why})"

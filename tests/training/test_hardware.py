"""ml.training.hardware: the CPU's fields and whether it computes bf16 natively."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml.training import hardware
from ml.training.hardware import cpu_has_native_bf16, cpu_info, resolve_precision


@pytest.mark.parametrize(
    ("flags", "native"),
    [
        ("fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni", True),
        ("fpu sse2 avx2 amx_bf16 amx_tile", True),
        ("fpu sse2 avx avx2 fma", False),
    ],
)
def test_cpu_has_native_bf16_reads_the_cpu_flags(tmp_path: Path, flags: str, native: bool) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: {flags}\n")
    assert cpu_has_native_bf16(cpuinfo) is native
    assert cpu_has_native_bf16(tmp_path / "missing") is None  # not Linux: unknown, no warning


def test_cpu_info_reads_the_first_processor_only(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    first = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2\n"
    cpuinfo.write_text(first + "\nprocessor\t: 1\nmodel name\t: Other\nflags\t\t: avx512_bf16\n")
    assert cpu_info(cpuinfo) == {"processor": "0", "model name": "AMD EPYC", "flags": "fpu avx2"}
    assert cpu_has_native_bf16(cpuinfo) is False
    assert cpu_info(tmp_path / "missing") == {}


def test_resolve_precision_auto_follows_the_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: True)
    assert resolve_precision("auto", "cpu")[0] == "bf16"
    assert resolve_precision("fp32", "cpu") == ("fp32", "")  # explicit values are kept
    assert resolve_precision("bf16", "cpu") == ("bf16", "")
    for unknown_or_emulated in (False, None):
        monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda v=unknown_or_emulated: v)
        assert resolve_precision("auto", "cpu")[0] == "fp32"
    # An explicit bf16 where it is emulated is kept, with the warning; unknown: no warning.
    assert resolve_precision("bf16", "cpu") == ("bf16", "")
    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: False)
    assert resolve_precision("bf16", "cpu") == ("bf16", f"⚠️  {hardware.BF16_EMULATED_WARNING}")
    import torch

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert resolve_precision("auto", "cuda")[0] == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: False)
    assert resolve_precision("auto", "cuda")[0] == "fp32"

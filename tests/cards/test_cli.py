"""ctr-pipeline's card commands: cheap to load, and registration survives a card problem."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ml.cards.build import try_prepare_run_card

CHECKOUT = Path(__file__).resolve().parents[2]


def test_help_imports_no_plotting_or_scoring_library() -> None:
    code = (
        "import sys; from ml.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('matplotlib', 'sklearn', 'torch') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=CHECKOUT,
        env={"PYTHONPATH": str(CHECKOUT), "PATH": "/usr/bin:/bin"},
    ).stdout
    assert out.strip() == "[]"


def test_a_run_without_metrics_registers_without_a_card(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert try_prepare_run_card(str(tmp_path), "m", registry=None) is None
    assert "No model card for" in caplog.text and "registering without one" in caplog.text

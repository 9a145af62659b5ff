from __future__ import annotations

import pytest

from ml.cli import main
from ml.errors import CardError, CtrPipelineError, UserError


def test_card_error_is_a_user_error() -> None:
    assert issubclass(CardError, UserError) and issubclass(CardError, CtrPipelineError)
    assert CardError("x").exit_code == 2


def test_card_error_prints_one_line_exit_2(
    project_home: object, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["runs", "compare", "only_one_run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1

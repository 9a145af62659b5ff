"""ml/cli.py: one parser for every area, and the exit code of each outcome (the error
translation by branch is tested with the error tree in test_errors.py)."""

from __future__ import annotations

import argparse

import pytest

import ml
from ml import cli
from ml.errors import GateFailedError


def _commands(parser: argparse.ArgumentParser) -> set[str]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(sub.choices)


def test_build_parser_registers_every_area() -> None:
    assert _commands(cli.build_parser()) == {
        "data", "train", "evaluate", "run", "registry", "serve", "predict", "runs", "tune",
    }  # fmt: skip


def test_version_and_a_missing_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0 and ml.__version__ in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        cli.main([])
    assert exit_info.value.code == 2


@pytest.mark.parametrize(
    ("outcome", "code", "stderr"),
    [
        (lambda: 0, 0, ""),
        (lambda: None, 0, ""),
        (lambda: 5, 5, ""),
        (GateFailedError("test AUC 0.6 < 0.65"), 1, "error: test AUC 0.6 < 0.65\n"),
        (KeyboardInterrupt(), 130, "interrupted\n"),
    ],
)
def test_main_returns_the_handlers_code_or_the_errors(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    outcome: object,
    code: int,
    stderr: str,
) -> None:
    def handler(args: argparse.Namespace) -> object:
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome()  # type: ignore[operator]

    monkeypatch.setattr("ml.training.cli._cmd_evaluate", handler)
    assert cli.main(["evaluate", "--run-dir", "x"]) == code
    assert capsys.readouterr().err == stderr

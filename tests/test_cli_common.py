from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import pytest

from ml.cli_common import (
    add_command,
    add_config_args,
    emit,
    from_args,
    load_config_args,
    non_negative_int,
    parse_overrides,
    positive_int,
    table,
)
from ml.errors import ConfigError


def test_parse_overrides_nests_sections_and_parses_yaml() -> None:
    got = parse_overrides(["training.epochs=2", "model.hidden_units=[64, 32]", "seed=1",
                           "model.name=logreg"])  # fmt: skip
    assert got == {
        "training": {"epochs": 2},
        "model": {"hidden_units": [64, 32], "name": "logreg"},
        "seed": 1,
    }


@pytest.mark.parametrize("bad", ["epochs", "=3", "a.b.c=1"])
def test_parse_overrides_rejects_malformed_items(bad: str) -> None:
    with pytest.raises(ConfigError, match="--set"):
        parse_overrides([bad])


def _handler(args: argparse.Namespace) -> int:
    """say hello
    to the user

    Prints a greeting; exit 0.
    """
    return 0


def test_add_command_takes_help_and_description_from_the_docstring() -> None:
    parser = argparse.ArgumentParser(prog="x")
    sub = parser.add_subparsers(dest="command")
    p = add_command(sub, "hello", _handler)
    assert p.description == "Prints a greeting; exit 0."
    assert "say hello to the user" in parser.format_help()
    assert parser.parse_args(["hello"]).func is _handler


def test_add_command_keeps_explicit_help() -> None:
    sub = argparse.ArgumentParser(prog="x").add_subparsers(dest="command")
    p = add_command(sub, "hello", _handler, help="short", description="long")
    assert p.description == "long"


def test_load_config_args_applies_set_overrides() -> None:
    p = argparse.ArgumentParser()
    add_config_args(p)
    shipped = load_config_args(p.parse_args([]))  # the default --config
    changed = load_config_args(p.parse_args(["--set", "training.epochs=17"]))
    assert changed.training.epochs == 17 != shipped.training.epochs
    assert changed.model == shipped.model


def test_emit_prints_json_or_lines(capsys: pytest.CaptureFixture[str]) -> None:
    emit(argparse.Namespace(json=True), {"b": 1, "a": Path("p")}, ["unused"])
    assert json.loads(capsys.readouterr().out) == {"a": "p", "b": 1}
    emit(argparse.Namespace(), {"a": 1}, ["one", "two"])
    assert capsys.readouterr().out == "one\ntwo\n"


def test_table_aligns_columns_and_blanks_none() -> None:
    lines = table(("name", "n"), [("alpha", 1), ("b", None)])
    assert lines == ["name   n", "-----  -", "alpha  1", "b"]


@pytest.mark.parametrize(("text", "value"), [("0", 0), ("1_000", 1000)])
def test_non_negative_int_parses(text: str, value: int) -> None:
    assert non_negative_int(text) == value


@pytest.mark.parametrize(
    ("func", "text", "message"),
    [
        (non_negative_int, "x", "must be an integer, got 'x'"),
        (non_negative_int, "-1", "must be >= 0, got '-1'"),
        (positive_int, "0", "must be a positive integer, got '0'"),
    ],
)
def test_int_types_reject_out_of_range(func: object, text: str, message: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        func(text)  # type: ignore[operator]


@dataclasses.dataclass(frozen=True)
class _Settings:
    name: str
    size: int = 1
    path: str = "default"
    untouched: bool = False


def test_from_args_fills_fields_named_like_options() -> None:
    args = argparse.Namespace(name="n", size=3, where="/p", json=True)
    got = from_args(_Settings, args, path=args.where)
    assert got == _Settings(name="n", size=3, path="/p", untouched=False)

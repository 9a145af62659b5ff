"""Safe loading, checked over the code (docs/security.md): every ``torch.load`` passes
``weights_only=True``; no ``yaml.load``/``unsafe_load``/``full_load``; no pickle, joblib or
``pandas.read_pickle`` loading; ``numpy.load`` never with ``allow_pickle=True``.

The check reads the syntax tree (not the text), so comments and docstrings that mention
``torch.load`` are not findings, and aliases (``import torch as t``, ``from yaml import
load``) are.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parent.parent
AREAS = ("ml", "dags", "plugins", "scripts")

#: Calls that deserialise arbitrary objects (run code from the file): never allowed.
FORBIDDEN = {
    "yaml.load": "use yaml.safe_load",
    "yaml.load_all": "use yaml.safe_load_all",
    "yaml.unsafe_load": "use yaml.safe_load",
    "yaml.unsafe_load_all": "use yaml.safe_load_all",
    "yaml.full_load": "use yaml.safe_load",
    "yaml.full_load_all": "use yaml.safe_load_all",
    "pickle.load": "no pickle: use JSON, safetensors-style state dicts or torch weights_only",
    "pickle.loads": "no pickle",
    "pickle.Unpickler": "no pickle",
    "dill.load": "no pickle",
    "dill.loads": "no pickle",
    "cloudpickle.load": "no pickle",
    "cloudpickle.loads": "no pickle",
    "joblib.load": "joblib.load unpickles",
    "pandas.read_pickle": "read_pickle unpickles",
    "torch.jit.load": "a TorchScript archive runs code",
}


def _qualified(node: ast.expr, names: dict[str, str]) -> str | None:
    """``torch.load`` for ``torch.load`` / ``t.load`` (``import torch as t``) / ``load``
    (``from torch import load``); None for anything else."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    base = names.get(node.id, node.id)
    return ".".join([base, *reversed(parts)])


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_true(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def unsafe_loads(source: str, filename: str = "<code>") -> list[str]:
    """Each unsafe deserialisation in ``source`` as ``file:line: call: why``."""
    tree = ast.parse(source, filename)
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names[alias.asname or alias.name.split(".")[0]] = (
                    alias.name if alias.asname else alias.name.split(".")[0]
                )
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    found: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _qualified(node.func, names)
        if name is None:
            continue
        where = f"{filename}:{node.lineno}: {name}"
        if name in FORBIDDEN:
            found.append(f"{where}: {FORBIDDEN[name]}")
        elif name == "torch.load" and not _is_true(_keyword(node, "weights_only")):
            found.append(f"{where}: pass weights_only=True (nothing pickled may run)")
        elif name == "numpy.load":
            flag = _keyword(node, "allow_pickle")
            if flag is not None and not (isinstance(flag, ast.Constant) and flag.value is False):
                found.append(f"{where}: allow_pickle must stay False")
    return found


def _sources() -> list[Path]:
    return sorted(p for area in AREAS for p in (CHECKOUT / area).rglob("*.py"))


def test_the_code_loads_nothing_unsafely() -> None:
    files = _sources()
    assert len(files) > 100  # the whole code base, not an empty glob
    found = [
        hit
        for path in files
        for hit in unsafe_loads(path.read_text(), str(path.relative_to(CHECKOUT)))
    ]
    assert found == []


def test_the_code_does_load_checkpoints_the_safe_way() -> None:
    """The check is not vacuous: the checkpoint loader is a torch.load it accepts."""
    source = (CHECKOUT / "ml" / "training" / "checkpoint.py").read_text()
    assert "torch.load(" in source and unsafe_loads(source) == []


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("import torch\ntorch.load(f)", "torch.load: pass weights_only=True"),
        ("import torch\ntorch.load(f, weights_only=False)", "weights_only=True"),
        ("import torch as t\nt.load(f, map_location='cpu')", "torch.load"),
        ("from torch import load\nload(f)", "torch.load"),
        ("import yaml\nyaml.load(s, Loader=yaml.Loader)", "yaml.load: use yaml.safe_load"),
        ("import yaml\nyaml.unsafe_load(s)", "yaml.unsafe_load"),
        ("from yaml import full_load\nfull_load(s)", "yaml.full_load"),
        ("import pickle\npickle.loads(b)", "pickle.loads"),
        ("from pickle import load as l\nl(f)", "pickle.load"),
        ("import pandas as pd\npd.read_pickle(p)", "pandas.read_pickle"),
        ("import numpy as np\nnp.load(p, allow_pickle=True)", "allow_pickle must stay False"),
    ],
)
def test_unsafe_loads_finds_each_unsafe_call(code: str, expected: str) -> None:
    found = unsafe_loads(code)
    assert len(found) == 1 and expected in found[0]


@pytest.mark.parametrize(
    "code",
    [
        "import torch\ntorch.load(f, map_location='cpu', weights_only=True)",
        "import yaml\nyaml.safe_load(s)",
        "import numpy as np\nnp.load(p, allow_pickle=False)",
        "import numpy as np\nnp.load(p)",
        "import json\njson.load(f)",
        "# torch.load(f) in a comment\n'''yaml.load(s) in a docstring'''",
    ],
)
def test_unsafe_loads_accepts_safe_calls(code: str) -> None:
    assert unsafe_loads(code) == []

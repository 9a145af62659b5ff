"""Parsing the DAG files is cheap: no torch/pandas/pyarrow, no database query, no socket."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"

PROBE = r"""
import importlib.util, json, socket, sqlite3, sys, time
import airflow.sdk  # the framework itself is allowed to do what it likes at import
import sqlalchemy.engine

calls = []
def _record(what):
    def fail(*a, **k):
        calls.append(what)
        raise RuntimeError(f"DAG file parsing used {what}")
    return fail

sqlite3.connect = _record("sqlite3.connect")
socket.socket.connect = _record("socket.connect")
socket.create_connection = _record("socket.create_connection")
sqlalchemy.engine.Engine.connect = _record("Engine.connect")

before = set(sys.modules)
seconds = {}
for name in %(files)r:
    start = time.perf_counter()
    spec = importlib.util.spec_from_file_location(name.removesuffix(".py"), %(dags)r + "/" + name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    seconds[name] = time.perf_counter() - start
heavy = sorted(m for m in set(sys.modules) - before
               if m.split(".")[0] in ("torch", "pandas", "pyarrow", "numpy", "sklearn"))
print(json.dumps({"calls": calls, "heavy": heavy, "seconds": seconds}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("dag_file", ["training_pipeline.py", "feature_pipeline.py"])
def test_dag_file_import_is_light(run_probe: Any, tmp_path: Path, dag_file: str) -> None:
    result = run_probe(PROBE % {"files": [dag_file], "dags": str(DAGS)}, tmp_path)
    assert result["heavy"] == []
    assert result["calls"] == []


@pytest.mark.slow
def test_import_probe_catches_heavy_imports_and_queries(run_probe: Any, tmp_path: Path) -> None:
    # The check itself must be able to fail: a DAG file that does both forbidden things.
    folder = tmp_path / "bad_dags"
    folder.mkdir()
    (folder / "bad.py").write_text(
        "import numpy\nimport sqlite3\ntry:\n    sqlite3.connect(':memory:')\n"
        "except RuntimeError:\n    pass\n"
    )
    result = run_probe(PROBE % {"files": ["bad.py"], "dags": str(folder)}, tmp_path)
    assert "numpy" in result["heavy"]
    assert result["calls"] == ["sqlite3.connect"]

"""The size limits and the test layout every contributor keeps (docs/development.md).

No file in ml/, dags/, scripts/ or plugins/ over 400 lines; dags/training_pipeline_tasks.py
(wiring only) at most 200; no function in ml/ over 80 lines; a test module
``tests/<area>/test_<module>.py`` for every ``ml/<area>/<module>.py``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZED_DIRS = ("ml", "dags", "scripts", "plugins")
MAX_FILE_LINES = 400
MAX_TASKS_LINES = 200
MAX_FUNCTION_LINES = 80


def _python_files(*dirs: str) -> Iterator[Path]:
    for d in dirs:
        yield from sorted((ROOT / d).rglob("*.py"))


def _line_count(text: str) -> int:
    return len(text.splitlines())


def long_functions(source: str, limit: int = MAX_FUNCTION_LINES) -> list[tuple[str, int]]:
    """``(name, lines)`` of every function or method in ``source`` longer than ``limit``
    lines (from its ``def`` to its last line)."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            lines = (node.end_lineno or node.lineno) - node.lineno + 1
            if lines > limit:
                out.append((node.name, lines))
    return out


def mirror_test(module: Path) -> Path:
    """``tests/<area>/test_<module>.py`` for ``ml/<area>/<module>.py`` (a private
    ``_module.py`` is tested by ``test_module.py``)."""
    rel = module.relative_to(ROOT / "ml")
    return ROOT / "tests" / rel.parent / f"test_{rel.stem.lstrip('_')}.py"


def test_no_file_over_the_line_limit() -> None:
    too_long = {
        str(p.relative_to(ROOT)): n
        for p in _python_files(*SIZED_DIRS)
        if (n := _line_count(p.read_text(encoding="utf-8"))) > MAX_FILE_LINES
    }
    assert too_long == {}, f"split these files (at most {MAX_FILE_LINES} lines each)"


def test_dag_tasks_module_stays_wiring() -> None:
    tasks = ROOT / "dags" / "training_pipeline_tasks.py"
    assert _line_count(tasks.read_text(encoding="utf-8")) <= MAX_TASKS_LINES


def test_no_function_in_ml_over_the_limit() -> None:
    too_long = {
        f"{p.relative_to(ROOT)}:{name}": n
        for p in _python_files("ml")
        for name, n in long_functions(p.read_text(encoding="utf-8"))
    }
    assert too_long == {}, f"split these functions (at most {MAX_FUNCTION_LINES} lines each)"


def test_long_functions_finds_long_functions_and_methods() -> None:
    body = [f"x{i} = {i}" for i in range(80)]  # 80 body lines + the def line = 81
    source = "\n".join(
        ["def short():", "    return 1", "", "def long():"]
        + [f"    {line}" for line in body]
        + ["", "class C:", "    def method(self):"]
        + [f"        {line}" for line in body]
    )
    assert long_functions(source) == [("long", 81), ("method", 81)]
    assert long_functions(source, limit=81) == []


def test_every_ml_module_has_its_test_module() -> None:
    missing = [
        f"{p.relative_to(ROOT)} -> {mirror_test(p).relative_to(ROOT)}"
        for p in _python_files("ml")
        if p.name not in ("__init__.py", "__main__.py") and not mirror_test(p).is_file()
    ]
    assert missing == []


def test_mirror_test_maps_areas_and_private_modules() -> None:
    assert mirror_test(ROOT / "ml" / "registry" / "_lock.py") == (
        ROOT / "tests" / "registry" / "test_lock.py"
    )
    assert mirror_test(ROOT / "ml" / "config.py") == ROOT / "tests" / "test_config.py"

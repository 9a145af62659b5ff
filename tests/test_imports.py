"""The layering rules: ml/ never imports Airflow or the CLI below it, and has no cycles."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ML = Path(__file__).resolve().parents[1] / "ml"


def _module_name(path: Path) -> str:
    rel = path.relative_to(ML.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports (at any depth in the file), absolute names."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return out


def _runtime_nodes(tree: ast.Module) -> list[ast.AST]:
    """Every node, less the bodies of ``if TYPE_CHECKING:`` (imports for the type checker)."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return [n for n in ast.walk(tree) if id(n) not in skipped]


def _graph(top_level_only: bool) -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in ML.rglob("*.py")}
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        nodes = tree.body if top_level_only else _runtime_nodes(tree)
        for node in nodes:
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from pkg import sub` depends on pkg.sub (a module), else on pkg itself.
                subs = [f"{node.module}.{a.name}" for a in node.names]
                targets = [t for t in subs if t in modules] or [node.module]
            for target in targets:
                # A module always imports its parent packages first: not a cycle.
                if target in modules and target != name and not name.startswith(target + "."):
                    graph[name].add(target)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_ml_never_imports_airflow() -> None:
    offenders = {
        _module_name(p): sorted(i for i in _imports(p) if i.split(".")[0] == "airflow")
        for p in ML.rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_only_cli_modules_import_the_cli() -> None:
    offenders = [
        _module_name(p)
        for p in ML.rglob("*.py")
        if "ml.cli" in _imports(p) and p.name not in ("cli.py", "__main__.py")
    ]
    assert offenders == []


def _cli_modules() -> dict[str, Path]:
    return {_module_name(p): p for p in ML.rglob("cli.py")}


def test_no_cli_module_imports_another_at_any_depth() -> None:
    """ml/cli.py is the tree; an area's cli.py never imports another area's (nor ml.cli),
    not even inside a function."""
    clis = _cli_modules()
    graph = _graph(top_level_only=False)
    offenders = {
        name: sorted(t for t in graph.get(name, ()) if t in clis)
        for name in clis
        if name != "ml.cli"
    }
    assert {k: v for k, v in offenders.items() if v} == {}
    assert set(clis) - {"ml.cli"} <= graph["ml.cli"]  # the tree registers every area


def test_no_import_cycles_at_module_level() -> None:
    assert _cycle(_graph(top_level_only=True)) is None


#: Imports inside a function that close a cycle on purpose, with the reason.
DELIBERATE_LAZY = {
    ("ml.registry.model_registry", "ml.registry.objectstore_api"): "the spec's "
    "ModelRegistry(base_dir='s3://...') returns its object-store subclass from __new__",
}


def test_no_import_cycles_at_any_depth() -> None:
    """Not even through an import inside a function (TYPE_CHECKING imports aside), but for
    the deliberate ones listed with their reason."""
    graph = _graph(top_level_only=False)
    for src, dst in DELIBERATE_LAZY:
        assert dst in graph[src], f"{src} -> {dst} is gone: remove it from DELIBERATE_LAZY"
        graph[src].discard(dst)
    assert _cycle(graph) is None


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]

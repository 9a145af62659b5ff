"""The docs stay true to the tree: every file and module they name exists, the module map
covers every package, and each doc names the code it describes."""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TOP = ("ml", "dags", "plugins", "scripts", "testkit", "tests", "benchmarks", "config", "deploy")
#: ``ml/serving/service/app.py``, ``dags/``, ``config/model_config.yaml``...
PATH_RE = re.compile(r"(?<![\w/.$-])((?:{})/[\w./-]*)(?![\w./<*{{-])".format("|".join(TOP)))
#: Outputs the docs name (gitignored): written by the commands, not in the tree.
OUTPUTS = ("benchmarks/results/",)
#: Files the docs tell a user to create (examples, not part of the tree).
EXAMPLES = frozenset({"config/mine.yaml", "config/criteo.yaml", "ml/models/widedeep.py"})
#: ``ml.serving.service.app``, ``ml.errors.UserError``...
MODULE_RE = re.compile(r"(?<![\w./-])(ml(?:\.\w+)+)")


def _clean(ref: str) -> str:
    return ref.rstrip(".,;:)`'\"")


def _paths_named(text: str) -> set[str]:
    out = set()
    for ref in PATH_RE.findall(text):
        ref = _clean(ref)
        if any(c in ref for c in "*<>{}") or ref.endswith("/..."):
            continue  # a pattern, not a file
        out.add(ref)
    return out


@functools.cache
def _top_names(module_file: Path) -> frozenset[str]:
    tree = ast.parse(module_file.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
    return frozenset(names)


def _module_exists(dotted: str) -> bool:
    """``ml.a.b`` is a module, or ``ml.a.b.Name`` a top-level name of module ``ml.a.b``."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        base = ROOT.joinpath(*parts[:cut])
        file = (
            base.with_suffix(".py")
            if not (base / "__init__.py").is_file()
            else base / "__init__.py"
        )
        if file.is_file():
            rest = parts[cut:]
            return not rest or rest[0] in _top_names(file)
    return False


def test_every_path_a_doc_names_exists() -> None:
    missing = [
        f"{doc.relative_to(ROOT)}: {ref}"
        for doc in DOCS
        for ref in sorted(_paths_named(doc.read_text(encoding="utf-8")))
        if not (ROOT / ref).exists() and not ref.startswith(OUTPUTS) and ref not in EXAMPLES
    ]
    assert missing == []


def test_every_module_a_doc_names_exists() -> None:
    missing = [
        f"{doc.relative_to(ROOT)}: {ref}"
        for doc in DOCS
        for ref in sorted({_clean(r) for r in MODULE_RE.findall(doc.read_text(encoding="utf-8"))})
        if not _module_exists(ref)
    ]
    assert missing == []


def test_the_module_map_covers_every_package() -> None:
    text = (ROOT / "docs" / "development.md").read_text(encoding="utf-8")
    packages = sorted(
        str(p.parent.relative_to(ROOT / "ml")) for p in (ROOT / "ml").rglob("__init__.py")
    )
    unnamed = [p for p in packages if p != "." and f"{p.rsplit('/', 1)[-1]}/" not in text]
    assert unnamed == [], "docs/development.md's layout block should name these packages"


def test_each_doc_names_the_code_it_describes() -> None:
    silent = [
        str(doc.relative_to(ROOT))
        for doc in DOCS
        if not any(
            ref.startswith(("ml/", "dags/", "plugins/", "scripts/"))
            for ref in _paths_named(doc.read_text(encoding="utf-8"))
        )
    ]
    assert silent == []


def test_the_checks_find_a_missing_file_and_module() -> None:
    assert _paths_named("see ml/serving/nope.py and `ml/<area>/cli.py`") == {"ml/serving/nope.py"}
    assert not _module_exists("ml.serving.nope")
    assert _module_exists("ml.errors.UserError") and not _module_exists("ml.errors.Nope")

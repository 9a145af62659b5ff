"""The suite's own xdist scheduling (testkit/xdist.py): one module per unit of work, the
service tests together on gw0."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from testkit.xdist import SERVICES_UNIT, unit_of

CHECKOUT = Path(__file__).resolve().parent.parent
CONFTEST = f"""
import sys
sys.path.insert(0, {str(CHECKOUT)!r})
import pytest


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    from testkit.xdist import make_scheduler

    return make_scheduler(config, log)
"""


def test_a_unit_is_a_module_and_every_service_test_is_one_unit() -> None:
    assert unit_of("tests/services/test_e2e.py::test_run[sqlite]") == SERVICES_UNIT
    assert unit_of("tests/services/test_ui.py::test_page") == SERVICES_UNIT
    assert unit_of("tests/registry/test_gc.py::TestGc::test_keep") == "tests/registry/test_gc.py"


def test_the_service_tests_run_on_gw0_and_modules_stay_whole(tmp_path: Path) -> None:
    tests = tmp_path / "tests"
    (tests / "services").mkdir(parents=True)
    (tmp_path / "pyproject.toml").write_text('[tool.pytest.ini_options]\ntestpaths = ["tests"]\n')
    (tests / "conftest.py").write_text(CONFTEST)
    body = "import os\n" + "".join(
        f"def test_{i}():\n    open({str(tmp_path / 'ran')!r}, 'a').write("
        "__name__ + ' ' + os.environ['PYTEST_XDIST_WORKER'] + '\\n')\n"
        for i in range(3)
    )
    for name in ("services/test_s1", "services/test_s2", *(f"test_m{m}" for m in range(6))):
        (tests / f"{name}.py").write_text(body)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2",
         "--dist", "loadscope", "--no-loadscope-reorder"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ran: dict[str, set[str]] = {}
    for line in (tmp_path / "ran").read_text().splitlines():
        module, worker = line.split()
        ran.setdefault(module.rsplit(".", 1)[-1], set()).add(worker)
    assert len(ran) == 8 and ran["test_s1"] == ran["test_s2"] == {"gw0"}, ran
    assert all(len(workers) == 1 for workers in ran.values()), ran  # modules stay whole

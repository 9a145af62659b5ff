"""Fixtures shared by every test area.

- ``tiny_features_dir`` (session): generated default-schema features, 3000 rows, seed 7,
  in a temp directory. Read-only by convention: copy it before changing anything.
- ``project_home`` (function): a temp base directory holding a copy of ``config/``, with
  ``CTR_PIPELINE_HOME`` pointing at it for the duration of the test.
- ``s3_server`` (session) and ``s3_env`` (function): a real S3 server on 127.0.0.1 and
  a fresh ``s3://`` prefix with the AWS_* environment pointing at it (testkit/s3.py).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

CHECKOUT = Path(__file__).resolve().parent.parent
# testkit/ (support code shared with the benchmarks) lives at the checkout root.
if str(CHECKOUT) not in sys.path:
    sys.path.insert(0, str(CHECKOUT))
from testkit.s3 import s3_env, s3_server  # noqa: E402,F401  (fixtures)


# Under pytest-xdist (`make test` runs `-n auto --dist loadscope --no-loadscope-reorder`):
# one module per unit of work, the service tests as one unit on worker gw0, the only
# worker that starts the shared Airflow stacks (testkit/xdist.py).
@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    from testkit.xdist import make_scheduler

    return make_scheduler(config, log)


TINY_ROWS = 3000
TINY_SEED = 7


@pytest.fixture(scope="session")
def tiny_features_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ml.data.generate.writer import generate_features

    out = tmp_path_factory.mktemp("tiny_features") / "features"
    generate_features(out, rows=TINY_ROWS, seed=TINY_SEED)
    return out


@pytest.fixture
def project_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copytree(CHECKOUT / "config", home / "config")
    monkeypatch.setenv("CTR_PIPELINE_HOME", str(home))
    return home

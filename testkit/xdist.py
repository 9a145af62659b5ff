"""A pytest-xdist scheduler: one module per unit of work, the service tests to one worker.

``make test`` runs ``pytest -n auto --dist loadscope --no-loadscope-reorder`` and
``pytest_xdist_make_scheduler`` (tests/conftest.py) returns this scheduler for it:

- every test module is one unit of work (its module- and session-scoped fixtures are
  then built once), handed to whichever worker is free, in the collection's order;
- the service tests (tests/services/) are one unit that always goes to worker ``gw0``,
  as its first: they share Airflow stacks that take a minute to start, and gw0 alone
  starts them, right after collection (tests/services/conftest.py).

The unit is derived from the test's node id here, not from ``xdist_group`` marks: with
pytest 9 (its node ids are no longer ``_nodeid``) xdist 3.8's ``loadgroup`` cannot add
the group to the node id, and every test became a unit of its own.
"""

from __future__ import annotations

from typing import Any

from xdist.scheduler.loadscope import LoadScopeScheduling

SERVICES_DIR = "tests/services/"
SERVICES_UNIT = "services"
SERVICES_WORKER = "gw0"


def unit_of(nodeid: str) -> str:
    """``services`` for a test under tests/services/, else the test's module path."""
    path = nodeid.split("::", 1)[0]
    return SERVICES_UNIT if path.startswith(SERVICES_DIR) else path


class ServicesFirstScheduling(LoadScopeScheduling):  # type: ignore[misc]
    def _split_scope(self, nodeid: str) -> str:
        return unit_of(nodeid)

    def _assign_work_unit(self, node: Any) -> None:
        if SERVICES_UNIT in self.workqueue:
            if node.gateway.id == SERVICES_WORKER:
                self.workqueue.move_to_end(SERVICES_UNIT, last=False)
            elif len(self.workqueue) > 1 and next(iter(self.workqueue)) == SERVICES_UNIT:
                # Keep it for its worker. (Were it the only work left while that worker
                # is gone, another takes it and starts the stacks when first needed.)
                self.workqueue.move_to_end(SERVICES_UNIT)
        super()._assign_work_unit(node)


def make_scheduler(config: Any, log: Any) -> ServicesFirstScheduling | None:
    """``pytest_xdist_make_scheduler``'s answer: this scheduler for ``--dist loadscope``."""
    if config.getoption("dist") != "loadscope":
        return None
    return ServicesFirstScheduling(config, log)

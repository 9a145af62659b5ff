"""A pytest-xdist scheduler that gives the service tests to one named worker.

The service tests share Airflow stacks that take a minute to start and are started by
the worker that runs them, right after collection (tests/services/conftest.py). So
that exactly one worker starts them, their group always goes to the same worker
(``gw0``), as its first unit of work. Every other test module is a group of its own
(its module- and session-scoped fixtures are then built once) and goes to whichever
worker is free, in the collection's order (``--dist loadgroup --no-loadscope-reorder``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from xdist.scheduler.loadgroup import LoadGroupScheduling

SERVICES_GROUP = "services"
SERVICES_WORKER = "gw0"


def xdist_group_of(item: pytest.Item, checkout: Path) -> str:
    """``services`` for a test under tests/services/, else the test's module path."""
    path = Path(str(item.path)).resolve().relative_to(checkout).as_posix()
    return SERVICES_GROUP if path.startswith("tests/services/") else path


class ServicesFirstScheduling(LoadGroupScheduling):  # type: ignore[misc]
    def _assign_work_unit(self, node: Any) -> None:
        if SERVICES_GROUP in self.workqueue:
            if node.gateway.id == SERVICES_WORKER:
                self.workqueue.move_to_end(SERVICES_GROUP, last=False)
            elif len(self.workqueue) > 1 and next(iter(self.workqueue)) == SERVICES_GROUP:
                # Keep it for its worker. (Were it the only work left while that worker
                # is gone, another takes it and starts the stacks when first needed.)
                self.workqueue.move_to_end(SERVICES_GROUP)
        super()._assign_work_unit(node)

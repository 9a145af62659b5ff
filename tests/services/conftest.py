"""Shared Airflow deployments for the service tests: one start per profile per session.

- ``sqlite_stack``: the ``make airflow`` profile (SQLite + LocalExecutor), started with
  SIGINT ignored as ``nohup`` or ``cmd &`` in a script would; it is stopped with Ctrl-C
  right after its last user, and that stop must be clean: exit 0, "All services
  stopped.", no process of it left, no pid file.
- ``pg_stack``: PostgreSQL + Celery (two workers: the default queue and the train queue)
  with its own databases, Redis DB and queues, dropped afterwards.
- ``pg_crash``: the worker-crash trial on ``pg_stack``, run in a background thread once
  the e2e run is done, so that its minutes of waiting (heartbeat timeout, retry delay)
  overlap the other tests.

Stacks are built by ``testkit.services`` (shared with ``benchmarks/bench_dag.py``).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from testkit import services as kit
from testkit.worker_crash import CrashResult, worker_crash_trial

_SHARED: dict[str, contextlib.ExitStack] = {}
_LAST_USER: dict[str, str] = {}
SHARED_FIXTURES = ("sqlite_stack", "pg_stack")


def _stop_cleanly(stack: kit.Stack) -> None:
    code, left = stack.stop()
    assert not left, f"processes left after Ctrl-C: {[p.pid for p in left]}"
    assert code == 0, stack.text[-3000:]
    assert "All services stopped." in stack.text
    assert not stack.services.pid_file.exists()


def _close(name: str) -> None:
    exits = _SHARED.pop(name, None)
    if exits is not None:
        exits.close()


@pytest.fixture(scope="session")
def sqlite_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[kit.Stack]:
    home = tmp_path_factory.mktemp("sqlite-stack")
    kit.prepare_home(home)
    before = kit.snapshot(kit.outside_roots())
    with contextlib.ExitStack() as exits:
        _SHARED["sqlite_stack"] = exits
        stack = kit.start_stack(home, "sqlite-local", env=kit.stack_env(home), ignore_sigint=True)
        exits.callback(_stop_cleanly, stack)
        stack.info["outside_before"] = before
        yield stack
        _close("sqlite_stack")


@pytest.fixture(scope="session")
def sqlite_run(sqlite_stack: kit.Stack) -> str:
    """One successful ``training_pipeline`` run on the SQLite stack (its run id)."""
    sqlite_stack.info["versions_before"] = sqlite_stack.registered_versions()
    start = time.monotonic()
    run_id = kit.run_pipeline(sqlite_stack, kit.GOOD_CONF)
    sqlite_stack.info["run_seconds"] = time.monotonic() - start
    return run_id


@pytest.fixture(scope="session")
def pg_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[kit.Stack]:
    kit.require_backing_services(("PostgreSQL", "127.0.0.1", 5432), ("Redis", "127.0.0.1", 6379))
    home = tmp_path_factory.mktemp("pg-stack")
    kit.prepare_home(home)
    env = kit.postgres_env(home, kit.new_token())
    queues = [env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"], env["CTR_TRAIN_QUEUE"]]
    with contextlib.ExitStack() as exits:
        _SHARED["pg_stack"] = exits
        if os.environ.get("CTR_KEEP_TEST_DB") != "1":
            exits.callback(kit.drop_postgres_resources, env)
        start = time.monotonic()
        stack = kit.start_stack(
            home, "postgres-celery", env=env, worker_queues=queues, triggerer=False
        )
        exits.callback(_stop_cleanly, stack)
        stack.info.update(env=env, queues=queues, healthy_s=time.monotonic() - start)
        yield stack
        _close("pg_stack")


@pytest.fixture(scope="session")
def pg_run(pg_stack: kit.Stack) -> str:
    """One successful run on the PostgreSQL + Celery stack (its run id)."""
    return kit.run_pipeline(pg_stack, kit.GOOD_CONF)


class Background:
    """A slow check run in a thread: ``start()`` once, ``result()`` joins it."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self._fn = fn
        self._thread: threading.Thread | None = None
        self._out: dict[str, Any] = {}

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()

    def _run(self) -> None:
        try:
            self._out["result"] = self._fn()
        except BaseException as exc:  # re-raised in result()
            self._out["error"] = exc

    def result(self, timeout: float) -> Any:
        self.start()
        assert self._thread is not None
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"still running after {timeout} s"
        if "error" in self._out:
            raise self._out["error"]
        return self._out["result"]


@pytest.fixture(scope="session")
def pg_crash(pg_stack: kit.Stack) -> Background:
    """The worker-crash trial on ``pg_stack`` (``.start()`` it, ``.result()`` to wait)."""

    def trial() -> CrashResult:
        rest = kit.AirflowRest(pg_stack.services.base_url, pg_stack.services.api_token())
        try:
            return worker_crash_trial(pg_stack, rest=rest)
        finally:
            rest.close()

    return Background(trial)


@pytest.hookimpl(trylast=True)  # after -m/-k deselection
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for name in SHARED_FIXTURES:
        users = [i.nodeid for i in items if name in getattr(i, "fixturenames", ())]
        if users:
            _LAST_USER[name] = users[-1]


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    # Stop a shared stack right after the last test that needs it, rather than leave an
    # idle scheduler running through the rest of the suite.
    for name in SHARED_FIXTURES:
        if item.nodeid == _LAST_USER.get(name):
            _close(name)

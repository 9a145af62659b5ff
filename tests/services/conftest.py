"""Shared Airflow deployments for the service tests: one start per profile per session.

- ``sqlite_stack``: the ``make airflow`` profile (SQLite + LocalExecutor), started with
  SIGINT ignored as ``nohup`` or ``cmd &`` in a script would; it is stopped with Ctrl-C
  right after its last user, and that stop must be clean: exit 0, "All services
  stopped.", no process of it left, no pid file.
- ``pg_stack``: PostgreSQL + Celery (two workers: the default queue and the train queue)
  with its own databases, Redis DB and queues, dropped afterwards.
- ``pg_crash``: the worker-crash trial on ``pg_stack``, and ``pg_make_run``: ``make run
  --profile postgres-celery`` on a fresh database of its own; both run in background
  threads once the e2e run is done, so that the trial's minutes of waiting (heartbeat
  timeout, retry delay) overlap the other tests.
- ``hosts_trial``: PostgreSQL + Celery with two workers that share no directory, and
  the data, runs and registry in a bucket of its own (``testkit.celery_hosts``). It
  starts once the stacks launched before it are up, and runs its whole trial (a run
  whose training worker hangs and is killed, then serving) in its launch thread, so
  its minutes of waiting overlap the other tests too.

Every stack the selected tests need is launched right after collection, each in a
thread of its own, so that their start-ups overlap each other and the tests that run
before tests/services. Stacks are built by
``testkit.services`` (shared with ``benchmarks/bench_dag.py``).
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
from testkit.xdist import SERVICES_WORKER

SHARED_FIXTURES = ("sqlite_stack", "pg_stack", "hosts_trial")
_NEEDED: list[str] = []
_LAST_USER: dict[str, str] = {}
_SHARED: dict[str, contextlib.ExitStack] = {}


class Background:
    """Work run in a thread: ``start()`` once, ``result()`` joins it (re-raising)."""

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

    def wait(self, timeout: float) -> None:
        """Join it (whatever its outcome) if it was started."""
        if self._thread is not None:
            self._thread.join(timeout)

    def result(self, timeout: float) -> Any:
        self.start()
        assert self._thread is not None
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"still running after {timeout} s"
        if "error" in self._out:
            raise self._out["error"]
        return self._out["result"]


def _stop_cleanly(stack: kit.Stack) -> None:
    code, left = stack.stop()
    assert not left, f"processes left after Ctrl-C: {[p.pid for p in left]}"
    assert code == 0, stack.text[-3000:]
    assert "All services stopped." in stack.text
    assert not stack.services.pid_file.exists()


def _launch_sqlite(factory: pytest.TempPathFactory, exits: contextlib.ExitStack) -> Background:
    home = factory.mktemp("sqlite-stack")
    before = kit.snapshot(kit.outside_roots())

    def start() -> kit.Stack:
        kit.prepare_home(home)
        # The triggerer serves deploy_model's wait_for_evidence (test_deploy_loop.py).
        stack = kit.start_stack(home, "sqlite-local", env=kit.stack_env(home), ignore_sigint=True)
        exits.callback(_stop_cleanly, stack)
        stack.info["outside_before"] = before
        return stack

    return Background(start)


def _launch_postgres(factory: pytest.TempPathFactory, exits: contextlib.ExitStack) -> Background:
    home = factory.mktemp("pg-stack")
    env = kit.postgres_env(home, kit.new_token())
    # One worker on the default queue and two on the train queue, which takes every
    # training task: train_model (the worker-crash trial kills whichever worker runs it)
    # and the tuning test's two mapped tune_workers (they run at once, one on each).
    default, train = env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"], env["CTR_TRAIN_QUEUE"]
    queues = [default, train, train]
    if os.environ.get("CTR_KEEP_TEST_DB") != "1":
        exits.callback(kit.drop_postgres_resources, env)

    def start() -> kit.Stack:
        kit.prepare_home(home)
        start = time.monotonic()
        # With its triggerer: deploy_model's wait_for_evidence (test_deploy_loop.py).
        stack = kit.start_stack(home, "postgres-celery", env=env, worker_queues=queues)
        exits.callback(_stop_cleanly, stack)
        stack.info.update(env=env, queues=queues, healthy_s=time.monotonic() - start)
        return stack

    return Background(start)


def _launch_hosts(factory: pytest.TempPathFactory, exits: contextlib.ExitStack) -> Background:
    from testkit import celery_hosts as hosts
    from testkit.s3 import S3Server

    root = factory.mktemp("hosts-stack")
    # Started after the stacks launched before it are up: three start-ups at once on a
    # small machine would slow each other down.
    before = list(_LAUNCHES.values())

    def trial() -> hosts.Result:
        for launch in before:
            launch.wait(timeout=900)
        s3 = S3Server(root / "s3")
        exits.callback(s3.stop)
        s3.start()
        deployment = hosts.prepare(root, s3, kit.new_token())
        if os.environ.get("CTR_KEEP_TEST_DB") != "1":
            exits.callback(kit.drop_postgres_resources, deployment.env)
        stack = hosts.start(deployment)
        exits.callback(_stop_cleanly, stack)
        return hosts.crash_trial(deployment, stack)

    return Background(trial)


_LAUNCHERS = {
    "sqlite_stack": _launch_sqlite,
    "pg_stack": _launch_postgres,
    "hosts_trial": _launch_hosts,
}
_LAUNCHES: dict[str, Background] = {}


def _launch_all(factory: pytest.TempPathFactory) -> None:
    """Start every shared stack the selected tests need (once), in parallel."""
    for name in _NEEDED:
        if name in _LAUNCHES:
            continue
        if name in ("pg_stack", "hosts_trial") and not (
            kit.reachable("127.0.0.1", 5432) and kit.reachable("127.0.0.1", 6379)
        ):
            continue  # the fixture skips (or fails under CI) with the reason
        _SHARED[name] = contextlib.ExitStack()
        _LAUNCHES[name] = _LAUNCHERS[name](factory, _SHARED[name])
        _LAUNCHES[name].start()


def _shared_stack(name: str, factory: pytest.TempPathFactory) -> Iterator[kit.Stack]:
    _launch_all(factory)
    yield _LAUNCHES[name].result(timeout=900)
    _close(name)


def _close(name: str) -> None:
    exits = _SHARED.pop(name, None)
    if exits is not None:
        exits.close()


@pytest.fixture(scope="session", name="kit")
def kit_fixture() -> Any:
    """``testkit.services`` (constants and helpers) for tests that take it as a fixture."""
    return kit


@pytest.fixture(scope="session")
def sqlite_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[kit.Stack]:
    yield from _shared_stack("sqlite_stack", tmp_path_factory)


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
    yield from _shared_stack("pg_stack", tmp_path_factory)


@pytest.fixture(scope="session")
def hosts_trial(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The two-hosts trial's :class:`testkit.celery_hosts.Result` (its stack still up)."""
    kit.require_backing_services(("PostgreSQL", "127.0.0.1", 5432), ("Redis", "127.0.0.1", 6379))
    yield from _shared_stack("hosts_trial", tmp_path_factory)


@pytest.fixture(scope="session")
def pg_run(pg_stack: kit.Stack) -> str:
    """One successful run on the PostgreSQL + Celery stack (its run id)."""
    return kit.run_pipeline(pg_stack, kit.GOOD_CONF)


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


@pytest.fixture(scope="session")
def pg_make_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Background]:
    """``make run --profile postgres-celery`` on a database of its own (in a thread)."""
    kit.require_backing_services(("PostgreSQL", "127.0.0.1", 5432))
    home = tmp_path_factory.mktemp("pg-make-run")
    env = kit.postgres_env(home, kit.new_token())

    def make_run() -> dict[str, Any]:
        kit.prepare_home(home)
        start = time.monotonic()
        proc, data = kit.make_run(home, env, kit.GOOD_CONF, profile="postgres-celery")
        return {"home": home, "proc": proc, "data": data, "seconds": time.monotonic() - start}

    job = Background(make_run)
    yield job
    with contextlib.suppress(BaseException):
        job.result(timeout=900)
    if os.environ.get("CTR_KEEP_TEST_DB") != "1":
        kit.drop_postgres_resources(env)


@pytest.hookimpl(trylast=True)  # after -m/-k deselection
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for name in SHARED_FIXTURES:
        users = [i.nodeid for i in items if name in getattr(i, "fixturenames", ())]
        if users:
            _NEEDED.append(name)
            _LAST_USER[name] = users[-1]


def pytest_collection_finish(session: pytest.Session) -> None:
    # Launch the stacks as soon as the selected tests are known: their minutes of
    # start-up (database migration, a dozen Airflow processes importing) then overlap
    # the tests that run before tests/services instead of adding to the suite's time.
    # Under pytest-xdist only the worker that runs the service tests starts them here
    # (tests/conftest.py gives that group to gw0); another worker would start them when
    # its first test asks for one.
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker not in (None, SERVICES_WORKER):
        return
    if _NEEDED and not session.config.option.collectonly:
        _launch_all(session.config._tmp_path_factory)  # type: ignore[attr-defined]


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    # Stop a shared stack right after the last test that needs it, rather than leave an
    # idle scheduler running through the rest of the suite.
    for name in SHARED_FIXTURES:
        if item.nodeid == _LAST_USER.get(name):
            _close(name)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # A stack launched for tests that never got to use it (-x, an error): stop it too.
    for name, launch in list(_LAUNCHES.items()):
        if name in _SHARED:
            with contextlib.suppress(BaseException):
                launch.result(timeout=900)
            with contextlib.suppress(BaseException):
                _close(name)

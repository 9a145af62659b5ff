"""scripts/services_supervisor.py: restarts with backoff and a limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.services_config import ServicesError
from scripts.services_processes import Service
from scripts.services_supervisor import RestartPolicy, Supervisor


class FakeProc:
    def __init__(self, pid: int, code: int | None = None) -> None:
        self.pid = pid
        self.code = code

    def poll(self) -> int | None:
        return self.code


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _setup(policy: RestartPolicy) -> tuple[Service, Supervisor, list[str], Clock]:
    svc = Service("celery-worker-1", ["x"], log_path=Path("/logs/celery-worker-1.log"))
    svc.proc = FakeProc(100)  # type: ignore[assignment]
    pids = iter(range(101, 200))

    def restart(s: Service) -> None:
        s.proc = FakeProc(next(pids))  # type: ignore[assignment]

    log: list[str] = []
    clock = Clock()
    return svc, Supervisor(restart, policy, log.append, clock), log, clock


def test_exited_service_is_restarted_after_an_exponential_backoff() -> None:
    svc, sup, log, clock = _setup(RestartPolicy(max_restarts=5, window_s=600))
    svc.proc.code = -9  # type: ignore[union-attr]
    sup.check([svc])
    assert log == [
        "celery-worker-1: pid 100 exited (killed by SIGKILL); restarting in 1 s "
        "(restart 1 of at most 5 within 600 s; log /logs/celery-worker-1.log)"
    ]
    assert sup.pending() == {"celery-worker-1": 1.0}
    clock.now += 0.5
    sup.check([svc])
    assert svc.pid == 100  # not yet due
    clock.now += 0.5
    sup.check([svc])
    assert (svc.pid, svc.restarts, log[-1]) == (101, 1, "celery-worker-1: restarted (pid 101)")
    # It dies again at once: the next delay doubles, then doubles again.
    delays = []
    for _ in range(2):
        svc.proc.code = 1  # type: ignore[union-attr]
        sup.check([svc])
        delays.append(sup.pending()["celery-worker-1"])
        clock.now += delays[-1]
        sup.check([svc])
    assert delays == [2.0, 4.0]
    assert svc.restarts == 3


def test_a_service_that_keeps_dying_is_given_up_on() -> None:
    svc, sup, log, clock = _setup(RestartPolicy(max_restarts=2, window_s=60, max_delay_s=1))
    for _ in range(2):
        svc.proc.code = 1  # type: ignore[union-attr]
        sup.check([svc])
        clock.now += 1
        sup.check([svc])
    svc.proc.code = 1  # type: ignore[union-attr]
    with pytest.raises(ServicesError, match=r"celery-worker-1 exited \(exit code 1\) 3 times"):
        sup.check([svc])
    assert log[-1] == "celery-worker-1: exited (exit code 1) again; giving up"


def test_restarts_older_than_the_window_are_forgotten() -> None:
    svc, sup, _, clock = _setup(RestartPolicy(max_restarts=1, window_s=60))
    svc.proc.code = 1  # type: ignore[union-attr]
    sup.check([svc])
    clock.now += 1
    sup.check([svc])
    clock.now += 120  # ran fine for two minutes
    svc.proc.code = 1  # type: ignore[union-attr]
    sup.check([svc])  # no error: the earlier restart is outside the window
    assert sup.pending() == {"celery-worker-1": 1.0}


def test_policy_from_env_reads_the_knobs_and_rejects_garbage() -> None:
    policy = RestartPolicy.from_env({"CTR_RESTART_LIMIT": "3", "CTR_RESTART_BACKOFF_MAX_S": "8"})
    assert (policy.max_restarts, policy.max_delay_s, policy.window_s) == (3, 8.0, 600.0)
    assert [policy.delay(n) for n in (1, 2, 3, 4, 5)] == [1.0, 2.0, 4.0, 8.0, 8.0]
    with pytest.raises(ServicesError, match="CTR_RESTART_"):
        RestartPolicy.from_env({"CTR_RESTART_LIMIT": "many"})

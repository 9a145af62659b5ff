"""Restart a service that exits, with exponential backoff and a limit.

A crashed Celery worker, scheduler, dag-processor, triggerer (or API server) is started
again after 1 s, then 2, 4, 8, ... (at most ``max_delay_s``); a service that exits more
than ``max_restarts`` times within ``window_s`` is given up on, and ``make airflow`` then
stops the whole deployment with the tail of that service's log. Every exit and restart is
logged. The knobs (environment, or the profile file): ``CTR_RESTART_LIMIT`` (5),
``CTR_RESTART_WINDOW_S`` (600), ``CTR_RESTART_BACKOFF_S`` (1), ``CTR_RESTART_BACKOFF_MAX_S``
(60).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from scripts.services_config import ServicesError
from scripts.services_processes import Service, describe_exit


@dataclass(frozen=True)
class RestartPolicy:
    """How often and how soon an exited service is started again."""

    max_restarts: int = 5
    window_s: float = 600.0
    initial_delay_s: float = 1.0
    max_delay_s: float = 60.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before restart number ``attempt`` (1-based) within the window."""
        return float(min(self.max_delay_s, self.initial_delay_s * 2 ** (attempt - 1)))

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RestartPolicy:
        """The policy with the ``CTR_RESTART_*`` overrides found in ``env``."""
        try:
            return cls(
                max_restarts=int(env.get("CTR_RESTART_LIMIT", cls.max_restarts)),
                window_s=float(env.get("CTR_RESTART_WINDOW_S", cls.window_s)),
                initial_delay_s=float(env.get("CTR_RESTART_BACKOFF_S", cls.initial_delay_s)),
                max_delay_s=float(env.get("CTR_RESTART_BACKOFF_MAX_S", cls.max_delay_s)),
            )
        except ValueError as exc:
            raise ServicesError(f"a CTR_RESTART_* setting is not a number: {exc}") from None


class Supervisor:
    """Watches services and restarts the ones that exit.

    Args:
        restart: Starts a service again (in place: the same ``Service`` object).
        policy: Backoff and limit.
        log: Receives one line per exit, restart and give-up.
        clock: Monotonic seconds (tests pass a fake one).
    """

    def __init__(
        self,
        restart: Callable[[Service], None],
        policy: RestartPolicy,
        log: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._restart = restart
        self.policy = policy
        self._log = log
        self._clock = clock
        self._history: dict[str, list[float]] = {}
        self._due: dict[str, float] = {}

    def pending(self) -> dict[str, float]:
        """Services waiting for their restart: name -> seconds until it."""
        now = self._clock()
        return {name: max(0.0, due - now) for name, due in self._due.items()}

    def check(self, services: Sequence[Service]) -> None:
        """Notice exits and perform the restarts that are due.

        Raises:
            ServicesError: A service exited more often than the policy allows; the message
                names it, how it ended and its log.
        """
        now = self._clock()
        for svc in services:
            due = self._due.get(svc.name)
            if due is not None:
                if now >= due:
                    del self._due[svc.name]
                    self._restart(svc)
                    svc.restarts += 1
                    self._log(f"{svc.name}: restarted (pid {svc.pid})")
                continue
            code = svc.exit_code()
            if code is not None:
                self._schedule(svc, code, now)

    def _schedule(self, svc: Service, code: int, now: float) -> None:
        policy = self.policy
        recent = [t for t in self._history.get(svc.name, []) if now - t < policy.window_s]
        how = describe_exit(code)
        if len(recent) >= policy.max_restarts:
            self._log(f"{svc.name}: exited ({how}) again; giving up")
            raise ServicesError(
                f"{svc.name} exited ({how}) {len(recent) + 1} times within "
                f"{policy.window_s:g} s (limit CTR_RESTART_LIMIT={policy.max_restarts}); "
                f"not restarting it. See {svc.log_path}"
            )
        recent.append(now)
        self._history[svc.name] = recent
        delay = policy.delay(len(recent))
        self._due[svc.name] = now + delay
        self._log(
            f"{svc.name}: pid {svc.pid} exited ({how}); restarting in {delay:g} s "
            f"(restart {len(recent)} of at most {policy.max_restarts} within "
            f"{policy.window_s:g} s; log {svc.log_path})"
        )

"""Following the registry's canary setting: a share of users sent to a version, no restart.

The registry holds ``production/<name>/canary.json`` (``ctr-pipeline registry canary``,
see :mod:`ml.registry.canary`); the service only reads it. :class:`CanaryFollower` is
polled by the :class:`~ml.serving.service.models.CurrentWatcher` thread after each check
of ``current``. When the setting names a new version, that version is loaded and
verified *beside* the serving models and only then one attribute is swapped
(:attr:`CanaryFollower.active`), like a hot reload of ``current``; a new traffic share
with the same version swaps at once. When the setting is gone, :attr:`active` becomes
None and every user goes to the control model. A version that fails to load is refused,
logged and retried every ``retry_s`` seconds; the previous state keeps serving.

Routing is the A/B split of :mod:`~ml.serving.service.settings` (a sticky hash of the
request key), with the salt ``"<model>:<version>"``: the same users land on a canary of
one version whatever its share, and a larger share only adds users. A candidate pinned
on the command line (``--candidate``, ``--ab``) disables the follower.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ml.errors import CtrPipelineError
from ml.serving.service.models import LoadedModel, load_pinned

log = logging.getLogger("ml.serving")


@dataclass(frozen=True)
class ActiveCanary:
    """The canary a request is routed with (read once per request)."""

    model: LoadedModel
    traffic: float
    salt: str


class CanaryFollower:
    """Reads the canary setting on each :meth:`poll`; swaps :attr:`active` when it moves."""

    def __init__(
        self,
        registry: Any,
        name: str,
        *,
        retry_s: float = 10.0,
        on_change: Callable[[ActiveCanary | None], None] | None = None,
    ) -> None:
        self.registry = registry
        self.name = name
        self.retry_s = retry_s
        self.on_change = on_change or (lambda active: None)
        self.active: ActiveCanary | None = None
        self.last_error: str | None = None
        self._refused: dict[str, float] = {}

    def poll(self) -> bool:
        """Read the setting once; load and swap when it changed. True when swapped."""
        try:
            setting = self.registry.get_canary(self.name)
        except CtrPipelineError as exc:
            self._refuse("canary.json", f"cannot read the canary setting: {exc}")
            return False
        current = self.active
        if setting is None:
            if current is None:
                return False
            self._swap(None, f"canary {current.model.version} off: every user goes to control")
            return True
        version, traffic = str(setting["version"]), float(setting["traffic"])
        if current is not None and current.model.version == version:
            if current.traffic == traffic:
                return False
            self._swap(
                ActiveCanary(current.model, traffic, current.salt), f"{version} {traffic:.0%}"
            )
            return True
        refused_at = self._refused.get(version)
        if refused_at is not None and time.monotonic() - refused_at < self.retry_s:
            return False
        try:
            model = load_pinned(self.registry, self.name, version)
        except Exception as exc:  # IntegrityError, CheckpointError, OSError...
            self._refuse(version, str(exc))
            return False
        self._refused.pop(version, None)
        self._swap(
            ActiveCanary(model, traffic, f"{self.name}:{version}"),
            f"canary {version} gets {traffic:.0%} of users (loaded in {model.load_seconds:.2f} s)",
        )
        return True

    def _swap(self, active: ActiveCanary | None, message: str) -> None:
        self.active = active
        self.last_error = None
        log.info("🐤 %s: %s", self.name, message)
        self.on_change(active)

    def _refuse(self, target: str, reason: str) -> None:
        first = target not in self._refused
        self._refused[target] = time.monotonic()
        self.last_error = f"refused canary {self.name} {target}: {reason}"
        if first:
            log.error("❌ Refused canary %s %s: %s", self.name, target, reason)

"""The models a service scores with, and the hot reload of production's ``current``.

A :class:`LoadedModel` is a predictor (and its :class:`~ml.serving.service.fastpath.FastScorer`)
plus the registry version it came from, loaded through ``ModelRegistry.load`` (every file
verified against the version's manifest) and warmed up with one row before it is used.

:class:`CurrentWatcher` owns the control model. A daemon thread reads the
``production/<name>/current`` link every ``poll_interval`` seconds (one ``readlink``);
when it points somewhere new, the thread loads and verifies that version *beside* the
serving one and only then swaps one attribute (an atomic reference assignment). A
request reads :attr:`CurrentWatcher.model` once and scores every row with that object,
so no request mixes versions and none fails during the swap. A version that fails to
load (a file differs from the manifest, an unreadable checkpoint) is refused and logged;
the previous model keeps serving and the version is retried every ``retry_s`` seconds
(it may be repaired, e.g. promoted again). The same thread runs :attr:`CurrentWatcher.also_poll`
after each check: the canary setting (:mod:`~ml.serving.service.canary`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ml.errors import CtrPipelineError
from ml.registry.layout import PRODUCTION
from ml.serving.predictor import Predictor
from ml.serving.service.fastpath import FastScorer

log = logging.getLogger("ml.serving")


@dataclass(frozen=True)
class LoadedModel:
    """A ready predictor and where it came from."""

    predictor: Predictor
    name: str
    version: str
    stage: str
    loaded_at: float = field(default_factory=time.time)
    load_seconds: float = 0.0
    scorer: FastScorer = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "scorer", FastScorer(self.predictor))

    def describe(self) -> str:
        return f"{self.name} {self.version} ({self.stage})"


def warm_up(predictor: Predictor) -> None:
    """Score one all-missing row (builds the lookup tables, touches every weight)."""
    cols = predictor.features.feature_columns
    predictor.predict_proba(pd.DataFrame({c: pd.Series([None], dtype=object) for c in cols}))


def load_version(registry: Any, name: str, version: str, stage: str) -> LoadedModel:
    """Load, verify and warm up ``name`` ``version`` from ``stage``.

    Raises:
        CtrPipelineError: not found, a file differs from the manifest, unreadable.
    """
    start = time.perf_counter()
    predictor = registry.load(name, version, stage)
    warm_up(predictor)
    return LoadedModel(
        predictor, name, version, stage, load_seconds=round(time.perf_counter() - start, 3)
    )


def load_pinned(registry: Any, name: str, version: str) -> LoadedModel:
    """A candidate or shadow version: its production copy if promoted, else staging."""
    from ml.serving.refs import resolve_ref

    _, stage, version = resolve_ref(registry, f"{name}/{version}")
    return load_version(registry, name, version, stage)


class CurrentWatcher:
    """The control model: production's ``current``, reloaded when the link moves."""

    def __init__(
        self,
        registry: Any,
        name: str,
        *,
        poll_interval: float = 0.25,
        retry_s: float = 10.0,
        on_event: Callable[[str, str], None] | None = None,
    ) -> None:
        self.registry = registry
        self.name = name
        self.poll_interval = poll_interval
        self.retry_s = retry_s
        self.on_event = on_event or (lambda outcome, version: None)
        self.last_error: str | None = None
        self._refused: dict[str, float] = {}
        #: more checks this thread runs after each poll (e.g. the canary setting)
        self.also_poll: list[Callable[[], object]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.model = self._load_current()

    def _load_current(self) -> LoadedModel:
        version = self.registry.resolve(self.name, "current")[1]
        model = load_version(self.registry, self.name, version, PRODUCTION)
        log.info("Serving %s (loaded and verified in %.2f s)", model.describe(), model.load_seconds)
        self.on_event("loaded", version)
        return model

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="current-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.poll_interval):
            for check in (self.poll, *self.also_poll):
                try:
                    check()
                except Exception as exc:  # the watcher must outlive any surprise
                    log.exception("hot reload check failed: %s", exc)

    def poll(self) -> bool:
        """Check the link once; load and swap when it moved. True when swapped."""
        try:
            target = self.registry.current_version(self.name)
        except CtrPipelineError as exc:
            self._refuse("current", f"cannot read the current link: {exc}")
            return False
        if target is None or target == self.model.version:
            return False
        refused_at = self._refused.get(target)
        if refused_at is not None and time.monotonic() - refused_at < self.retry_s:
            return False
        try:
            model = load_version(self.registry, self.name, target, PRODUCTION)
        except Exception as exc:  # IntegrityError, CheckpointError, OSError...
            self._refuse(target, str(exc))
            return False
        previous, self.model = self.model, model
        self._refused.pop(target, None)
        self.last_error = None
        log.info(
            "🔄 %s: now serving %s (was %s), loaded and verified in %.2f s",
            self.name,
            target,
            previous.version,
            model.load_seconds,
        )
        self.on_event("loaded", target)
        return True

    def _refuse(self, target: str, reason: str) -> None:
        first = target not in self._refused
        self._refused[target] = time.monotonic()
        self.last_error = f"refused {self.name} {target}: {reason}"
        if first:
            log.error(
                "❌ Refused %s %s: %s; still serving %s",
                self.name,
                target,
                reason,
                self.model.version,
            )
            self.on_event("refused", target)

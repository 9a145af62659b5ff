"""Run the scoring service under uvicorn (``ctr-pipeline serve``).

The settings travel to the workers as JSON in ``$CTR_SERVING_SETTINGS``; uvicorn builds
the app in each worker with :func:`ml.serving.service.app.app_from_env`. With more than one
worker, ``$PROMETHEUS_MULTIPROC_DIR`` points at a fresh temporary directory (removed on
exit) so ``/metrics`` sums every worker's counters. The references are checked here
first, so a missing model or version fails at once with a message instead of in each
worker.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator

from ml.serving.service.metrics import MULTIPROC_ENV
from ml.serving.service.settings import SETTINGS_ENV, ServeSettings


def preflight(settings: ServeSettings) -> list[str]:
    """Check that every version to serve exists; return what will be served, as lines.

    Raises:
        UserError: no current production version, or no such candidate/shadow version.
    """
    from ml.registry.model_registry import ModelRegistry
    from ml.serving.refs import resolve_ref
    from ml.storage.url import is_url

    registry = ModelRegistry(settings.registry_dir)
    stage, version = registry.resolve(settings.model, "current")
    lines = [f"control: {settings.model} {version} ({stage}, follows production/current)"]
    for role, ref in (("candidate", settings.candidate), ("shadow", settings.shadow)):
        if ref is not None:
            _, stage, version = resolve_ref(registry, f"{settings.model}/{ref}")
            share = f", {settings.traffic:.1%} of keys by {settings.key_field}"
            lines.append(
                f"{role}: {settings.model} {version} ({stage}"
                f"{share if role == 'candidate' else ', scored and logged, never returned'})"
            )
    if settings.candidate is None and settings.follow_canary:
        canary = registry.get_canary(settings.model)
        now = f"now {canary['version']} at {canary['traffic']:.0%}" if canary else "none now"
        where = (
            f"the canary in {registry.base_dir}/production/{settings.model}/current"
            if is_url(str(registry.base_dir))
            else f"production/{settings.model}/canary.json"
        )
        lines.append(f"canary: follows {where} ({now})")
    return lines


@contextlib.contextmanager
def _metrics_dir(workers: int) -> Iterator[None]:
    if workers == 1 or os.environ.get(MULTIPROC_ENV):
        yield
        return
    path = tempfile.mkdtemp(prefix="ctr-serving-metrics-")
    os.environ[MULTIPROC_ENV] = path
    try:
        yield
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(path, ignore_errors=True)


def run(settings: ServeSettings, *, host: str, port: int, log_level: str = "info") -> None:
    """Serve until interrupted (Ctrl-C / SIGTERM stop every worker)."""
    import uvicorn

    os.environ[SETTINGS_ENV] = settings.to_json()
    with _metrics_dir(settings.workers):
        uvicorn.run(
            "ml.serving.service.app:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=settings.workers,
            log_level=log_level,
            access_log=False,
            timeout_graceful_shutdown=5,
        )

"""
### watch_production

Every 15 minutes (`$CTR_WATCH_SCHEDULE`): production's live figures from the serving
feedback, and an automatic rollback when they degrade.

`watch`: for `current` (the last `window_s` seconds) and the version a rollback would go
to: outcomes, observed vs predicted CTR, log loss and calibration error, and the served
rows' drift against the training profile (`serve --log-features RATE`). Beyond the
thresholds (`max_logloss`, `max_logloss_increase` over the previous version,
`max_calibration_error`, each needing its whole interval past the limit) with at least
`min_outcomes` outcomes → `registry rollback` with the figures as the history reason
(by `watch_production (automatic)`); never within `cooldown_s` of the last change;
`dry_run` reports only. The thresholds are the `watch:` section of the config at
`config_path`; a param that is not null overrides one. The step is
`ml.pipeline.watch`; see docs/airflow.md.
"""

from __future__ import annotations

import os
from typing import Any

import deploy_model_tasks as deploy_glue
import training_pipeline_tasks as glue
from airflow.sdk import Param, dag, get_current_context, task

from ml import paths


def _threshold(kind: str, description: str, **limits: Any) -> Param:
    return Param(
        None, type=["null", kind], description=f"{description} (null: the config's)", **limits
    )


PARAMS = {
    "model_name": Param("ctr_model", type="string", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"),
    "log_dir": Param(None, type=["null", "string"], description="serving logs"),
    "config_path": Param(
        paths.DEFAULT_CONFIG, type="string", minLength=1, description="its `watch:` section"
    ),
    "window_s": _threshold("number", "seconds of outcomes judged", exclusiveMinimum=0),
    "min_outcomes": _threshold("integer", "outcomes needed to judge", minimum=1),
    "max_logloss": _threshold("number", "live log loss limit", exclusiveMinimum=0),
    "max_logloss_increase": _threshold("number", "over the previous", exclusiveMinimum=0),
    "max_calibration_error": _threshold("number", "calibration limit", exclusiveMinimum=0),
    "cooldown_s": _threshold("number", "no rollback this soon after a change", minimum=0),
    "dry_run": Param(False, type="boolean"),
}


@dag(
    dag_id="watch_production",
    schedule=os.environ.get("CTR_WATCH_SCHEDULE", "*/15 * * * *"),
    tags=["ml", "ctr", "monitoring"],
    doc_md=__doc__,
    params=PARAMS,
    **glue.dag_defaults(),
)
def watch_production() -> None:
    @task
    def watch() -> dict[str, Any]:
        """Live figures vs thresholds; roll back a degraded current (see the DAG doc)."""
        from ml.config import load_config
        from ml.pipeline.watch import WatchSettings, watch
        from ml.registry.model_registry import ModelRegistry

        context = get_current_context()
        params = dict(context["params"])
        cfg = glue.run_step("watch", load_config, params["config_path"])
        s = WatchSettings.from_config(cfg.watch, params)
        run = f"{context['dag_run'].dag_id} {context['run_id']}"
        out = glue.run_step("watch", watch, s, ModelRegistry(), run=run)
        if out["action"] in ("rolled_back", "dry_run", "no_previous"):
            deploy_glue.deliver(out["text"], context, "watch")
        return dict(out)

    watch()


watch_production()

"""
### feature_engineering_pipeline

(Re)generate the CTR features and publish them as the `ctr_features` Asset
(`file://<base>/data/features/v1`).

`generate_features >> save_features`

`save_features` validates the new splits and, on success, records an Asset event (extra:
`features_path`, `digest`). With `CTR_TRAINING_SCHEDULE=asset`, `training_pipeline` runs
after each such event: the Airflow 3 replacement of the spec's `ExternalTaskSensor`
on `save_features`. Schedule: `$CTR_FEATURE_SCHEDULE` (default `none`: manual), same
values as the training schedule except `asset`.
"""

from __future__ import annotations

import os
from typing import Any

import pendulum
import training_pipeline_tasks as tasks
from airflow.sdk import Param, dag, get_current_context, task

from ml import paths

FEATURES_ASSET = tasks.features_asset()
_schedule = os.environ.get("CTR_FEATURE_SCHEDULE", "none")
if _schedule.strip().lower() == "asset":
    raise ValueError("CTR_FEATURE_SCHEDULE=asset would make the feature pipeline wait for itself")


@dag(
    dag_id=tasks.FEATURE_DAG_ID,
    schedule=tasks.training_schedule(_schedule),
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["ml", "ctr", "features"],
    doc_md=__doc__,
    params={
        "rows": Param(100_000, type="integer", minimum=1_000, maximum=100_000_000),
        "seed": Param(42, type="integer", minimum=0),
        "config_path": Param(paths.DEFAULT_CONFIG, type="string", minLength=1),
    },
    default_args={
        "owner": "ml-platform",
        "retries": 1,
        "retry_delay": pendulum.duration(seconds=30),
        "on_failure_callback": tasks.notify_failure,
    },
)
def feature_engineering_pipeline() -> None:
    @task(multiple_outputs=True)
    def generate_features() -> dict[str, Any]:
        """Generate {train,val,test}/data.parquet and schema.json (atomic replace)."""
        params = get_current_context()["params"]
        return tasks.generate_features(params["rows"], params["seed"])

    @task(outlets=[FEATURES_ASSET])
    def save_features(features_path: str | None) -> None:
        """Validate the features and record the Asset event that can trigger training."""
        context = get_current_context()
        extra = tasks.save_features(features_path, context["params"]["config_path"])
        context["outlet_events"][FEATURES_ASSET].extra = extra

    save_features(generate_features()["features_path"])


feature_engineering_pipeline()

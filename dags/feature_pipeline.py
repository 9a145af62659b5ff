"""
### feature_engineering_pipeline

(Re)generate the synthetic CTR features and publish them as the `ctr_features` Asset.

`generate_features >> save_features`

`generate_features` writes the features directory `features_path` (null, the default:
`data/features/v1`; a path, or a bucket URL such as `s3://bucket/features/v1`, see
docs/storage.md) and refuses, without touching anything, when that directory holds data
the generator did not write. `save_features` validates the new splits and records an
Asset event (extra: `features_path`, `uri`, `rows`, `digest`). With
`CTR_TRAINING_SCHEDULE=asset`, `training_pipeline` runs after each event: the Airflow 3
replacement of the spec's `ExternalTaskSensor`. The event is refused unless the Asset's
URI (`$CTR_FEATURES_ASSET_URI`, default the `file://` URI of `data/features/v1`) names
the directory written: for a bucket, set it to the same URL. A DAG of your own that
writes your data can declare the same Asset as its outlet (docs/airflow.md). Schedule:
`$CTR_FEATURE_SCHEDULE` (default `none`: manual), same values as the training schedule
except `asset`.
"""

from __future__ import annotations

import os
from typing import Any

import pendulum
import training_pipeline_tasks as glue
from airflow.sdk import Param, dag, get_current_context, task

from ml import paths

FEATURES_ASSET = glue.features_asset()
_schedule = os.environ.get("CTR_FEATURE_SCHEDULE", "none")
if _schedule.strip().lower() == "asset":
    raise ValueError("CTR_FEATURE_SCHEDULE=asset would make the feature pipeline wait for itself")


@dag(
    dag_id=glue.FEATURE_DAG_ID,
    schedule=glue.training_schedule(_schedule),
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["ml", "ctr", "features"],
    doc_md=__doc__,
    params={
        "rows": Param(100_000, type="integer", minimum=1_000, maximum=100_000_000),
        "seed": Param(42, type="integer", minimum=0),
        "features_path": Param(
            None,
            type=["null", "string"],
            minLength=1,
            description="Where to write: null for data/features/v1, a path (relative: "
            "against $CTR_PIPELINE_HOME) or a URL such as s3://bucket/features/v1.",
        ),
        "config_path": Param(paths.DEFAULT_CONFIG, type="string", minLength=1),
    },
    default_args={
        "owner": "ml-platform",
        "retries": 1,
        "retry_delay": pendulum.duration(seconds=30),
        "on_failure_callback": glue.notify_failure,
    },
)
def feature_engineering_pipeline() -> None:
    @task(multiple_outputs=True)
    def generate_features() -> dict[str, Any]:
        """Generate {train,val,test}/data.parquet and schema.json (atomic replace)."""
        from ml.pipeline import features

        params = get_current_context()["params"]
        return glue.run_step(
            "generate",
            features.generate,
            params["rows"],
            params["seed"],
            params.get("features_path"),
        )

    @task(outlets=[FEATURES_ASSET])
    def save_features(features_path: str | None) -> None:
        """Validate the features and record the Asset event that can trigger training."""
        from ml.pipeline import features

        context = get_current_context()
        extra = glue.run_step(
            "publish", features.publish, features_path, context["params"]["config_path"]
        )
        if extra["uri"] != FEATURES_ASSET.uri:
            glue.fail(
                f"wrote {extra['features_path']} but the {glue.FEATURES_ASSET_NAME} Asset is "
                f"{FEATURES_ASSET.uri} ({glue.ASSET_URI_ENV}); not announcing another directory"
            )
        context["outlet_events"][FEATURES_ASSET].extra = extra

    save_features(generate_features()["features_path"])


feature_engineering_pipeline()

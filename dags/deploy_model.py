"""
### deploy_model

From a registered version to production through a live canary, with a person (or the
statistics) deciding.

`check_candidate >> start_canary >> wait_for_evidence >> decide >> approve >> promote >> finish`

- **Trigger**: each version `register_model` registers (the `ctr_model_registered` Asset,
  `$CTR_MODEL_ASSET_URI`; its extra names `model_name` and `version`), or by hand with
  the params `model_name` and `version` (null: the latest staging version).
- `check_candidate`: the version verifies against its manifest, has test metrics and a
  model card, and is not already `current`.
- `start_canary`: the registry's canary setting: running `ctr-pipeline serve` processes
  send `canary_traffic` of their users to the candidate, without a restart.
- `wait_for_evidence`: deferred to the triggerer (no worker slot) until the serving
  feedback holds `min_impressions` outcomes per variant, or `max_wait_s` passed.
- `decide`: the A/B report (per variant: rows, clicks, CTR, log loss, AUC with
  intervals; the verdict on `metric`), posted to Slack/email.
- `approve`: the HITL approval (Required Actions page): the report, the card and the
  Models page in its body; only users who may edit this DAG can answer. Approve →
  `promote`; Reject (or no answer in `$CTR_APPROVAL_TIMEOUT_H`, 72) → no promotion. With
  `approval: auto`: a significant win approves, anything else ends the canary.
- `finish` (a teardown of `start_canary`: runs whatever happened in between): canary off,
  the outcome posted. The run's state is that of the tasks before it: a failed `decide`,
  `approve` or `promote` fails the run (and a canary left on fails it too). Every change
  is in the registry's history with who and why.

The steps are `ml.pipeline.deploy`; see docs/airflow.md.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import deploy_model_tasks as deploy_glue
import training_pipeline_tasks as glue
from airflow.sdk import Param, dag, get_current_context, task

PARAMS = {
    "model_name": Param("ctr_model", type="string", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"),
    "version": Param(None, type=["null", "string"], pattern=r"^v[1-9][0-9]*$"),
    "canary_traffic": Param(0.1, type="number", exclusiveMinimum=0, exclusiveMaximum=1),
    "min_impressions": Param(1000, type="integer", minimum=1),
    "max_wait_s": Param(24 * 3600, type="number", exclusiveMinimum=0),
    "approval": Param("manual", enum=["manual", "auto"]),
    "metric": Param("auc", enum=["auc", "ctr", "logloss"]),
    "alpha": Param(0.05, type="number", exclusiveMinimum=0, exclusiveMaximum=0.5),
    "log_dir": Param(None, type=["null", "string"], description="serving logs"),
    "require_card": Param(True, type="boolean"),
}
#: Seconds between the evidence trigger's looks at the serving logs.
POLL_S = float(os.environ.get("CTR_EVIDENCE_POLL_S", "60"))
#: How long the approval waits for an answer before it takes its default (Reject).
APPROVAL_TIMEOUT = timedelta(hours=float(os.environ.get("CTR_APPROVAL_TIMEOUT_H", "72")))


@dag(
    dag_id="deploy_model",
    schedule=[glue.model_asset()],
    tags=["ml", "ctr", "deploy"],
    doc_md=__doc__,
    params=PARAMS,
    **glue.dag_defaults(),
)
def deploy_model() -> None:
    def settings() -> Any:
        return deploy_glue.deploy_settings(get_current_context())

    def registry() -> Any:
        from ml.registry.model_registry import ModelRegistry

        return ModelRegistry()

    @task
    def check_candidate() -> dict[str, Any]:
        """The candidate verifies, has metrics and a card, and is not current."""
        from airflow.sdk.exceptions import AirflowSkipException

        from ml.pipeline import deploy

        context = get_current_context()
        glue.check_conf_keys(context["dag_run"].conf, PARAMS)
        s, reg = settings(), registry()
        triggered = context.get("triggering_asset_events")
        if triggered and s.version and reg.current_version(s.model_name) == s.version:
            raise AirflowSkipException(f"{s.model_name} {s.version} is current already")
        return glue.run_step("check_candidate", deploy.check_candidate, s, reg)

    @task
    def start_canary(candidate: dict[str, Any]) -> dict[str, Any]:
        """Set the registry's canary: running services follow it without a restart."""
        from ml.pipeline import deploy

        s = settings()
        return glue.run_step(
            "start_canary", deploy.start_canary, s, registry(), candidate["version"], s.run
        )

    wait = deploy_glue.WaitForEvidence(task_id="wait_for_evidence", poll_s=POLL_S)

    @task
    def decide(started: dict[str, Any], evidence: dict[str, Any]) -> dict[str, Any]:
        """The A/B report and the verdict; posted to Slack/email."""
        from ml.pipeline import deploy

        s = settings()
        links = deploy.links(s.model_name, started["version"])
        out = glue.run_step("decide", deploy.decide, s, started["version"], started["since"], links)
        deploy_glue.deliver(out["text"], get_current_context(), "decide")
        return dict(out)

    approve = deploy_glue.DeployApproval(
        task_id="approve",
        subject="Promote {{ params.model_name }} {{ ti.xcom_pull(task_ids='start_canary')"
        "['version'] }}?",
        body="{{ ti.xcom_pull(task_ids='decide')['markdown'] }}",
        defaults="Reject",
        response_timeout=APPROVAL_TIMEOUT,
        retries=0,
    )

    @task(retries=2)
    def promote(started: dict[str, Any], decision: dict[str, Any]) -> dict[str, Any]:
        """Promote the approved candidate (by: the approver, or approval: auto)."""
        from ml.pipeline import deploy

        response = get_current_context()["ti"].xcom_pull(task_ids="approve")
        by = deploy.approver(response, deploy_glue.AUTO_BY)
        auto = (response or {}).get("auto")
        reason = decision["reason"] + ("" if auto else f"; approved by {by}")
        s = settings()
        return glue.run_step(
            "promote", deploy.promote, s, registry(), started["version"], by, reason
        )

    @task(retries=2)
    def finish() -> None:
        """Canary off (whatever happened before), the outcome posted. A teardown: it runs
        once ``start_canary`` did, whatever the tasks between did, and the run's state is
        theirs (a failed ``approve`` or ``promote`` fails the run), or failed when the
        canary could not be turned off."""
        from ml.pipeline import deploy

        context = get_current_context()
        ti = context["ti"]
        started = ti.xcom_pull(task_ids="start_canary")
        if not started:
            return  # no canary was started
        s = settings()
        note = deploy.finish_note(
            deploy_glue.task_states(context, deploy.STEPS),
            ti.xcom_pull(task_ids="decide"),
            ti.xcom_pull(task_ids="approve"),
            deploy_glue.AUTO_BY,
        )
        version = started["version"]
        out = glue.run_step("finish", deploy.finish, s, registry(), version, s.run, note)
        deploy_glue.deliver(out["text"], context, "finish")

    started = start_canary(check_candidate())
    started >> wait
    decision = decide(started, wait.output)
    decision >> approve
    promoted = promote(started, decision)
    approve >> promoted
    promoted >> finish().as_teardown(setups=started, on_failure_fail_dagrun=True)


deploy_model()

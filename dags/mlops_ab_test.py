"""
### mlops_ab_test — decide an A/B test: promote the challenger or keep the champion, and say why

Runs **daily** (and by hand) while the endpoint serves two variants (`serving.variants`; mlops_deploy
puts the candidate on the first and the `champion_version` Param's model on the second). It has its
own DAG rather than a task in mlops_monitor: it acts on the endpoint (it moves traffic), it needs a
longer window than an hourly drift window (labels mature over days), and a decision a day is enough.

| task | aws | local |
|---|---|---|
| `build_request` | lists the window's capture keys (last `serving.ab_test.window_hours`), publishes the job's code bundle (`monitoring/code/ab-<sha>/`), finds the curated snapshot (matured labels: terminal orders), builds CreateProcessingJob for `ab_job.py`; **skips** the run when there are not two variants | same request |
| `ab_analysis_job` | `SageMakerProcessingOperator` (deferrable): per variant, requests, prediction mix and, for the rows whose label matured (joined on `serving.ab_test.join_key`), mAP with a bootstrap interval; the interval of the mAP difference -> `ab_summary.json` | the local processing runner (same script, SageMaker runtime) |
| `decide_ab_test` | adds each variant's mean latency from the real-time reporting aggregates (DynamoDB; data capture has no latency), then the rule (`serving.ab_test`): enough requests and labels per variant, then promote only if the lower end of the difference's interval is above `min_improvement`; writes `reports/ab-tests/<endpoint>/<job>/ab_test_report.json` | same |
| `promote_winner` | on promotion, UpdateEndpointWeightsAndCapacities: challenger 1, champion 0 (instant, reversible); otherwise nothing | the local endpoint's router weights |

**The worker only orchestrates**: captured traffic and labels are read by the processing job; the
tasks list keys and move the small summary and report. The decision and its reason (with a
champion/challenger table) are in the `decide_ab_test` XCom and the report, which the MLOps UI plugin shows.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, task

from mlops_airflow.dag_defaults import DEFAULT_ARGS, PIPELINE_RUN_TIMEOUT, USER_DEFINED_MACROS
from mlops_airflow.targets import step_operator

with DAG(
    dag_id="mlops_ab_test",
    description="Compare the endpoint's two variants on captured traffic and matured labels; promote or keep",
    doc_md=__doc__,
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=PIPELINE_RUN_TIMEOUT,
    default_args=DEFAULT_ARGS,
    user_defined_macros=USER_DEFINED_MACROS,
    tags=["mlops", "serving", "ab-test", "sagemaker"],
) as dag:

    @task
    def build_request(**context) -> dict:
        """CreateProcessingJob of the A/B analysis over the window; skips without two variants."""
        from mlops_airflow.tasks import serving as bodies

        return bodies.ab_test_request(context)

    @task
    def decide_ab_test(job: dict, **context) -> dict:
        """Apply serving.ab_test to the analysis; write the report; say why."""
        from mlops_airflow.tasks import serving as bodies

        return bodies.ab_test_decision(job, context)

    ab_analysis_job = step_operator("ab_analysis_job")(
        task_id="ab_analysis_job",
        config=build_request(),
        check_interval=30,
        deferrable=True,
    )
    step_operator("promote_winner")(task_id="promote_winner", decision=decide_ab_test(ab_analysis_job.output))

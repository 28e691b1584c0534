"""The ``mlops`` Airflow plugin, registered by the project wheel's ``airflow.plugins`` entry point.

External views (links resolve against the UI's base URL, so they hold behind a ``base_url``
path; the UI fills in ``{DAG_ID}``, ``{RUN_ID}`` and ``{TASK_ID}``, URL-encoded, and shows the page
in an iframe at ``/plugin/<url_route>``):

- navigation: *MLOps reports* (recent runs' reports) and *Model registry*;
- every DAG run: *MLOps reports* (the run's reports, evaluation, deployment);
- every task instance: the same, narrowed to the task; every task: its recent runs.

Every Airflow process loads plugins (task processes too, for macros and listeners), so this
module imports only the plugin base class: the FastAPI app (:mod:`mlops_airflow.ui.app`) is
built on first access of ``fastapi_apps``, which only the API server (and ``airflow plugins``) makes.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/mlops"
EXTERNAL_VIEWS: list[dict[str, Any]] = [
    {
        "name": "MLOps reports",
        "href": "mlops/",
        "destination": "nav",
        "url_route": "mlops-reports",
        "category": "browse",
    },
    {
        "name": "Model registry",
        "href": "mlops/registry",
        "destination": "nav",
        "url_route": "mlops-registry",
        "category": "browse",
    },
    {
        "name": "MLOps reports",
        "href": "mlops/runs/{DAG_ID}/{RUN_ID}",
        "destination": "dag_run",
        "url_route": "mlops-run",
    },
    {
        "name": "MLOps reports",
        "href": "mlops/runs/{DAG_ID}/{RUN_ID}?task_id={TASK_ID}",
        "destination": "task_instance",
        "url_route": "mlops-task-instance",
    },
    {
        "name": "MLOps reports",
        "href": "mlops/tasks/{DAG_ID}/{TASK_ID}",
        "destination": "task",
        "url_route": "mlops-task",
    },
]


class MlopsUiPlugin(AirflowPlugin):
    """Reports, deployments and the model registry in the Airflow UI, behind Airflow's auth manager."""

    name = "mlops"
    external_views = EXTERNAL_VIEWS

    @cached_property
    def fastapi_apps(self) -> list[dict[str, Any]]:  # type: ignore[override]  # built lazily: API server only
        from mlops_airflow.ui.app import create_app

        return [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "MLOps reports and model registry"}]

"""The plugin's FastAPI app, mounted by Airflow's API server at ``/mlops``.

No route is open: each one depends on Airflow's auth manager through the API server's own
security dependencies (a request without the UI's session cookie or a bearer token gets 401):

| route | access it needs |
|---|---|
| ``GET /`` (recent runs with reports) | the website view; only DAGs whose XComs the user may read are listed |
| ``GET /runs/{dag_id}/{run_id}`` (``?task_id=``) | read the DAG's XComs |
| ``GET /runs/{dag_id}/{run_id}/files/{key}`` | read the DAG's XComs; the file must be one the run published |
| ``GET /tasks/{dag_id}/{task_id}`` | read the DAG's XComs |
| ``GET /registry`` | read runs of mlops_train (which registers the versions) |
| ``POST /registry/{version}/approve`` / ``reject`` | update mlops_deploy's human-in-the-loop decisions |

Approving is a human-in-the-loop decision about mlops_deploy: it deploys Approved versions only.

Imports: FastAPI and Airflow's API-server modules, the project's light modules; the registry,
endpoint and lake clients are built on first use (:mod:`mlops_airflow.ui.backends`).
"""

from __future__ import annotations

from functools import cache
from typing import Any, Literal
from urllib.parse import urlparse

from airflow.api_fastapi.auth.managers.models.resource_details import AccessView, DagAccessEntity, DagDetails
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag, requires_access_view
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse

from mlops_airflow.ui import pages
from mlops_airflow.ui.discovery import findings, published_keys
from mlops_airflow.ui.lake_files import (
    ObjectMissing,
    ObjectTooLarge,
    ServedLake,
    UnsafeKey,
    content_type,
    html_pages_below,
    read_object,
    within_published,
)
from mlops_airflow.ui.registry_view import DECISIONS, PENDING, serving_by_model, version_rows
from mlops_airflow.ui.run_data import recent_outputs, run_info, run_outputs

TRAIN_DAG = "mlops_train"  # registers the model versions the registry page lists
DEPLOY_DAG = "mlops_deploy"  # deploys Approved versions only: approving decides what it may deploy
RECENT_RUNS = 25
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; style-src 'unsafe-inline'; script-src 'none'; "
    "form-action 'self'; frame-ancestors 'self'; base-uri 'none'",
}
# Lake files are the project's own reports (GX Data Docs bring inline scripts and CDN styles): they
# may run scripts, but not call the API, post forms or be framed by another site.
FILE_HEADERS = {
    "Cache-Control": "private, no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self' data: https:; script-src 'self' 'unsafe-inline' https:; "
    "style-src 'self' 'unsafe-inline' https:; connect-src 'none'; form-action 'none'; frame-ancestors 'self'",
}

read_xcoms = Depends(requires_access_dag(method="GET", access_entity=DagAccessEntity.XCOM))
router = APIRouter()


@cache
def backend() -> Any:
    """The target's readers (:func:`mlops_airflow.targets.ui_backend_class`), built once per process."""
    from mlops_airflow.targets import pipeline_config, ui_backend_class

    return ui_backend_class()(pipeline_config())


def served_lake() -> ServedLake:
    from mlops_airflow.targets import lake

    return ServedLake.of(lake())


def base_path(request: Request) -> str:
    """The app's mount path as the browser sees it (``/mlops``, behind any ``[api] base_url`` path)."""
    return str(request.scope.get("root_path", "")).rstrip("/") or pages.MOUNT


def html_page(content: str, code: int = 200) -> HTMLResponse:
    return HTMLResponse(content, status_code=code, headers=PAGE_HEADERS)


@router.get("/", dependencies=[Depends(requires_access_view(AccessView.WEBSITE))])
def overview(request: Request, session: SessionDep, user: GetUserDep) -> HTMLResponse:
    """The newest runs (of the DAGs whose XComs the user may read) that published reports or deployments."""
    from airflow.api_fastapi.app import get_auth_manager

    auth = get_auth_manager()
    readable = {
        dag_id
        for dag_id in auth.get_authorized_dag_ids(user=user, method="GET", session=session)
        if auth.is_authorized_dag(
            method="GET", access_entity=DagAccessEntity.XCOM, details=DagDetails(id=dag_id), user=user
        )
    }
    served, runs = served_lake(), []
    for (dag_id, run_id), outputs in recent_outputs(session, readable).items():
        items = findings(outputs, served)
        if items and len(runs) < RECENT_RUNS:
            runs.append((dag_id, run_id, items))
    empty = "No run has published a report yet. Trigger mlops_ingest (the Asset chain runs the rest)."
    return html_page(pages.runs_page(base_path(request), "MLOps reports", runs, empty))


@router.get("/runs/{dag_id}/{run_id}", dependencies=[read_xcoms])
def run(dag_id: str, run_id: str, request: Request, session: SessionDep, task_id: str | None = None) -> HTMLResponse:
    """What one DAG run published (``?task_id=`` narrows it to one task)."""
    info = run_info(session, dag_id, run_id)
    if info is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"DAG {dag_id} has no run {run_id}")
    served = served_lake()
    items = findings(run_outputs(session, dag_id, run_id), served)
    subpages = {  # a site's pages (Data Docs): its index builds their links with scripts from CDNs
        r.key: html_pages_below(served, r.key.rsplit("/", 1)[0], backend().s3())
        for item in items
        if task_id is None or item.task_id == task_id
        for r in item.reports
        if r.file_name == "index.html"
    }
    return html_page(pages.run_page(base_path(request), info, items, task_id, subpages))


@router.get("/runs/{dag_id}/{run_id}/files/{key:path}", dependencies=[read_xcoms])
def run_file(dag_id: str, run_id: str, key: str, session: SessionDep) -> Response:
    """A lake file the run published (a report, or a file next to or below one: images, Data Docs pages)."""
    served = served_lake()
    try:
        served.check(key)
    except UnsafeKey as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"refused key: {exc}") from None
    if run_info(session, dag_id, run_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"DAG {dag_id} has no run {run_id}")
    published = published_keys(findings(run_outputs(session, dag_id, run_id), served))
    if not within_published(served, key, published):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"run {run_id} of {dag_id} published no {key}")
    try:
        data = read_object(served, key, backend().s3())
    except ObjectMissing:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{key} is not in the lake (any more)") from None
    except ObjectTooLarge as exc:
        raise HTTPException(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, str(exc)) from None
    except UnsafeKey as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"refused key: {exc}") from None
    return Response(data, media_type=content_type(key), headers=FILE_HEADERS)


@router.get("/tasks/{dag_id}/{task_id}", dependencies=[read_xcoms])
def task(dag_id: str, task_id: str, request: Request, session: SessionDep) -> HTMLResponse:
    """What one task published in the DAG's recent runs."""
    served, runs = served_lake(), []
    for (_, run_id), outputs in recent_outputs(session, {dag_id}, task_id=task_id).items():
        items = findings(outputs, served)
        if items and len(runs) < RECENT_RUNS:
            runs.append((dag_id, run_id, items))
    empty = f"No recent run of {task_id} published a report, evaluation or deployment."
    return html_page(pages.runs_page(base_path(request), f"{dag_id} · {task_id}", runs, empty))


def _registry_rows() -> tuple[Any, list[Any]]:
    from mlops.registry import list_packages
    from mlops_airflow.targets import pipeline_config

    config, readers = pipeline_config(), backend()
    packages = list_packages(config.registry.model_package_group, readers.registry())
    serving = serving_by_model(readers.sagemaker(), config.serving.endpoint_name)
    return config, version_rows(packages, serving, readers.training_job, served_lake())


@router.get("/registry", dependencies=[Depends(requires_access_dag("GET", DagAccessEntity.RUN, TRAIN_DAG))])
def registry(request: Request, decided: str | None = None) -> HTMLResponse:
    """Every version with mAP, approval status, snapshot, training job, run, evaluation, serving variants."""
    config, rows = _registry_rows()
    message = ""
    version, _, decision = (decided or "").partition("-")
    if version.isdigit() and decision in DECISIONS:
        message = f"version {int(version)}: {DECISIONS[decision]}"
    content = pages.registry_page(
        base_path(request), config.registry.model_package_group, config.serving.endpoint_name, rows, TRAIN_DAG, message
    )
    return html_page(content)


def require_same_origin(request: Request) -> None:
    """Refuse a browser POST sent from another site (the session cookie is SameSite=Lax as well)."""
    origin = request.headers.get("origin")
    if origin and urlparse(origin).netloc != request.headers.get("host"):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "cross-origin request refused")


@router.post(
    "/registry/{version}/{decision}",
    dependencies=[
        Depends(requires_access_dag("PUT", DagAccessEntity.HITL_DETAIL, DEPLOY_DAG)),
        Depends(require_same_origin),
    ],
)
def decide(version: int, decision: Literal["approve", "reject"], request: Request, user: GetUserDep) -> Response:
    """Approve or reject a PendingManualApproval version (UpdateModelPackage), then show the registry."""
    from mlops.registry import list_packages, set_approval
    from mlops_airflow.targets import pipeline_config

    group, client = pipeline_config().registry.model_package_group, backend().registry()
    current = next((p for p in list_packages(group, client) if p["version"] == version), None)
    if current is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{group} has no version {version}")
    if current["approval_status"] != PENDING:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"version {version} is {current['approval_status']}, not {PENDING}"
        )
    description = f"{DECISIONS[decision]} in the Airflow UI by {user.get_name()}"
    set_approval(group, version, DECISIONS[decision], description=description, client=client)
    return RedirectResponse(
        f"{base_path(request)}/registry?decided={version}-{decision}", status_code=status.HTTP_303_SEE_OTHER
    )


def create_app() -> FastAPI:
    """The app the plugin mounts (no OpenAPI docs: the routes serve pages, not an API)."""
    app = FastAPI(title="MLOps reports and model registry", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(router)
    return app

"""The Airflow UI in a real browser: trigger mlops_ingest from its trigger form, let the Asset chain
deploy under the real scheduler, then read the reports and the model registry through the plugin.

Debian's chromium (``scripts/ensure_chromium.sh``) is driven by Playwright from PyPI; no browser
is downloaded, and every request the pages make outside 127.0.0.1 is aborted (Data Docs link
CDNs), so nothing leaves the machine.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from mlops import processes
from mlops_tools.local_airflow import project_dag_ids

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
RUN_ID = "ui_browser_test"
CHAIN = ("mlops_features", "mlops_train", "mlops_deploy")
# an <img> loads after the page: its width once it has loaded or failed (0 when it failed)
IMAGE_WIDTH_ONCE_LOADED = """i => i.complete ? i.naturalWidth : new Promise(done => {
    i.addEventListener("load", () => done(i.naturalWidth)); i.addEventListener("error", () => done(0)); })"""
CHAIN_TIMEOUT = 1500.0  # the whole chain: about 4 min on an idle 2-core machine, much more on a busy one
pytestmark = [pytest.mark.slow, pytest.mark.airflow, pytest.mark.timeout(2700)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _free_port_range(size: int = 40) -> tuple[int, int]:
    """``size`` consecutive loopback ports that are free now (the local endpoints bind inside it)."""
    for _ in range(50):
        start = _free_port()
        if start + size >= 65535:
            continue
        try:
            for port in range(start, start + size):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return start, start + size - 1
    raise RuntimeError("no free range of loopback ports for the local endpoint")


class Api:
    """The local API server's REST API v2 (generous timeouts: a busy machine stalls it for seconds)."""

    def __init__(self, port: str) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.token = self.call("GET", "/auth/token", auth=False)["access_token"]

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, auth: bool = True) -> Any:
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token}"
        data = json.dumps(body).encode() if body is not None else None
        for attempt in range(5):
            request = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    raw = response.read()
                    return json.loads(raw) if raw.strip().startswith((b"{", b"[")) else raw.decode()
            except (TimeoutError, ConnectionError, urllib.error.URLError) as exc:
                # GET and PATCH are idempotent here: retry them when the server is busy (standalone's
                # SQLite answers 500 "database is locked" while the scheduler writes)
                server_busy = not isinstance(exc, urllib.error.HTTPError) or exc.code >= 500
                if not server_busy or method not in ("GET", "PATCH") or attempt == 4:
                    raise
                time.sleep(3)
        raise AssertionError("unreachable")

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns?order_by=run_after&limit=100")["dag_runs"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        quoted = urllib.parse.quote(run_id, safe="")
        return self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quoted}/taskInstances")["task_instances"]

    def failure(self, dag_id: str, run: dict[str, Any]) -> str:
        """The failed tasks of a run with the tail of their logs: what to read when the chain breaks."""
        lines = [f"{dag_id} run {run['dag_run_id']} is {run['state']}"]
        for ti in self.task_instances(dag_id, run["dag_run_id"]):
            if ti["state"] in ("failed", "upstream_failed", "up_for_retry"):
                lines.append(f"  task {ti['task_id']} [{ti['map_index']}] {ti['state']} (try {ti['try_number']})")
                if ti["state"] != "upstream_failed":
                    quoted = urllib.parse.quote(run["dag_run_id"], safe="")
                    path = (f"/api/v2/dags/{dag_id}/dagRuns/{quoted}/taskInstances/{ti['task_id']}/logs/"
                            f"{max(ti['try_number'], 1)}?full_content=true&map_index={ti['map_index']}")  # fmt: skip
                    log = json.dumps(self.call("GET", path))
                    lines.append("    log tail: " + log[-3000:])
        return "\n".join(lines)


def _tool(env: dict[str, str], action: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlops_tools.local_airflow", action],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def _wait(condition: Callable[[], Any], timeout: float, what: str, every: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@pytest.fixture(scope="module")
def airflow(tmp_path_factory):
    """Local Airflow on free ports (the way `make airflow` starts it), mlops_ingest's start-up run
    failed and the DAG paused, then a 3,000-order source: the test's trigger starts the chain.
    Yields (api, durations)."""
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(f"{CHROMIUM} is missing: run `bash scripts/ensure_chromium.sh` (make test-deps does)")
    home = tmp_path_factory.mktemp("ui-browser-home")
    low, high = _free_port_range()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLOPS__"))}
    env.update(
        MLOPS_HOME=str(home),
        MLOPS_TARGET="local",
        MLOPS__SERVING__PORT_RANGE=f"[{low}, {high}]",
        AIRFLOW_HOME=str(home / "airflow"),
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(ROOT / "plugins"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__API__PORT=str(_free_port()),
        AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(_free_port()),
        AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=str(_free_port()),
        PYTHONPATH=os.pathsep.join(str(ROOT / p) for p in ("include", "plugins", "tools")),
        PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD="1",
    )
    durations: dict[str, float] = {}
    with pytest.MonkeyPatch.context() as patch:
        for key in ("MLOPS_HOME", "MLOPS_TARGET", "MLOPS__SERVING__PORT_RANGE", "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD"):
            patch.setenv(key, env[key])  # this process reads the same registry and lake
        from mlops_airflow.targets import pipeline_config

        pipeline_config.cache_clear()
        started = time.monotonic()
        result = _tool(env, "start")
        durations["airflow start"] = time.monotonic() - started
        try:
            assert result.returncode == 0, result.stdout + result.stderr
            assert f"unpaused: {', '.join(project_dag_ids())}" in result.stdout
            api = Api(env["AIRFLOW__API__PORT"])
            _fail_start_up_runs(api, "mlops_ingest")
            generated = subprocess.run(
                [str(Path(sys.executable).with_name("mlops")), "generate", "--orders", "3000"],
                env=env, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
            )  # fmt: skip
            assert generated.returncode == 0, generated.stdout + generated.stderr
            yield api, durations
        finally:
            stopped = _tool(env, "stop")
            print(stopped.stdout, stopped.stderr)
            left = processes.owned_pids()  # `make stop`'s own test (test_local_airflow) fails on these
            print(f"processes of the project left after stop: {left or 'none'}")
            print("durations (s): " + json.dumps({k: round(v) for k, v in durations.items()}))
            pipeline_config.cache_clear()


def _fail_start_up_runs(api: Api, dag_id: str) -> None:
    """Unpausing an hourly DAG starts a run of its latest schedule at once. Wait for it, pause the DAG
    and fail the run (it has no source to read yet), so the run the test triggers starts the chain;
    the trigger form unpauses the DAG again."""
    _wait(lambda: api.runs(dag_id), 180, f"the start-up run of {dag_id}")
    api.call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": True})
    active = ("queued", "running", "scheduled", "up_for_retry", "up_for_reschedule", "deferred", "restarting")

    def settled() -> bool:
        """Fail every run and every task instance still active in it. A task whose attempt failed just as
        its run was failed goes to up_for_retry in a failed run, which the scheduler never picks up again:
        it has to be failed too."""
        busy = False
        for run in api.runs(dag_id):
            quoted = urllib.parse.quote(run["dag_run_id"], safe="")
            if run["state"] != "failed":
                api.call("PATCH", f"/api/v2/dags/{dag_id}/dagRuns/{quoted}", {"state": "failed"})
                busy = True
            for ti in api.task_instances(dag_id, run["dag_run_id"]):
                if ti["state"] in active:
                    task = urllib.parse.quote(ti["task_id"], safe="")
                    api.call(
                        "PATCH", f"/api/v2/dags/{dag_id}/dagRuns/{quoted}/taskInstances/{task}", {"new_state": "failed"}
                    )
                    busy = True
        return not busy

    _wait(settled, 180, f"the start-up run of {dag_id} to be failed and its tasks stopped")
    _wait(settled, 60, f"the start-up run of {dag_id} to stay failed")


@pytest.fixture(scope="module")
def browser():
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _page(browser, api: Api):
    """A new browser page on the Airflow UI; requests to anything but 127.0.0.1 are aborted."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="en-US", base_url=api.base)
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(api.base) else route.abort())
    page = context.new_page()
    page.set_default_timeout(120_000)  # a busy machine
    return page


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _finished(api: Api, dag_id: str, pick: Callable[[list[dict[str, Any]]], dict[str, Any] | None]) -> dict:
    """The run ``pick`` chooses among ``dag_id``'s runs, once it finished; fail naming what broke."""

    def done() -> dict[str, Any] | None:
        run = pick(api.runs(dag_id))
        if run is None:
            return None
        if run["state"] in ("success", "failed"):
            return run
        if any(ti["state"] == "failed" for ti in api.task_instances(dag_id, run["dag_run_id"])):
            return {**run, "state": "failed"}  # fail fast: the run cannot succeed any more
        return None

    run = _wait(done, CHAIN_TIMEOUT, f"the {dag_id} run of the chain to finish", every=10)
    assert run["state"] == "success", api.failure(dag_id, run)
    return run


def _first_after(moment: str) -> Callable[[list[dict[str, Any]]], dict[str, Any] | None]:
    """Picks the first run created after ``moment`` (the run an Asset event of the previous stage made)."""
    return lambda runs: next((r for r in runs if _when(r["run_after"]) > _when(moment)), None)


def _plugin_frame(page, path: str):
    page.goto(path)
    frame = page.frame_locator("iframe")
    frame.locator("h1").wait_for()
    return frame


def test_trigger_from_the_form_then_reports_and_registry_in_the_ui(airflow, browser):
    api, durations = airflow
    page = _page(browser, api)

    # -- trigger mlops_ingest from the UI's trigger form, with a Param typed into the form
    started = time.monotonic()
    page.goto("/dags/mlops_ingest")
    page.get_by_role("button", name="Trigger Dag").click()
    dialog = page.get_by_role("dialog")
    assert dialog.get_by_label("Unpause mlops_ingest on trigger").is_checked()
    dialog.locator("input[name=element_max_cdc_lag_seconds]").fill("3600")
    dialog.get_by_role("button", name="Advanced Options").click()
    dialog.locator("input[name=dagRunId]").fill(RUN_ID)
    dialog.get_by_role("button", name="Trigger", exact=True).click()
    dialog.wait_for(state="hidden")
    ingest = _wait(lambda: next((r for r in api.runs("mlops_ingest") if r["dag_run_id"] == RUN_ID), None), 60,
                   "the triggered run")  # fmt: skip
    assert ingest["run_type"] == "manual" and ingest["conf"]["max_cdc_lag_seconds"] == 3600

    # -- the Asset chain: ingest -> features -> train -> deploy, under the real scheduler
    runs = {"mlops_ingest": _finished(api, "mlops_ingest", lambda rs: next(r for r in rs if r["dag_run_id"] == RUN_ID))}
    for upstream, dag_id in zip(("mlops_ingest", *CHAIN), CHAIN, strict=False):
        runs[dag_id] = _finished(api, dag_id, _first_after(runs[upstream]["start_date"]))
    durations["trigger to deployed"] = time.monotonic() - started

    # -- the train run's reports: champion/challenger table, then the evaluation report itself
    checks = time.monotonic()
    from mlops.registry import list_packages, local_registry
    from mlops_airflow.targets import pipeline_config

    group = pipeline_config().registry.model_package_group
    (v1,) = list_packages(group, local_registry())
    train_run = urllib.parse.quote(runs["mlops_train"]["dag_run_id"], safe="")
    page.goto(f"/dags/mlops_train/runs/{train_run}")  # the run's page; its plugin tab
    page.get_by_role("link", name="MLOps reports").click()
    frame = page.frame_locator("iframe")
    frame.get_by_text("Champion / challenger").wait_for()
    assert f"{v1['map']:.4f}" in frame.locator("pre").inner_text()
    frame.get_by_role("link", name="report: report.html").click()
    frame.get_by_role("heading", name="Model evaluation (test split)").wait_for()
    evaluation = frame.locator("body").inner_text()
    assert "challenger" in evaluation and "champion (same split)" in evaluation
    assert f"{v1['map']:.4f}" in evaluation
    assert frame.locator("img").count() >= 1
    assert frame.locator("img").first.evaluate(IMAGE_WIDTH_ONCE_LOADED) > 0

    # -- the features run: the EDA report and the Data Docs; the deploy run: endpoint, variant, traffic
    run_path = {d: f"/dags/{d}/runs/{urllib.parse.quote(r['dag_run_id'], safe='')}" for d, r in runs.items()}
    features = _plugin_frame(page, f"{run_path['mlops_features']}/plugin/mlops-run")
    assert features.get_by_role("link", name="report: eda.html").count() == 1
    features.get_by_role("link", name="Data Docs: index.html").click()
    features.get_by_text("Data Docs autogenerated using Great Expectations").wait_for()
    deploy = _plugin_frame(page, f"{run_path['mlops_deploy']}/plugin/mlops-run")
    deployment = deploy.locator("body").inner_text()
    assert "Deployment: endpoint mlops-orders" in deployment and "InService" in deployment and "100 %" in deployment

    # -- the registry, from the Browse menu: version, mAP, approval, snapshot, job, serving endpoint
    page.goto("/dags")
    page.get_by_role("button", name="Browse").click()
    page.get_by_text("Model registry").click()
    registry = page.frame_locator("iframe")
    row = registry.locator("tr#v1")
    row.wait_for()
    text = row.inner_text()
    assert f"{v1['map']:.4f}" in text and "Approved" in text and v1["metadata"]["training_job"] in text
    assert "curated/features/snapshots/" in text and "mlops-orders/AllTraffic 100 % (InService)" in text
    assert registry.get_by_role("button").count() == 0  # nothing is pending

    # -- a version waiting for approval gets Approve / Reject; rejecting it goes through the registry
    _register_pending_copy(v1, group)
    page.reload()
    pending = page.frame_locator("iframe").locator("tr#v2")
    assert "PendingManualApproval" in pending.inner_text()
    assert pending.get_by_role("button", name="Approve").count() == 1
    pending.get_by_role("button", name="Reject").click()
    page.frame_locator("iframe").get_by_text("version 2: Rejected").wait_for()
    statuses = {p["version"]: p["approval_status"] for p in list_packages(group, local_registry())}
    assert statuses == {1: "Approved", 2: "Rejected"}

    # -- the plugin's routes answer as Airflow's own API does, through the auth manager. `make airflow`
    # runs the simple auth manager in all-admins mode, which lets a request without credentials in
    # (Airflow's /api/v2 too; test_ui_plugin.py shows the 401 outside that mode), but a forged token
    # is refused by both.
    anonymous = browser.new_context(base_url=api.base)
    forged = {"Authorization": "Bearer forged"}
    assert anonymous.request.get("/api/v2/dags").status == 200  # the all-admins mode
    assert anonymous.request.get("/api/v2/dags", headers=forged).status == 403
    for path in (
        "/mlops/",
        "/mlops/registry",
        f"/mlops/runs/mlops_train/{train_run}",
        "/mlops/tasks/mlops_train/register",
    ):
        assert anonymous.request.get(path, headers=forged).status == 403, path
    assert anonymous.request.post("/mlops/registry/2/approve", headers=forged).status == 403
    anonymous.close()
    durations["UI checks"] = time.monotonic() - checks


def _register_pending_copy(model: dict[str, Any], group: str) -> None:
    """Register a copy of ``model``'s package as PendingManualApproval (what `registry.approval_policy:
    manual` does with a new model), under its own model data URL."""
    from mlops.lake import local_path
    from mlops.registry import local_registry

    source = local_path(model["model_data_url"])
    copy = source.parent.parent / "pending-copy" / source.name
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, copy)
    local_registry().create_model_package(
        ModelPackageGroupName=group,
        ModelApprovalStatus="PendingManualApproval",
        CustomerMetadataProperties=model["metadata"],
        InferenceSpecification={"Containers": [{"Image": "local", "ModelDataUrl": copy.as_uri()}]},
    )

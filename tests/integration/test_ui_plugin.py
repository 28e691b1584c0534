"""The UI plugin inside Airflow's own API app (in process): registration, auth on every route,
reports found in a real run's XComs, the files it may serve, and the registry's approve/reject.

A small DAG run through ``dag.test()`` publishes report locations the way the pipeline's tasks
do (XCom return values, a mapped task, a deployment description); the API app is
``airflow.api_fastapi.app.create_app()`` with the plugin loaded from the wheel's entry point.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_airflow.ui import discovery, lake_files, registry_view

ROOT = Path(__file__).resolve().parents[2]
DAG_ID = "ui_plugin_test"
pytestmark = [pytest.mark.airflow, pytest.mark.slow]


# ---------------------------------------------------------------------------------- pure parts

SERVED = lake_files.ServedLake(root="s3://lake", prefixes=("reports", "monitoring", "models"))


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/reports/a.html",
        "reports/../curated/x.html",
        "reports/./a.html",
        "reports//a.html",
        "reports\\a.html",
        "reports/a\x00.html",
        "curated/features/_current.json",
        "reportsX/a.html",
        "reports",
        "x" * 1100,
    ],
)
def test_unsafe_keys_are_refused(key):
    with pytest.raises(lake_files.UnsafeKey):
        SERVED.check(key)


def test_served_keys_and_uris():
    assert SERVED.check("models/evaluation/job/report.html") == "models/evaluation/job/report.html"
    assert SERVED.key_of("s3://lake/monitoring/runs/e/j/report.html") == "monitoring/runs/e/j/report.html"
    assert SERVED.key_of("s3://other/reports/a.html") is None
    assert SERVED.key_of("s3://lake/curated/features/_current.json") is None
    assert SERVED.key_of("s3://lakeside/reports/a.html") is None  # a bucket whose name starts like the lake's


def test_a_file_vouches_for_its_folder_but_never_for_a_whole_prefix():
    published = {"reports/features/run1/data_docs/index.html", "monitoring/state.json"}
    assert lake_files.within_published(SERVED, "reports/features/run1/data_docs/validations/x.html", published)
    assert not lake_files.within_published(SERVED, "reports/features/run2/eda.html", published)
    assert lake_files.within_published(SERVED, "monitoring/state.json", published)
    assert not lake_files.within_published(SERVED, "monitoring/runs/e/j/report.html", published)


def test_reports_are_found_anywhere_in_a_value_and_only_html_or_json_under_served_prefixes():
    value = {
        "report_uri": "s3://lake/reports/features/r/eda.html",
        "nested": {"items": [{"violations_uri": "s3://lake/monitoring/runs/e/j/constraint_violations.json"}]},
        "output_uri": "s3://lake/athena-results/q.csv",
        "model_data_url": "s3://lake/models/training/job/output/model.tar.gz",
        "curated_uri": "s3://lake/curated/features/snapshot=1/_current.json",
    }
    found = discovery.reports_in(discovery.TaskOutput("t", -1, "return_value", value), SERVED)
    bare = discovery.reports_in(discovery.TaskOutput("t", -1, "data_docs", "s3://lake/reports/r/dd/index.html"), SERVED)
    assert [(r.field, r.label) for r in bare] == [("data_docs", "Data Docs")]  # a dict's key as its own XCom
    assert [(r.field, r.key, r.label) for r in found] == [
        ("report_uri", "reports/features/r/eda.html", "report"),
        ("nested.items[0].violations_uri", "monitoring/runs/e/j/constraint_violations.json", "violations"),
    ]


def test_deployments_in_both_shapes():
    described = {
        "Endpoint": {
            "EndpointName": "orders",
            "EndpointStatus": "InService",
            "EndpointConfigName": "cfg-2",
            "ProductionVariants": [
                {"VariantName": "Blue", "CurrentWeight": 9.0},
                {"VariantName": "Green", "CurrentWeight": 1.0},
            ],
        },
        "EndpointConfig": {"ProductionVariants": [{"VariantName": "Blue", "ModelName": "m1"}, {"VariantName": "Green",
                                                                                             "ModelName": "m2"}]},
    }  # fmt: skip
    first = discovery.deployment_in(described)
    assert first is not None and first.endpoint_name == "orders" and first.status == "InService"
    assert [(v.name, v.model, v.share) for v in first.variants] == [("Blue", "m1", 0.9), ("Green", "m2", 0.1)]
    smoke = discovery.deployment_in({"endpoint_name": "orders", "variant_weights": {"AllTraffic": 1.0},
                                     "model_version": 3})  # fmt: skip
    assert smoke is not None and smoke.model_version == 3 and smoke.variants[0].share == 1.0
    assert discovery.deployment_in({"endpoint_name": "orders"}) is None


def test_serving_by_model_follows_endpoint_config_and_models():
    class FakeSageMaker:  # boto3's response shapes
        def describe_endpoint(self, EndpointName):
            return {"EndpointConfigName": "cfg", "EndpointStatus": "InService",
                    "ProductionVariants": [{"VariantName": "A", "CurrentWeight": 3}, {"VariantName": "B",
                                                                                      "CurrentWeight": 1}]}  # fmt: skip

        def describe_endpoint_config(self, EndpointConfigName):
            return {"ProductionVariants": [{"VariantName": "A", "ModelName": "ma"}, {"VariantName": "B",
                                                                                    "ModelName": "mb"}]}  # fmt: skip

        def describe_model(self, ModelName):
            return {"PrimaryContainer": {"ModelDataUrl": f"s3://lake/models/{ModelName}.tar.gz"}}

    serving = registry_view.serving_by_model(FakeSageMaker(), "orders")
    assert serving == {
        "s3://lake/models/ma.tar.gz": ["orders/A 75 % (InService)"],
        "s3://lake/models/mb.tar.gz": ["orders/B 25 % (InService)"],
    }


# ----------------------------------------------------------------------- the plugin's registration


def test_the_plugin_module_imports_nothing_the_api_server_alone_needs():
    """Task processes load plugins too: the plugin class must not pull in FastAPI or the API server."""
    probe = (
        "import sys, json; import mlops_airflow.ui.plugin as p; "
        "print(json.dumps({'loaded': sorted(m for m in ('fastapi', 'airflow.api_fastapi', 'mlops_airflow.ui.app', "
        "'pandas', 'numpy', 'pyarrow', 'boto3') if m in sys.modules), 'name': p.MlopsUiPlugin.name}))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(ROOT / p) for p in ("include", "plugins"))}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True).stdout
    assert json.loads(out.strip().splitlines()[-1]) == {"loaded": [], "name": "mlops"}


def test_the_plugin_is_registered_through_the_entry_point_with_templated_views():
    from airflow import plugins_manager

    info = next(p for p in plugins_manager.get_plugin_info() if p["name"] == "mlops")
    assert "mlops-orchestrator" in str(info["source"]) and "airflow.plugins" in str(info["source"])
    views = {v["destination"]: v for v in info["external_views"] if v["destination"] != "nav"}
    assert views["dag_run"]["href"] == "mlops/runs/{DAG_ID}/{RUN_ID}"
    assert views["task_instance"]["href"] == "mlops/runs/{DAG_ID}/{RUN_ID}?task_id={TASK_ID}"
    assert views["task"]["href"] == "mlops/tasks/{DAG_ID}/{TASK_ID}"
    assert {v["href"] for v in info["external_views"] if v["destination"] == "nav"} == {"mlops/", "mlops/registry"}
    assert [a["url_prefix"] for a in info["fastapi_apps"]] == ["/mlops"]


# ------------------------------------------------------------------- the app, on a real DAG run


def _uri(home: Path, key: str) -> str:
    """The local lake's URI of ``key``, built as the pipeline builds it (root URI + key)."""
    return f"{(home / 'lake').resolve().as_uri()}/{key}"


def _write(home: Path, key: str, text: str) -> str:
    path = home / "lake" / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return _uri(home, key)


def _test_dag(uris: dict[str, str]):
    """A DAG whose tasks publish what the pipeline's tasks publish: report URIs, a gate's comparison
    table, a mapped task, a deployment."""
    import pendulum
    from airflow.sdk import DAG, task

    with DAG(DAG_ID, schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False) as dag:

        @task
        def eda_report() -> dict:
            return {"report_uri": uris["eda"], "data_docs": uris["docs"], "queries": {"labels": 3}}

        @task
        def drift(window: str) -> dict:
            return {"report_uri": uris[window], "drift_share": 0.5 if window == "w2" else 0.0}

        @task
        def register() -> dict:
            return {
                "version": 2,
                "map": 0.6123,
                "approval_status": "PendingManualApproval",
                "report_uri": uris["evaluation"],
                "evaluation_uri": uris["evaluation_json"],
                "comparison": "metric   challenger  champion\nmAP      0.6123      0.5871",
            }

        @task
        def deploy() -> dict:
            return {
                "Endpoint": {"EndpointName": "orders", "EndpointStatus": "InService", "EndpointConfigName": "cfg",
                             "ProductionVariants": [{"VariantName": "AllTraffic", "CurrentWeight": 1.0,
                                                     "ModelName": "model-v2"}]},
            }  # fmt: skip

        @task
        def quiet() -> dict:
            return {"rows": 10}

        eda_report() >> drift.expand(window=["w1", "w2"]) >> register() >> deploy() >> quiet()
    return dag


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    """(TestClient of Airflow's API app, MLOPS_HOME, the test run's id, tokens by role)."""
    from mlops_airflow.targets import pipeline_config
    from mlops_tools.dag_runner import ensure_airflow_db

    home = tmp_path_factory.mktemp("ui-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOPS_HOME", str(home))
        patch.setenv("MLOPS_TARGET", "local")
        pipeline_config.cache_clear()
        from mlops_airflow.ui import app as ui_app

        ui_app.backend.cache_clear()
        uris = {
            "eda": _write(home, "reports/features/ui-run/eda.html", "<h1>EDA report</h1><img src='chart.svg'>"),
            "w1": _write(home, "monitoring/runs/orders/job-1/report.html", "<h1>drift window 1</h1>"),
            "w2": _write(home, "monitoring/runs/orders/job-2/report.html", "<h1>drift window 2</h1>"),
            "evaluation": _write(home, "models/evaluation/eval-job/report.html", "<table>challenger champion</table>"),
            "evaluation_json": _write(home, "models/evaluation/eval-job/evaluation.json", '{"map": 0.6123}'),
        }
        uris["docs"] = _write(home, "reports/features/ui-run/data_docs/index.html", "<h1>Data Docs</h1>")
        _write(home, "reports/features/ui-run/data_docs/validations/suite/run/result.html", "<h1>result</h1>")
        _write(home, "reports/features/ui-run/chart.svg", "<svg xmlns='http://www.w3.org/2000/svg'></svg>")
        _write(home, "reports/features/other-run/eda.html", "<h1>another run's report</h1>")
        _write(home, "curated/features/secret.html", "<h1>not a report</h1>")
        escape = home / "lake" / "reports/features/ui-run/escape.html"
        escape.symlink_to(home / "lake" / "curated/features/secret.html")

        ensure_airflow_db()
        # dag.test() runs a DAG its bundles hold: a bundle with this module's DAG, then the project's
        bundle = home / "dag-bundle"
        bundle.mkdir()
        (bundle / "ui_plugin_test_dag.py").write_text(
            "# an airflow DAG (the words the DagBag's safe mode looks for)\n"
            "import json, os\nfrom tests.integration.test_ui_plugin import _test_dag\n"
            "dag = _test_dag(json.loads(os.environ['MLOPS_UI_TEST_URIS']))\n"
        )
        patch.setenv("MLOPS_UI_TEST_URIS", json.dumps(uris))
        local_bundle = "airflow.dag_processing.bundles.local.LocalDagBundle"
        patch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps([
            {"name": "ui-plugin-test", "classpath": local_bundle, "kwargs": {"path": str(bundle)}},
            {"name": "dags-folder", "classpath": local_bundle, "kwargs": {}},
        ]))  # fmt: skip
        dag_run = _test_dag(uris).test()
        assert str(dag_run.state) == "success"

        from airflow.api_fastapi.app import create_app, get_auth_manager
        from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
        from fastapi.testclient import TestClient

        client = TestClient(create_app())
        tokens = {
            role: get_auth_manager().generate_jwt(SimpleAuthManagerUser(username=role, role=role))
            for role in ("admin", "viewer")
        }
        yield client, home, dag_run.run_id, tokens
        pipeline_config.cache_clear()
        ui_app.backend.cache_clear()


def _get(client, path: str, token: str | None, **kwargs):
    return client.get(path, cookies={"_token": token} if token else None, **kwargs)


def test_no_route_of_the_plugin_is_open(ui):
    """Every route the plugin mounts, called without credentials, is refused by the auth manager."""
    from starlette.routing import Mount

    client, _, run_id, _ = ui
    mount = next(r for r in client.app.routes if isinstance(r, Mount) and r.path == "/mlops")
    params = {"dag_id": DAG_ID, "run_id": run_id, "task_id": "register", "key": "reports/features/ui-run/eda.html",
              "version": "1", "decision": "approve"}  # fmt: skip
    checked = []
    for route in mount.app.routes:
        for method in sorted(getattr(route, "methods", set()) - {"HEAD"}):
            path = "/mlops" + route.path.replace("{key:path}", "{key}").format(**params)
            for headers in ({}, {"Authorization": "Bearer not-a-token"}):
                response = client.request(method, path, headers=headers, follow_redirects=False)
                assert response.status_code in (401, 403), (method, path, headers, response.status_code)
            checked.append(f"{method} {route.path}")
    assert len(checked) == 6, checked  # every page, the file route and the decision route


def test_run_page_shows_reports_comparison_and_deployment(ui):
    client, _, run_id, tokens = ui
    page = _get(client, f"/mlops/runs/{DAG_ID}/{run_id}", tokens["viewer"])
    assert page.status_code == 200, page.text
    text = page.text
    for expected in (
        "eda_report",
        "report: eda.html",
        "drift [0]",
        "drift [1]",
        "monitoring/runs/orders/job-2/report.html",
        "Champion / challenger",
        "mAP      0.6123      0.5871",
        "Deployment: endpoint <code>orders</code>",
        "model-v2",
        "100 %",
        "evaluation: evaluation.json",
        "Data Docs: index.html",
        '/files/reports/features/ui-run/data_docs/validations/suite/run/result.html">validations/suite/run/result.html',
    ):
        assert expected in text, expected
    assert "<h2>quiet</h2>" not in text  # nothing to show for it
    assert "script-src 'none'" in page.headers["content-security-policy"]

    only = _get(client, f"/mlops/runs/{DAG_ID}/{run_id}", tokens["viewer"], params={"task_id": "register"}).text
    assert "Champion / challenger" in only and "eda.html" not in only
    tasks = _get(client, f"/mlops/tasks/{DAG_ID}/drift", tokens["viewer"]).text
    assert "job-1/report.html" in tasks and "job-2/report.html" in tasks and "eda.html" not in tasks
    overview = _get(client, "/mlops/", tokens["viewer"]).text
    assert f"/mlops/runs/{DAG_ID}/{run_id.replace(':', '%3A').replace('+', '%2B')}" in overview
    assert _get(client, f"/mlops/runs/{DAG_ID}/no-such-run", tokens["viewer"]).status_code == 404


def test_files_the_run_published_are_served_and_nothing_else(ui):
    client, _, run_id, tokens = ui
    base = f"/mlops/runs/{DAG_ID}/{run_id}/files"
    report = _get(client, f"{base}/reports/features/ui-run/eda.html", tokens["viewer"])
    assert report.status_code == 200 and "<h1>EDA report</h1>" in report.text
    assert report.headers["content-type"].startswith("text/html") and "connect-src 'none'" in report.headers[
        "content-security-policy"]  # fmt: skip
    chart = _get(client, f"{base}/reports/features/ui-run/chart.svg", tokens["viewer"])  # next to the report
    assert chart.status_code == 200 and chart.headers["content-type"].startswith("image/svg+xml")
    evaluation = _get(client, f"{base}/models/evaluation/eval-job/evaluation.json", tokens["viewer"])
    assert evaluation.json() == {"map": 0.6123}

    refused = {
        f"{base}/reports/features/other-run/eda.html": 404,  # a served prefix, but another run's file
        f"{base}/curated/features/secret.html": 400,  # not a served prefix
        f"{base}/reports/features/ui-run/%2e%2e/%2e%2e/%2e%2e/curated/features/secret.html": 400,  # traversal
        f"{base}/reports/features/ui-run/..%2f..%2f..%2fcurated/features/secret.html": 400,
        f"{base}/reports/features/ui-run/escape.html": 400,  # a symlink out of the prefix
        f"{base}/reports/features/ui-run/missing.html": 404,
    }
    for path, code in refused.items():
        response = _get(client, path, tokens["admin"])
        assert response.status_code == code, (path, response.status_code, response.text)
        assert "not a report" not in response.text


def _register(home: Path, status: str, job: str, run_id: str) -> None:
    from mlops.registry import ensure_group, local_registry
    from mlops_airflow.targets import pipeline_config

    client, group = local_registry(), pipeline_config().registry.model_package_group
    ensure_group(client, group)
    client.create_model_package(
        ModelPackageGroupName=group,
        ModelApprovalStatus=status,
        CustomerMetadataProperties={"map": "0.612300", "training_job": job, "run_id": run_id,
                                    "evaluation_report": _uri(home, "models/evaluation/eval-job/report.html")},
        InferenceSpecification={"Containers": [{"Image": "local", "ModelDataUrl": f"file:///models/{job}.tar.gz"}]},
    )  # fmt: skip
    describe = home / "sagemaker" / "training" / job / "describe.json"
    describe.parent.mkdir(parents=True, exist_ok=True)
    channel = _uri(home, "curated/features/snapshot=20260101T000000/split=train")
    describe.write_text(json.dumps({"InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {
        "S3Uri": channel}}}]}))  # fmt: skip


def test_registry_lists_versions_and_decides_pending_ones(ui):
    from mlops.registry import list_packages, local_registry
    from mlops_airflow.targets import pipeline_config

    client, home, run_id, tokens = ui
    _register(home, "Approved", "mlops-train-a", run_id)
    _register(home, "PendingManualApproval", "mlops-train-b", run_id)
    page = _get(client, "/mlops/registry", tokens["viewer"])
    assert page.status_code == 200, page.text
    text = page.text
    assert text.count('method="post"') == 2  # approve + reject, for the pending version only
    assert 'action="/mlops/registry/2/approve"' in text and 'action="/mlops/registry/2/reject"' in text
    assert "0.6123" in text and "mlops-train-b" in text
    assert "<code>curated/features/snapshot=20260101T000000</code>" in text
    assert f"/mlops/runs/{DAG_ID}/" not in text  # the registry links runs of mlops_train, not other DAGs
    assert "evaluation report" in text and "not serving" in text

    def decide(token: str, decision: str, origin: str = "http://testserver"):
        return client.post(f"/mlops/registry/2/{decision}", cookies={"_token": token}, headers={"Origin": origin},
                           follow_redirects=False)  # fmt: skip

    assert decide(tokens["viewer"], "approve").status_code == 403  # viewers may not decide
    assert decide(tokens["admin"], "approve", origin="http://evil.example").status_code == 403
    done = decide(tokens["admin"], "reject")
    assert done.status_code == 303 and done.headers["location"] == "/mlops/registry?decided=2-reject"
    group = pipeline_config().registry.model_package_group
    statuses = {p["version"]: p["approval_status"] for p in list_packages(group, local_registry())}
    assert statuses == {1: "Approved", 2: "Rejected"}
    assert decide(tokens["admin"], "approve").status_code == 409  # no longer pending
    after = _get(client, "/mlops/registry?decided=2-reject", tokens["viewer"]).text
    assert "version 2: Rejected" in after and 'method="post"' not in after

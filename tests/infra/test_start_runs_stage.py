"""Config-file runs on aws: the pipeline's StartRuns stage runs `mlops runs apply` against MWAA, and nothing else."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.aws.cfn_policies import load_template

ROOT = Path(__file__).resolve().parents[2]
PIPELINE = load_template("pipeline.yaml")


def test_start_runs_comes_after_deploy_and_runs_the_apply_command():
    stages = [s["Name"] for s in PIPELINE["Resources"]["Pipeline"]["Properties"]["Stages"] if "Name" in s]
    assert stages[-2:] == ["Deploy", "StartRuns"], stages
    project = PIPELINE["Resources"]["StartRunsProject"]["Properties"]
    buildspec = yaml.safe_load((ROOT / project["Source"]["BuildSpec"]).read_text())
    command = " ".join(buildspec["phases"]["build"]["commands"])
    assert "mlops runs apply pipelines" in command and "--mwaa-environment" in command and "--state" in command
    variables = {v["Name"] for v in project["Environment"]["EnvironmentVariables"]}
    assert {"MWAA_BUCKET", "MWAA_ENVIRONMENT", "RUNS_STATE_KEY"} <= variables


def test_the_start_runs_role_invokes_airflow_as_user_and_touches_only_its_state_object():
    statements = PIPELINE["Resources"]["StartRunsRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    by_sid = {s["Sid"]: s for s in statements}
    assert by_sid["InvokeAirflowRestApi"]["Resource"]["Fn::Sub"].endswith("/User")
    assert by_sid["AppliedState"]["Action"] == ["s3:GetObject", "s3:PutObject"]
    assert by_sid["AppliedState"]["Resource"]["Fn::Sub"][0].endswith("/runs/applied.json")
    assert by_sid["AppliedStateListing"]["Condition"]["StringEquals"]["s3:prefix"] == "runs/applied.json"
    state_key = next(
        v["Value"]
        for v in PIPELINE["Resources"]["StartRunsProject"]["Properties"]["Environment"]["EnvironmentVariables"]
        if v["Name"] == "RUNS_STATE_KEY"
    )
    assert state_key == "runs/applied.json", "the project writes where the role allows"

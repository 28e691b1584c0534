#!/bin/sh
# MWAA startup script (StartupScriptS3Path = mwaa/startup.sh). MWAA runs it on every
# scheduler, worker and webserver before Airflow starts; variables exported here reach
# every Airflow process.
#
# It turns the environment's custom Airflow configuration options (infra/cfn/mwaa.yaml,
# section "mlops", which MWAA exposes as AIRFLOW__MLOPS__<KEY>) into the project's own
# switches: MLOPS_TARGET and the MLOPS__<SECTION>__<KEY> overrides that
# include/mlops/config.py applies on top of pipeline.yaml. Nothing here is a secret.

AIRFLOW_ROOT="${AIRFLOW_HOME:-/usr/local/airflow}"

export MLOPS_TARGET="${AIRFLOW__MLOPS__TARGET:-aws}"
# plugins.zip is unpacked into $AIRFLOW_ROOT/plugins and carries the pipeline config.
export MLOPS_CONFIG="${AIRFLOW_ROOT}/plugins/pipeline.yaml"
# Scratch state only (job directories, downloads); the lake itself is S3.
export MLOPS_HOME="${MLOPS_HOME:-/tmp/mlops}"

map_option() {
    # map_option SOURCE_VAR TARGET_VAR: export TARGET_VAR=$SOURCE_VAR when SOURCE_VAR is set
    eval "value=\${$1:-}"
    if [ -n "$value" ]; then
        export "$2=$value"
    fi
}

map_option AIRFLOW__MLOPS__REGION MLOPS__AWS__REGION
map_option AIRFLOW__MLOPS__LAKE_BUCKET MLOPS__AWS__LAKE_BUCKET
map_option AIRFLOW__MLOPS__ARTIFACTS_BUCKET MLOPS__AWS__ARTIFACTS_BUCKET
map_option AIRFLOW__MLOPS__DMS_REPLICATION_TASK_ARN MLOPS__AWS__DMS_REPLICATION_TASK_ARN
map_option AIRFLOW__MLOPS__SAGEMAKER_ROLE_ARN MLOPS__TRAINING__ROLE_ARN
map_option AIRFLOW__MLOPS__MODEL_PACKAGE_GROUP MLOPS__REGISTRY__MODEL_PACKAGE_GROUP
map_option AIRFLOW__MLOPS__ROLLBACK_ALARMS MLOPS__SERVING__ROLLBACK_ALARMS
map_option AIRFLOW__MLOPS__REPORTING_TABLE MLOPS__REPORTING__DYNAMODB_TABLE
map_option AIRFLOW__MLOPS__EVENTS_QUEUE_URL MLOPS__REPORTING__EVENTS_QUEUE_URL
map_option AIRFLOW__MLOPS__ALERTS_TOPIC_ARN MLOPS__AWS__ALERTS_TOPIC_ARN

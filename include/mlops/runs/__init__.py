"""Starting pipeline runs from outside Airflow: an API (the Lambda handler) and config files in Git.

One code path on both targets: requests to Airflow's REST API v2 are built as data
(:mod:`mlops.runs.requests`, shaped as MWAA's ``InvokeRestApi``), the body is validated
against the DAG's own Params before anything is triggered (:mod:`mlops.runs.params`), and a
transport executes the request: MWAA's ``InvokeRestApi`` on aws, the local Airflow's REST API
locally (:mod:`mlops.runs.transport`). The Lambda handler, ``mlops runs start|status`` and
``mlops runs apply pipelines/`` all go through :class:`mlops.runs.service.RunsService`.
"""

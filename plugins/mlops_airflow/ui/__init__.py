"""The project's Airflow 3 UI plugin: reports, deployments and the model registry inside Airflow.

- :mod:`.plugin`: the ``AirflowPlugin`` (registered through the wheel's ``airflow.plugins`` entry
  point): external views on the navigation bar, on every DAG run, task and task instance. It
  imports nothing but Airflow's plugin base class; the FastAPI app is built on first use, in
  the API server only.
- :mod:`.app`: the FastAPI app mounted at ``/mlops``. Every route depends on Airflow's auth
  manager (``requires_access_*`` from ``airflow.api_fastapi.core_api.security``).
- :mod:`.discovery`: what a run published, found in its XCom values and Asset-event extras.
- :mod:`.lake_files`: which lake keys may be served (``reports/``, ``monitoring/``, ``models/``),
  and reading them from ``file://`` or ``s3://``.
- :mod:`.registry_view`: model versions with their data snapshot, training job and endpoint.
- :mod:`.run_data`: a run's XComs and Asset events, read with Airflow's models.
- :mod:`.pages`: the HTML.
"""

"""Tests of job code in its own runtime: run with that runtime's Python, never the Airflow env's.

    .mlops/venvs/glue/bin/python -m pytest --confcutdir=tests/jobs tests/jobs/glue

``--confcutdir`` keeps ``tests/conftest.py`` (Airflow, PostgreSQL fixtures) out: the job
runtimes have neither. ``tests/conftest.py`` keeps this folder out of the Airflow env's run.
"""

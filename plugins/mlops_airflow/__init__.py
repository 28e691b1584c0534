"""Airflow-facing code: the target switch, assets, operators, sensors and hooks."""

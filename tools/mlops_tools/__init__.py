"""Tooling around the pipeline that never runs in it.

The closed-loop demo, the ``dag.test()`` runner, local Airflow, and the MWAA bundle and its
check. It runs on developers' machines and in CI only. It is not Airflow plugin code, so it
lives outside ``plugins/`` (Airflow imports every ``.py`` there as a top-level module, and the
plugins folder ships to MWAA), and the MWAA bundle never contains it.
"""

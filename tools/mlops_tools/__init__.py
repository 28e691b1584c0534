"""Tooling around the pipeline that never runs in it: the closed-loop demo, the ``dag.test()`` runner, local Airflow, and the MWAA bundle.

It runs only on a developer's machine and in CI. It is not Airflow plugin code, so it lives
outside ``plugins/`` (Airflow imports every ``.py`` there as a top-level module, and the
plugins folder ships to MWAA), and the MWAA bundle never contains it.
"""

"""Tests of job code, run with the job's own runtime (not the Airflow environment).

``tests/jobs/glue`` runs with ``.mlops/venvs/glue/bin/python`` (AWS Glue 5.0's libraries) and
``tests/jobs/sagemaker`` with ``.mlops/venvs/sagemaker/bin/python`` (the SageMaker containers'),
each with ``--confcutdir=tests/jobs`` so the Airflow-side ``tests/conftest.py`` is not loaded.
``make test`` runs both; the Airflow environment's run skips this folder (``collect_ignore``).
"""

from __future__ import annotations

import os

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

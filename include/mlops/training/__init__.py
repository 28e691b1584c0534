"""Training stage: SageMaker script-mode entry points and the plain functions behind them.

``train.py``, ``evaluate.py`` and ``inference.py`` are ``__main__`` programs / the serving
module; they run unchanged on SageMaker and in the local runner (:mod:`mlops.sagemaker_local`).
Nothing here imports Airflow, and this ``__init__`` imports nothing heavy.
"""

import os

# LightGBM's OpenMP threads busy-wait by default; on a shared or oversubscribed host that makes
# training 50x slower. Passive waiting costs nothing measurable when cores are free. This must
# be set before lightgbm (and its OpenMP runtime) is first imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

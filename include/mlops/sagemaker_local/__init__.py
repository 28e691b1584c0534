"""The local SageMaker stand-in: executes CreateTrainingJob / CreateProcessingJob request dicts.

Each job runs its script-mode entry point as a subprocess inside a job directory laid out like
the container's ``/opt/ml``, with the ``SM_*`` variables, reads its inputs from and writes its
outputs to ``file://`` lake URIs at the same keys SageMaker would use on S3, takes metrics from
its log with the request's ``MetricDefinitions``, and answers with a Describe*Job-shaped dict.
"""

from mlops.sagemaker_local.processing import run_processing_job
from mlops.sagemaker_local.training import run_training_job

__all__ = ["run_processing_job", "run_training_job"]

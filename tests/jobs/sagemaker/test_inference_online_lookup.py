"""On aws the endpoint looks raw orders up in SageMaker Feature Store, in the region its CreateModel names.

The container's environment comes from ``mlops.aws.endpoint_requests.create_model_request`` (``SAGEMAKER_REGION``,
``MLOPS_FEATURE_GROUP_PREFIX``); boto3 is a stand-in here (no network, and this runtime has no boto3).
"""

from __future__ import annotations

import sys
import types

from mlops.training import inference


def test_without_a_local_store_the_lookup_is_feature_stores_batch_get_record_in_the_models_region(monkeypatch):
    made = []

    class Runtime:
        def __init__(self, service: str, region_name: str | None) -> None:
            made.append((service, region_name))

        def batch_get_record(self, **request):
            return {"Records": [], "Errors": [], "UnprocessedIdentifiers": []}

    monkeypatch.setitem(sys.modules, "boto3", types.SimpleNamespace(client=Runtime))
    monkeypatch.delenv("MLOPS_ONLINE_STORE", raising=False)
    monkeypatch.setenv("SAGEMAKER_REGION", "eu-central-1")
    model: dict = {}
    lookup = inference._online_lookup(model)
    assert made == [("sagemaker-featurestore-runtime", "eu-central-1")]
    assert lookup(Identifiers=[])["Records"] == [] and inference._online_lookup(model) is lookup and len(made) == 1

"""Every step takes the same arguments on both targets: each stand-in accepts its aws class's signature.

A DAG passes one set of arguments to ``step_operator(step)``, whichever target runs. So for every
aws/local pair in ``targets.STEPS``, every argument the aws class takes (its own, the provider's and
the connection's) is one the local class takes or declares it ignores (``ignored_provider_args``),
and the local class takes nothing the aws class does not.
"""

from __future__ import annotations

import importlib
import inspect

import pytest
from airflow.sdk import BaseOperator

from mlops_airflow.operators.base import LocalStandIn
from mlops_airflow.targets import STEPS

PAIRS = sorted(STEPS.items())


def load(path: str) -> type:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def init_parameters(cls: type) -> dict[str, inspect.Parameter]:
    """The keyword parameters of every ``__init__`` in the class's MRO above ``BaseOperator``.

    ``BaseOperator``'s own (``task_id``, ``retries``, ...) are common to both targets and left out.
    """
    found: dict[str, inspect.Parameter] = {}
    for klass in cls.__mro__:
        if klass is BaseOperator:
            break
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        for name, parameter in inspect.signature(inspect.unwrap(init)).parameters.items():
            if name != "self" and parameter.kind in (parameter.KEYWORD_ONLY, parameter.POSITIONAL_OR_KEYWORD):
                found.setdefault(name, parameter)
    return found


def accepted(cls: type) -> set[str]:
    """What a class takes: its named parameters and the provider arguments it declares it ignores."""
    return set(init_parameters(cls)) | set(getattr(cls, "ignored_provider_args", ()))


@pytest.mark.parametrize(("step", "paths"), PAIRS, ids=[step for step, _ in PAIRS])
def test_the_local_class_accepts_the_aws_class_signature(step, paths):
    aws, local = (load(path) for path in paths)
    missing = accepted(aws) - accepted(local)
    assert not missing, (
        f"{step}: {local.__name__} does not take {sorted(missing)}, which {aws.__name__} takes; "
        "take them, or declare them in its ignored_provider_args"
    )
    local_only = set(init_parameters(local)) - accepted(aws)
    assert not local_only, f"{step}: {local.__name__} takes {sorted(local_only)}, which {aws.__name__} does not"


@pytest.mark.parametrize(("step", "paths"), PAIRS, ids=[step for step, _ in PAIRS])
def test_the_local_class_is_built_from_the_aws_class_defaults(step, paths):
    """Not only the names: the stand-in is built with every argument only the aws class names at its aws default."""
    aws, local = (load(path) for path in paths)
    assert aws is local or issubclass(local, LocalStandIn), f"{step}: {local.__name__} is not a LocalStandIn"
    arguments = {
        name: "x" if parameter.default is parameter.empty else parameter.default
        for name, parameter in {**init_parameters(aws), **init_parameters(local)}.items()
    }
    operator = local(task_id=f"{step}_probe", **arguments)
    assert operator.task_id == f"{step}_probe"


def test_the_check_can_fail():
    """A stand-in that forgets an aws argument is reported by name."""
    from mlops_airflow.operators.features_local import LocalGlueFeaturesJobOperator

    class Forgetful(LocalGlueFeaturesJobOperator):
        ignored_provider_args = ("aws_conn_id",)

    aws = load(STEPS["build_features"][0])
    assert {"job_name", "deferrable", "region_name"} <= accepted(aws) - accepted(Forgetful)
    with pytest.raises(TypeError, match="job_name"):
        Forgetful(task_id="t", run_key="r", job_name="j")

"""Which model a deployment serves: approved model packages only, the registry having the last word.

Order: an explicit ``model_version`` -> that version of the group; an explicit ``model_data_url``
-> the version registered for that artifact; else the registered-model event that triggered the
run -> its version; else the newest Approved version. Whatever is chosen must be in the registry,
and its approval status is read from the registry at deploy time (an event may be stale); anything
but ``Approved`` is refused with a message saying how to approve it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

APPROVED = "Approved"
LATEST = ("", "latest", "latest approved", "none")
KEYS = ("model_package_group", "version", "model_data_url", "approval_status", "model_package_arn")


class NotDeployable(ValueError):
    """The requested model is not an approved package of the registry."""


def _summary(group: str, package: dict[str, Any]) -> dict[str, Any]:
    return {
        "model_package_group": group,
        "version": package["version"],
        "model_data_url": package["model_data_url"],
        "approval_status": package["approval_status"],
        "model_package_arn": package.get("arn"),
    }


def resolve_deploy_model(
    *,
    group: str,
    packages: Callable[[], list[dict[str, Any]]],
    event_extras: Sequence[dict[str, Any]] = (),
    model_version: Any = None,
    model_data_url: str | None = None,
) -> dict[str, Any]:
    """The model to deploy; ``packages()`` lists the group's versions as ``mlops.registry.list_packages`` does."""
    explicit_version = str(model_version).strip().lower() not in LATEST if model_version is not None else False
    if explicit_version:
        found = [p for p in packages() if str(p["version"]) == str(model_version).strip()]
        if not found:
            known = sorted(p["version"] for p in packages())
            raise NotDeployable(f"{group} has no version {model_version}; versions: {known or 'none'}")
        model = _summary(group, found[0])
    elif model_data_url:
        found = [p for p in packages() if p["model_data_url"] == model_data_url]
        if not found:
            raise NotDeployable(
                f"{model_data_url} is not a registered model package of {group}; register it and approve it, then "
                "deploy it by version"
            )
        model = _summary(group, found[0])
    elif events := [e for e in event_extras if e and e.get("model_data_url")]:
        event = events[-1]
        current = [
            p
            for p in packages()
            if p.get("arn") == event.get("model_package_arn")
            or (p["version"] == event.get("version") and p["model_data_url"] == event.get("model_data_url"))
        ]
        if not current:
            raise NotDeployable(
                f"the registered-model event names version {event.get('version')} ({event.get('model_data_url')}), "
                f"which the {group} registry does not have; deploy a registered version by number"
            )
        model = _summary(group, current[0])  # the registry's status now, not the one in the event
    else:
        approved = [p for p in packages() if p["approval_status"] == APPROVED]
        if not approved:
            raise NotDeployable(f"{group} has no Approved version; approve one (`mlops` CLI: approve) and re-run")
        model = _summary(group, max(approved, key=lambda p: p["version"]))
    if model["approval_status"] != APPROVED:
        raise NotDeployable(
            f"model version {model['version']} of {model['model_package_group']} is {model['approval_status']!r}, not "
            "'Approved'; approve it in the model registry (`mlops` CLI), then re-run this DAG"
        )
    return model

"""The local SageMaker endpoint API: models, endpoint configs and endpoints on this machine.

:class:`LocalSageMaker` executes the same request dicts the aws target sends to SageMaker
(``CreateModel``, ``CreateEndpointConfig``, ``CreateEndpoint``, ``UpdateEndpoint``,
``UpdateEndpointWeightsAndCapacities``, ``Delete*``, ``Describe*``). An endpoint is a router
process on a stable 127.0.0.1 port in front of one model-server process per production
variant ("fleet"). Updates are blue/green (:mod:`mlops.serving.bluegreen`): green starts and
must pass ``/ping``; traffic shifts all at once, canary or linear; a failed health check or
the error-rate alarm rolls traffic back and leaves blue serving. Requests in flight always
finish on the fleet that took them, and blue stops only once drained, so a swap fails no
request. State lives in :mod:`mlops.serving.store` and survives Airflow restarts.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from mlops import processes
from mlops.config import ServingConfig, load_config
from mlops.serving import fleet
from mlops.serving.bluegreen import Alarm, bake, split_weights, traffic_plan
from mlops.serving.errors import DeploymentError
from mlops.serving.store import ResourceInUse, ResourceNotFound, Store, arn, now

log = logging.getLogger(__name__)
DRAIN_SECONDS = 30.0


class LocalSageMaker:
    """A SageMaker-client-shaped API over local endpoint processes (method names as in boto3)."""

    def __init__(self, config: ServingConfig | None = None, store: Store | None = None) -> None:
        self.config = config or load_config().serving
        self.store = store or Store()

    # ---- models and endpoint configs -------------------------------------------------------
    def create_model(self, **request: Any) -> dict[str, Any]:
        name = request["ModelName"]
        if self.store.exists("models", name):
            raise ResourceInUse(f'Cannot create already existing model "{arn("model", name)}".')
        container = request.get("PrimaryContainer") or (request.get("Containers") or [None])[0]
        if not container or not container.get("ModelDataUrl"):
            raise ValueError(f"model {name}: PrimaryContainer.ModelDataUrl is required by the local stand-in")
        self.store.put("models", name, {**request, "ModelArn": arn("model", name), "CreationTime": now()})
        return {"ModelArn": arn("model", name)}

    def describe_model(self, ModelName: str) -> dict[str, Any]:
        return self.store.get("models", ModelName)

    def delete_model(self, ModelName: str) -> dict[str, Any]:
        self.store.delete("models", ModelName)
        return {}

    def create_endpoint_config(self, **request: Any) -> dict[str, Any]:
        name = request["EndpointConfigName"]
        if self.store.exists("endpoint-configs", name):
            raise ResourceInUse(
                f'Cannot create already existing endpoint configuration "{arn("endpoint-config", name)}".'
            )
        for variant in request["ProductionVariants"]:
            self.store.get("models", variant["ModelName"])  # fail now, naming the missing model
        document = {**request, "EndpointConfigArn": arn("endpoint-config", name), "CreationTime": now()}
        self.store.put("endpoint-configs", name, document)
        return {"EndpointConfigArn": document["EndpointConfigArn"]}

    def describe_endpoint_config(self, EndpointConfigName: str) -> dict[str, Any]:
        return self.store.get("endpoint-configs", EndpointConfigName)

    def delete_endpoint_config(self, EndpointConfigName: str) -> dict[str, Any]:
        self.store.delete("endpoint-configs", EndpointConfigName)
        return {}

    # ---- endpoints -------------------------------------------------------------------------
    def create_endpoint(self, EndpointName: str, EndpointConfigName: str, **extra: Any) -> dict[str, Any]:
        """Start the variants and the router; returns once InService (raises DeploymentError if it fails)."""
        with self.store.locked(EndpointName):
            if self.store.exists("endpoints", EndpointName):
                raise ResourceInUse(f'Cannot create already existing endpoint "{arn("endpoint", EndpointName)}".')
            endpoint_config = self.store.get("endpoint-configs", EndpointConfigName)
            state = {
                "EndpointName": EndpointName,
                "EndpointArn": arn("endpoint", EndpointName),
                "EndpointConfigName": EndpointConfigName,
                "EndpointStatus": "Creating",
                "CreationTime": now(),
                "LastModifiedTime": now(),
                "DeploymentConfig": extra.get("DeploymentConfig"),
                "fleet_seq": 0,
                "variants": [],
                "router": None,
                "port": None,
                "history": [],
            }
            self._save(state)
            try:
                self._start_endpoint(state, endpoint_config)
            except DeploymentError as exc:
                state.update(EndpointStatus="Failed", FailureReason=str(exc), LastModifiedTime=now())
                self._save(state)
                raise
            return {"EndpointArn": state["EndpointArn"]}

    def update_endpoint(
        self,
        EndpointName: str,
        EndpointConfigName: str,
        DeploymentConfig: dict[str, Any] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Blue/green update to ``EndpointConfigName``; raises DeploymentError after a rollback."""
        with self.store.locked(EndpointName):
            state = self.store.get("endpoints", EndpointName)
            new_config = self.store.get("endpoint-configs", EndpointConfigName)
            deployment = DeploymentConfig or (
                state.get("DeploymentConfig") if extra.get("RetainDeploymentConfig") else None
            )
            if state["EndpointStatus"] == "Failed" or not self._router_alive(state):
                log.warning(
                    "endpoint %s is not serving (%s); starting it on %s",
                    EndpointName,
                    state["EndpointStatus"],
                    EndpointConfigName,
                )
                self._stop_all(state)
                state.update(EndpointConfigName=EndpointConfigName, EndpointStatus="Creating", variants=[])
                self._start_endpoint(state, new_config)
                return {"EndpointArn": state["EndpointArn"]}
            state.update(EndpointStatus="Updating", LastModifiedTime=now())
            self._save(state)
            self._blue_green(state, new_config, deployment)
            return {"EndpointArn": state["EndpointArn"]}

    def update_endpoint_weights_and_capacities(
        self,
        EndpointName: str,
        DesiredWeightsAndCapacities: list[dict[str, Any]],
    ) -> dict[str, Any]:
        with self.store.locked(EndpointName):
            state = self.store.get("endpoints", EndpointName)
            known = {v["VariantName"] for v in state["variants"]}
            for desired in DesiredWeightsAndCapacities:
                if desired["VariantName"] not in known:
                    raise ResourceNotFound(f"variant {desired['VariantName']} is not on endpoint {EndpointName}")
                for variant in state["variants"]:
                    if variant["VariantName"] == desired["VariantName"] and "DesiredWeight" in desired:
                        variant["weight"] = float(desired["DesiredWeight"])
            self._route(
                state, {v["fleet"] + "/" + v["VariantName"]: v["weight"] for v in state["variants"]}, state["variants"]
            )
            state["LastModifiedTime"] = now()
            self._save(state)
            return {"EndpointArn": state["EndpointArn"]}

    def describe_endpoint(self, EndpointName: str) -> dict[str, Any]:
        """SageMaker's DescribeEndpoint shape, plus ``Local*`` keys (port, URL, processes)."""
        state = self.store.get("endpoints", EndpointName)
        status = state["EndpointStatus"]
        if status == "InService" and not (self._router_alive(state) and all(fleet.alive(v) for v in state["variants"])):
            status = "OutOfService"  # e.g. after `make stop`; the next deploy or `ensure_running` restarts it
        total = sum(v["weight"] for v in state["variants"]) or 1.0
        config = self.store.get("endpoint-configs", state["EndpointConfigName"])
        description = {
            "EndpointName": state["EndpointName"],
            "EndpointArn": state["EndpointArn"],
            "EndpointConfigName": state["EndpointConfigName"],
            "EndpointStatus": status,
            "CreationTime": state["CreationTime"],
            "LastModifiedTime": state["LastModifiedTime"],
            "ProductionVariants": [
                {
                    "VariantName": v["VariantName"],
                    "CurrentWeight": v["weight"],
                    "DesiredWeight": v["weight"],
                    "CurrentInstanceCount": 1,
                    "DesiredInstanceCount": 1,
                    "ModelName": v["ModelName"],
                    "TrafficShare": v["weight"] / total,
                }
                for v in state["variants"]
            ],
            "LocalPort": state["port"],
            "LocalInvocationUrl": self.invocation_url(EndpointName),
            "LocalProcesses": [state["router"], *state["variants"]] if state["router"] else state["variants"],
            "LocalHistory": state["history"][-10:],
        }
        if config.get("DataCaptureConfig"):
            capture = config["DataCaptureConfig"]
            description["DataCaptureConfig"] = {
                "EnableCapture": capture.get("EnableCapture", True),
                "CaptureStatus": "Started",
                "CurrentSamplingPercentage": capture.get("InitialSamplingPercentage", 100),
                "DestinationS3Uri": capture["DestinationS3Uri"],
            }
        if state.get("FailureReason"):
            description["FailureReason"] = state["FailureReason"]
        return description

    def list_endpoints(self) -> dict[str, Any]:
        keys = (
            "EndpointName",
            "EndpointArn",
            "EndpointStatus",
            "CreationTime",
            "LastModifiedTime",
            "LocalInvocationUrl",
        )
        endpoints = []
        for name in self.store.names("endpoints"):
            described = self.describe_endpoint(name)
            endpoints.append({k: described[k] for k in keys})
        return {"Endpoints": endpoints}

    def delete_endpoint(self, EndpointName: str) -> dict[str, Any]:
        with self.store.locked(EndpointName):
            state = self.store.get("endpoints", EndpointName)
            self._stop_all(state)
            self.store.delete("endpoints", EndpointName)
            self.store.path("endpoints", EndpointName, ".routes.json").unlink(missing_ok=True)
            return {}

    def ensure_running(self, EndpointName: str) -> dict[str, Any]:
        """Restart a stopped endpoint (after `make stop` or a reboot) on its current config."""
        with self.store.locked(EndpointName):
            state = self.store.get("endpoints", EndpointName)
            if self._router_alive(state) and all(fleet.alive(v) for v in state["variants"]):
                return self.describe_endpoint(EndpointName)
            self._stop_all(state)
            state.update(EndpointStatus="Creating", variants=[])
            self._start_endpoint(state, self.store.get("endpoint-configs", state["EndpointConfigName"]))
        return self.describe_endpoint(EndpointName)

    def invocation_url(self, EndpointName: str) -> str:
        state = self.store.get("endpoints", EndpointName)
        return f"http://127.0.0.1:{state['port']}/endpoints/{EndpointName}/invocations"

    def router_state(self, EndpointName: str) -> dict[str, Any]:
        """The router's live routes and per-variant/fleet counters (requests, errors, inflight)."""
        return fleet.admin(self.store.get("endpoints", EndpointName)["port"], "/_mlops/state")

    # ---- internals -------------------------------------------------------------------------
    def _save(self, state: dict[str, Any]) -> None:
        self.store.put("endpoints", state["EndpointName"], state)

    def _router_alive(self, state: dict[str, Any]) -> bool:
        return bool(state.get("router")) and fleet.alive(state["router"])

    def _taken_ports(self) -> set[int]:
        ports: set[int] = set()
        for name in self.store.names("endpoints"):
            other = self.store.get("endpoints", name)
            ports |= {p for p in [other.get("port"), *(v.get("port") for v in other.get("variants", []))] if p}
        return ports

    def _start_fleet(self, state: dict[str, Any], endpoint_config: dict[str, Any]) -> list[dict[str, Any]]:
        """Start one model server per production variant and health-check them all."""
        state["fleet_seq"] += 1
        fleet_id = f"f{state['fleet_seq']:04d}"
        started: list[dict[str, Any]] = []
        try:
            for variant in endpoint_config["ProductionVariants"]:
                model = self.store.get("models", variant["ModelName"])
                container = model.get("PrimaryContainer") or model["Containers"][0]
                name = fleet.process_name(state["EndpointName"], f"{variant['VariantName']}-{fleet_id}")
                port = fleet.free_port(
                    tuple(self.config.port_range), self._taken_ports() | {s["port"] for s in started}
                )
                record = fleet.start_container(
                    name=name,
                    model_data_url=container["ModelDataUrl"],
                    model_dir=self.store.container_dir(name) / "model",
                    port=port,
                    endpoint=state["EndpointName"],
                    variant=variant["VariantName"],
                    environment=container.get("Environment"),
                    max_payload_bytes=self.config.max_payload_bytes,
                    multi_model=container.get("Mode") == "MultiModel",
                )
                started.append(
                    {
                        **record,
                        "VariantName": variant["VariantName"],
                        "ModelName": variant["ModelName"],
                        "weight": float(variant.get("InitialVariantWeight", 1.0)),
                        "fleet": fleet_id,
                        "ModelDataUrl": container["ModelDataUrl"],
                    }
                )
            timeout = min(
                float(v.get("ContainerStartupHealthCheckTimeoutInSeconds", self.config.health_check_timeout_seconds))
                for v in endpoint_config["ProductionVariants"]
            )
            for record in started:
                fleet.wait_healthy(record, timeout)
        except Exception:
            for record in started:
                fleet.stop(record)
            raise
        return started

    def _start_endpoint(self, state: dict[str, Any], endpoint_config: dict[str, Any]) -> None:
        variants = self._start_fleet(state, endpoint_config)
        try:
            port = state.get("port")
            if not port or port in self._taken_ports() - {state.get("port")} or not processes.bindable(port):
                port = fleet.free_port(
                    tuple(self.config.port_range), self._taken_ports() | {v["port"] for v in variants}
                )
            state["port"] = port
            self._write_routes(
                state, {f"{v['fleet']}/{v['VariantName']}": v["weight"] for v in variants}, variants, endpoint_config
            )
            router = fleet.start_router(
                name=fleet.process_name(state["EndpointName"], "router"),
                state_file=self.store.path("endpoints", state["EndpointName"], ".routes.json"),
            )
            router["port"] = port
            fleet.wait_healthy(router, 30)
        except Exception:
            for record in variants:
                fleet.stop(record)
            raise
        state.update(
            variants=variants, router=router, EndpointStatus="InService", LastModifiedTime=now(), FailureReason=None
        )
        state["history"].append({"time": now(), "event": "created", "config": state["EndpointConfigName"]})
        self._save(state)

    def _write_routes(
        self,
        state: dict[str, Any],
        weights: dict[str, float],
        records: list[dict[str, Any]],
        endpoint_config: dict[str, Any],
    ) -> None:
        routes = [
            {
                "variant": r["VariantName"],
                "fleet": r["fleet"],
                "port": r["port"],
                "weight": weights.get(f"{r['fleet']}/{r['VariantName']}", 0.0),
            }
            for r in records
        ]
        self.store.put(
            "endpoints",
            state["EndpointName"],
            {
                "endpoint_name": state["EndpointName"],
                "port": state["port"],
                "routes": routes,
                "capture": self._capture(endpoint_config),
                "max_payload_bytes": self.config.max_payload_bytes,
            },
            suffix=".routes.json",
        )

    def _capture(self, endpoint_config: dict[str, Any]) -> dict[str, Any] | None:
        capture = endpoint_config.get("DataCaptureConfig")
        return capture if capture and capture.get("EnableCapture", True) else None

    def _route(
        self,
        state: dict[str, Any],
        weights: dict[str, float],
        records: list[dict[str, Any]],
        endpoint_config: dict[str, Any] | None = None,
    ) -> None:
        config = endpoint_config or self.store.get("endpoint-configs", state["EndpointConfigName"])
        self._write_routes(state, weights, records, config)
        fleet.admin(state["port"], "/_mlops/reload", method="POST")

    def _fleet_stats(self, state: dict[str, Any], records: list[dict[str, Any]]) -> tuple[int, int, int]:
        """(requests the model servers handled, their 5xx answers, requests in flight) of a fleet.

        Client errors (4xx: malformed bodies, bad headers) are neither errors nor handled requests, so a
        client can neither trip the rollback alarm nor dilute a real error rate.
        """
        stats = fleet.admin(state["port"], "/_mlops/state")["stats"]
        keys = {f"{r['VariantName']}/{r['fleet']}" for r in records}
        picked = [s for k, s in stats.items() if k in keys]
        return (
            sum(s["requests"] - s.get("client_errors", 0) for s in picked),
            sum(s["errors"] for s in picked),
            sum(s["inflight"] for s in picked),
        )

    def _drain_and_stop(self, state: dict[str, Any], records: list[dict[str, Any]]) -> None:
        deadline = time.monotonic() + DRAIN_SECONDS
        while time.monotonic() < deadline and self._fleet_stats(state, records)[2] > 0:
            time.sleep(0.05)
        for record in records:
            fleet.stop(record)  # SIGTERM: uvicorn finishes what it has in flight, then exits

    def _blue_green(self, state: dict[str, Any], new_config: dict[str, Any], deployment: dict[str, Any] | None) -> None:
        blue = state["variants"]
        old_config = self.store.get("endpoint-configs", state["EndpointConfigName"])
        try:
            plan = traffic_plan(deployment, green_instances=len(new_config["ProductionVariants"]))
            green = self._start_fleet(state, new_config)
        except (DeploymentError, ValueError) as exc:
            self._rolled_back(state, f"green failed its health check: {exc}")
        alarm = Alarm(threshold=self.config.rollback_error_rate)
        blue_weights = {f"{r['fleet']}/{r['VariantName']}": r["weight"] for r in blue}
        green_weights = {f"{r['fleet']}/{r['VariantName']}": r["weight"] for r in green}
        started = time.monotonic()
        baseline = self._fleet_stats(state, green)
        for share, seconds in zip(plan.steps, plan.bakes, strict=True):
            b, g = split_weights(blue_weights, green_weights, share)
            self._route(state, {**b, **g}, blue + green, new_config if share >= 1.0 else old_config)
            state["history"].append(
                {"time": now(), "event": f"shifted {share:.0%} to green", "config": new_config["EndpointConfigName"]}
            )
            self._save(state)

            def sample() -> tuple[int, int]:
                requests, errors, _ = self._fleet_stats(state, green)
                return requests - baseline[0], errors - baseline[1]

            reason = bake(seconds, alarm, sample, lambda: all(fleet.alive(r) for r in green))
            if reason is None and plan.max_seconds and time.monotonic() - started > plan.max_seconds:
                reason = f"deployment exceeded MaximumExecutionTimeoutInSeconds={plan.max_seconds:.0f}"
            if reason:
                self._route(state, blue_weights, blue, old_config)
                self._drain_and_stop(state, green)
                self._rolled_back(state, reason)
        self._route(state, green_weights, green, new_config)
        self._drain_and_stop(state, blue)
        state.update(
            variants=green,
            EndpointConfigName=new_config["EndpointConfigName"],
            EndpointStatus="InService",
            LastModifiedTime=now(),
            FailureReason=None,
            DeploymentConfig=deployment,
        )
        state["history"].append(
            {"time": now(), "event": "blue terminated; green serves", "config": new_config["EndpointConfigName"]}
        )
        self._save(state)

    def _rolled_back(self, state: dict[str, Any], reason: str) -> None:
        message = f"update rolled back ({reason}); {state['EndpointConfigName']} still serves"
        state.update(EndpointStatus="InService", FailureReason=message, LastModifiedTime=now())
        state["history"].append({"time": now(), "event": "rolled back", "reason": reason})
        self._save(state)
        raise DeploymentError(message)

    def _stop_all(self, state: dict[str, Any]) -> None:
        for record in [state.get("router"), *state.get("variants", [])]:
            if record:
                fleet.stop(record)

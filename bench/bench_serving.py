"""Serving benchmark: the ONNX model server against the stock-SageMaker-style sklearn baseline.

    PYTHONPATH=include:plugins .venv/bin/python bench/bench_serving.py [--seconds 8] [--rate 200]

Both servers are the same process (``python -m mlops.serving.server``: uvicorn + the plain
ASGI app + the SageMaker handler loader, in the SageMaker runtime ``.mlops/venvs/sagemaker`` as
local endpoints run it) on 127.0.0.1, started in this run on this machine; only the model
package differs. The model is the training stage's: ``train.py``'s LightGBM pipeline fitted on
synthetic curated features (``tests/jobs/sagemaker/model_packages.py``, run in that runtime):

- **onnx**: the package training writes, ``model.onnx`` + the real ``code/inference.py`` running
  onnxruntime (1 intra-op thread, numpy feeds, no pandas) — the package the pipeline deploys;
- **baseline**: the same fitted pipeline pickled with joblib + ``bench/sklearn_container_inference.py``,
  a handler that builds a pandas DataFrame per request and calls ``predict_proba``, the way the
  stock SageMaker scikit-learn container serves a model.

Per server, at batch 1 (one JSON row per request):

1. closed loop: ``--concurrency`` keep-alive clients send back to back for ``--seconds``
   -> max throughput, p50/p99;
2. open loop: requests scheduled at a fixed ``--rate`` for ``--seconds``; latency is measured
   from the scheduled send time (no coordinated omission) -> p50/p99 at that rate.

The ONNX model is also measured through a full local endpoint (router + model server), the
path boto3 ``invoke_endpoint`` takes. Goals: onnx throughput >= 3x baseline, onnx p99 < 10 ms at
200 requests/s. The run prints a table and a JSON line and exits 1 when a goal is missed.

``--raw-orders`` measures the ONNX model server with the online-store lookup (issue 18): a model trained on
a synthetic lake's curated table (every curated feature an input), the local online store filled with every
customer's and product's latest record, and the same test orders sent as curated rows and as raw orders
(featurized in ``inference.py`` with one BatchGetRecord per request); both request sets go to one server
process, alternating per fixed-rate run. See ``bench/serving_raw_orders.py``.

``--multi-model`` measures a multi-model container instead (``python -m mlops.serving.server
--multi-model``): ``--targets`` copies of the ONNX package under one prefix, each invoked with
``X-Amzn-SageMaker-Target-Model``. The first request to a target is **cold** (fetch, extract,
``model_fn``: an ONNX Runtime session); the first target of the process also pays the handler's
imports (numpy, onnxruntime) and is reported on its own. Then ``--warm-requests`` requests go round
robin to the loaded targets (**warm**). It prints cold and warm p50/p99 and the cold/warm ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "include"), str(ROOT / "plugins"), str(ROOT)]

from mlops.runtimes import runtime_python  # noqa: E402
from mlops.serving.upstream import UpstreamPool  # noqa: E402
from mlops.training import model_package  # noqa: E402

BODIES: list[bytes] = []  # one JSON row per request, filled by request_bodies()
HEADERS = {"content-type": "application/json", "accept": "application/json"}
BASELINE_HANDLER = ROOT / "bench" / "sklearn_container_inference.py"


def request_bodies(spec: dict[str, Any], rows: int = 64, seed: int = 99) -> list[bytes]:
    """Held-out rows of synthetic curated features, the model's columns only, one per request body."""
    from mlops.training.features import FeatureSpec, model_inputs
    from mlops.training.synthetic import curated_features

    frame = model_inputs(curated_features(rows, seed=seed), FeatureSpec.from_json(json.dumps(spec)))
    return [json.dumps({"instances": [row]}).encode() for row in json.loads(frame.to_json(orient="records"))]


def build_packages(work: Path) -> dict[str, Path]:
    """The ONNX package the training code writes, and the baseline package of the same fitted pipeline."""
    from tests.sagemaker_runtime import build_model_packages

    onnx = build_model_packages(work / "built", {"onnx": {"seed": 7, "native": True}})["onnx"]
    baseline = work / "baseline-package"
    (baseline / "code").mkdir(parents=True)
    shutil.copyfile(onnx["native_model"], baseline / "model.joblib")
    (baseline / "feature_spec.json").write_text(json.dumps(onnx["feature_spec"]))
    shutil.copyfile(BASELINE_HANDLER, baseline / "code" / "inference.py")
    (baseline / "code" / "requirements.txt").write_text("scikit-learn\nlightgbm\npandas\njoblib\n")
    BODIES[:] = request_bodies(onnx["feature_spec"])
    return {
        "onnx": Path(onnx["archive"]),
        "sklearn": model_package.tar_directory(baseline, work / "sklearn" / "model.tar.gz"),
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(archive: Path, workdir: Path, extra_env: dict[str, str] | None = None) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "include"), "MLOPS_ORT_THREADS": "1", "OMP_NUM_THREADS": "1"}
    env.update(extra_env or {})
    proc = subprocess.Popen(
        [
            runtime_python("sagemaker"),
            "-m",
            "mlops.serving.server",
            "--model-data",
            str(archive),
            "--model-dir",
            str(workdir / "model"),
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_ping(port, proc)
    return proc, port


def wait_ping(port: int, proc: subprocess.Popen | None = None, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not answer /ping")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def _one(pool: UpstreamPool, path: str, i: int) -> None:
    status, _, body = await pool.request(path, BODIES[i % len(BODIES)], HEADERS)
    if status != 200:
        raise RuntimeError(f"HTTP {status}: {body[:200]!r}")


async def closed_loop(port: int, path: str, seconds: float, concurrency: int) -> dict[str, float]:
    pool = UpstreamPool(port)
    for i in range(200):  # warm-up: connections, caches, the allocator
        await _one(pool, path, i)
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker(offset: int) -> None:
        i = offset
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await _one(pool, path, i)
            latencies.append(time.perf_counter() - started)
            i += concurrency

    started = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    elapsed = time.perf_counter() - started
    pool.close()
    return {
        "throughput_rps": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 50) * 1e3,
        "p99_ms": percentile(latencies, 99) * 1e3,
        "requests": len(latencies),
    }


async def open_loop(port: int, path: str, seconds: float, rate: float) -> dict[str, float]:
    pool = UpstreamPool(port)
    for i in range(100):
        await _one(pool, path, i)
    count = int(seconds * rate)
    latencies: list[float] = []
    errors = 0

    async def fire(i: int, scheduled: float) -> None:
        nonlocal errors
        try:
            await _one(pool, path, i)
        except Exception:
            errors += 1
            return
        latencies.append(time.perf_counter() - scheduled)

    # One pacing loop starts each request at its scheduled time; latency counts from that time, so a
    # late start (a stalled client or server) is measured, not hidden (no coordinated omission).
    start = time.perf_counter()
    tasks = []
    for i in range(count):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(fire(i, scheduled)))
    await asyncio.gather(*tasks)
    achieved = count / (time.perf_counter() - start)
    pool.close()
    return {
        "rate_rps": rate,
        "achieved_rps": achieved,
        "p50_ms": percentile(latencies, 50) * 1e3,
        "p99_ms": percentile(latencies, 99) * 1e3,
        "errors": errors,
        "requests": count,
    }


def scheduler_jitter(seconds: float = 2.0) -> dict[str, float]:
    """How late a 5 ms sleep wakes up on this machine right now: the floor under any tail latency."""
    late: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        time.sleep(0.005)
        late.append(time.perf_counter() - started - 0.005)
    return {"p50_ms": percentile(late, 50) * 1e3, "p99_ms": percentile(late, 99) * 1e3, "max_ms": max(late) * 1e3}


def _quiet(phase: Any) -> dict[str, float]:
    """Run one load phase with the load generator's cyclic GC off, so its pauses are not measured."""
    gc.collect()
    gc.disable()
    try:
        return asyncio.run(phase)
    finally:
        gc.enable()


def measure(port: int, path: str, args: argparse.Namespace, repeats: int | None = None) -> dict[str, dict[str, float]]:
    """Closed loop once; the fixed-rate phase ``repeats`` times, keeping the run with the median p99
    (every run's p99 is listed, so the spread a shared machine causes is visible)."""
    closed = _quiet(closed_loop(port, path, args.seconds, args.concurrency))
    runs = [_quiet(open_loop(port, path, args.seconds, args.rate)) for _ in range(repeats or args.repeats)]
    fixed = sorted(runs, key=lambda r: r["p99_ms"])[len(runs) // 2]
    return {"closed_loop": closed, "fixed_rate": {**fixed, "p99_ms_all_runs": [round(r["p99_ms"], 2) for r in runs]}}


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


def endpoint_run(archive: Path, home: Path, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """The ONNX package behind a full local endpoint (router + model server)."""
    os.environ["MLOPS_HOME"] = str(home)
    from mlops import processes
    from mlops.config import ServingConfig
    from mlops.serving.manager import LocalSageMaker

    manager = LocalSageMaker(ServingConfig(port_range=(29100, 29299)))
    manager.create_model(
        ModelName="bench",
        ExecutionRoleArn="arn:aws:iam::000000000000:role/x",
        PrimaryContainer={"Image": "local", "ModelDataUrl": archive.as_uri()},
    )
    manager.create_endpoint_config(
        EndpointConfigName="bench-1",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "bench",
                "InitialVariantWeight": 1.0,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    try:
        manager.create_endpoint(EndpointName="bench", EndpointConfigName="bench-1")
        port = manager.describe_endpoint("bench")["LocalPort"]
        return measure(port, "/endpoints/bench/invocations", args)
    finally:
        processes.stop_all(timeout=15)


def start_multi_model_server(prefix: Path, workdir: Path, max_models: int) -> tuple[subprocess.Popen, int]:
    """A multi-model container over ``prefix`` (no model loaded until its first request)."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "include"), "MLOPS_ORT_THREADS": "1", "OMP_NUM_THREADS": "1"}
    command = [runtime_python("sagemaker"), "-m", "mlops.serving.server", "--multi-model", "--model-data"]
    command += [prefix.as_uri() + "/", "--model-dir", str(workdir), "--port", str(port)]
    command += ["--max-models", str(max_models)]
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    wait_ping(port, proc)
    return proc, port


async def _target_latencies(port: int, targets: list[str]) -> list[float]:
    """One request per entry of ``targets``, back to back on one keep-alive connection; seconds each."""
    pool = UpstreamPool(port, timeout=120)
    latencies = []
    for i, target in enumerate(targets):
        started = time.perf_counter()
        status, _, body = await pool.request(
            "/invocations", BODIES[i % len(BODIES)], {**HEADERS, "x-amzn-sagemaker-target-model": target}
        )
        latencies.append(time.perf_counter() - started)
        if status != 200:
            raise RuntimeError(f"{target}: HTTP {status}: {body[:200]!r}")
    pool.close()
    return latencies


def multi_model_run(archive: Path, work: Path, targets: int, warm_requests: int) -> dict[str, Any]:
    """Cold (first request of each target) and warm (round robin over loaded targets) latencies."""
    prefix = work / "prefix"
    prefix.mkdir()
    names = [f"v{i}.tar.gz" for i in range(1, targets + 1)]
    for name in names:
        shutil.copyfile(archive, prefix / name)
    proc, port = start_multi_model_server(prefix, work / "mme-server", max_models=targets)
    try:
        cold = _quiet(_target_latencies(port, names))
        warm = _quiet(_target_latencies(port, [names[i % targets] for i in range(warm_requests)]))
    finally:
        stop(proc)
    first, rest = cold[0], cold[1:]
    summary = {
        "first_target_ms": first * 1e3,
        "cold_p50_ms": percentile(rest, 50) * 1e3,
        "cold_p99_ms": percentile(rest, 99) * 1e3,
        "warm_p50_ms": percentile(warm, 50) * 1e3,
        "warm_p99_ms": percentile(warm, 99) * 1e3,
        "targets": targets,
        "warm_requests": warm_requests,
        "package_bytes": archive.stat().st_size,
    }
    summary["cold_warm_ratio_p50"] = summary["cold_p50_ms"] / summary["warm_p50_ms"]
    return summary


def multi_model_main(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="bench-serving-mme-") as tmp:
        work = Path(tmp)
        archive = build_packages(work)["onnx"]
        result = multi_model_run(archive, work, args.targets, args.warm_requests)
    load = os.getloadavg()[0]
    print(
        f"\nMulti-model container on {platform.machine()} ({os.cpu_count()} CPUs, load average {load:.1f}), Python "
        f"{platform.python_version()}; {result['targets']} target models (the ONNX package, "
        f"{result['package_bytes']} bytes each), batch 1 JSON, one client\n"
    )
    print("| request | p50 ms | p99 ms |\n|---|---|---|")
    first = f"{result['first_target_ms']:.1f}"
    print(f"| first target of the process (imports numpy + onnxruntime, then loads) | {first} | - |")
    cold = f"{result['cold_p50_ms']:.2f} | {result['cold_p99_ms']:.2f}"
    print(f"| cold target (fetch, extract, model_fn) x{result['targets'] - 1} | {cold} |")
    print(f"| warm target x{result['warm_requests']} | {result['warm_p50_ms']:.2f} | {result['warm_p99_ms']:.2f} |")
    print(f"\ncold / warm (p50): {result['cold_warm_ratio_p50']:.1f}x")
    print(json.dumps({"multi_model": result, "load_average": load}))
    return 0


def raw_orders_main(args: argparse.Namespace) -> int:
    """The same model server answering curated rows and raw orders (online-store lookup), in one run."""
    from serving_raw_orders import PREFIX, build

    load_at_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-serving-raw-") as tmp:
        work = Path(tmp)
        setup = build(work, args.orders, requests=500)
        env = {"MLOPS_ONLINE_STORE": str(setup["store"]), "MLOPS_FEATURE_GROUP_PREFIX": PREFIX}
        proc, port = start_server(setup["archive"], work / "server", env)
        results: dict[str, dict[str, Any]] = {"featurized": {"runs": []}, "raw": {"runs": []}}
        try:
            for kind in results:  # closed loop once each, then the fixed-rate runs alternate
                BODIES[:] = setup["bodies"][kind]
                results[kind]["closed_loop"] = _quiet(closed_loop(port, "/invocations", args.seconds, args.concurrency))
            for _ in range(args.repeats):
                for kind in results:
                    BODIES[:] = setup["bodies"][kind]
                    results[kind]["runs"].append(_quiet(open_loop(port, "/invocations", args.seconds, args.rate)))
        finally:
            stop(proc)
    for r in results.values():
        runs = r.pop("runs")
        median = sorted(runs, key=lambda run: run["p99_ms"])[len(runs) // 2]
        r["fixed_rate"] = {**median, "p99_ms_all_runs": [round(run["p99_ms"], 2) for run in runs]}
    load = os.getloadavg()[0]
    print(
        f"\nRaw orders vs curated rows, one ONNX model server ({setup['features']} model inputs, online store "
        f"of {setup['records']:,} records, lake of {args.orders:,} orders) on {platform.machine()} "
        f"({os.cpu_count()} CPUs, load average {load_at_start:.1f} -> {load:.1f}), Python "
        f"{platform.python_version()}; batch 1 JSON; closed loop {args.concurrency} clients "
        f"x {args.seconds:.0f}s; fixed rate {args.rate:.0f}/s x {args.seconds:.0f}s, "
        f"{args.repeats} runs each (median p99 shown)\n"
    )
    print(
        "| request | max req/s | p50 ms | p99 ms | served @rate | p50 ms @rate | p99 ms @rate | errors "
        "| p99 of each run |\n|---|---:|---:|---:|---:|---:|---:|---:|---|"
    )
    for kind, r in results.items():
        c, f = r["closed_loop"], r["fixed_rate"]
        print(
            f"| {kind} | {c['throughput_rps']:.0f} | {c['p50_ms']:.2f} | {c['p99_ms']:.2f} | {f['achieved_rps']:.0f} | "
            f"{f['p50_ms']:.2f} | {f['p99_ms']:.2f} | {int(f['errors'])} | "
            f"{', '.join(f'{v:.1f}' for v in f['p99_ms_all_runs'])} |"
        )
    ratio = results["raw"]["fixed_rate"]["p99_ms"] / results["featurized"]["fixed_rate"]["p99_ms"]
    print(f"\nraw / featurized p99 at {args.rate:.0f} req/s: {ratio:.2f}x")
    print(json.dumps({"raw_orders": results, "p99_ratio": ratio, "load_average": [load_at_start, load]}))
    errors = sum(r["fixed_rate"]["errors"] for r in results.values())
    return 0 if errors == 0 and results["raw"]["fixed_rate"]["p99_ms"] < 10.0 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="duration of each load phase")
    parser.add_argument("--rate", type=float, default=200.0, help="fixed request rate for the latency phase")
    parser.add_argument("--concurrency", type=int, default=8, help="closed-loop clients")
    parser.add_argument("--repeats", type=int, default=3, help="fixed-rate runs per server (median p99 reported)")
    parser.add_argument("--skip-endpoint", action="store_true", help="skip the router + model server measurement")
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="run this process and both servers at this nice value (e.g. -10, needs "
        "root): on a shared box it keeps other jobs from dominating the tail; applies to baseline and onnx alike",
    )
    parser.add_argument("--multi-model", action="store_true", help="measure cold and warm target models instead")
    parser.add_argument("--targets", type=int, default=20, help="--multi-model: target models under the prefix")
    parser.add_argument("--warm-requests", type=int, default=2000, help="--multi-model: warm requests")
    parser.add_argument("--raw-orders", action="store_true", help="measure raw orders (online-store lookup) instead")
    parser.add_argument("--orders", type=int, default=5000, help="--raw-orders: orders in the synthetic lake")
    args = parser.parse_args(argv)
    if args.raw_orders:
        return raw_orders_main(args)
    if args.multi_model:
        return multi_model_main(args)
    if args.nice:
        os.nice(args.nice)  # children (both servers, the router) inherit it
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    load_at_start = os.getloadavg()[0]
    jitter = scheduler_jitter()
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        work = Path(tmp)
        packages = build_packages(work)
        results: dict[str, dict[str, dict[str, float]]] = {}
        for name, kind in (("baseline (sklearn + pandas)", "sklearn"), ("onnx", "onnx")):
            proc, port = start_server(packages[kind], work / f"{kind}-server")
            try:
                # the baseline cannot sustain the rate at all; one overloaded run says as much
                results[name] = measure(port, "/invocations", args, repeats=1 if kind == "sklearn" else None)
            finally:
                stop(proc)
        if not args.skip_endpoint:
            results["onnx via endpoint router"] = endpoint_run(packages["onnx"], work / "home", args)

    base = results["baseline (sklearn + pandas)"]["closed_loop"]["throughput_rps"]
    onnx = results["onnx"]
    ratio = onnx["closed_loop"]["throughput_rps"] / base
    load = os.getloadavg()
    print(
        f"\nServing benchmark on {platform.machine()} ({os.cpu_count()} CPUs, load average {load[0]:.1f} at the "
        f"end, {load_at_start:.1f} at the start; nice {os.nice(0)}), Python {platform.python_version()}; "
        f"batch 1 JSON; closed loop {args.concurrency} clients x {args.seconds:.0f}s; fixed rate {args.rate:.0f}/s x "
        f"{args.seconds:.0f}s\n"
    )
    at = f"@{args.rate:.0f}/s"
    header = (
        f"| {'server':28} | {'max req/s':>9} | {'p50 ms':>6} | {'p99 ms':>6} | {'served ' + at:>13} "
        f"| {'p50 ms ' + at:>13} | {'p99 ms ' + at:>13} | errors | p99 ms of each fixed-rate run |"
    )
    print(
        f"scheduler wake-up lateness of a 5 ms sleep before the run: p50 {jitter['p50_ms']:.2f} ms, "
        f"p99 {jitter['p99_ms']:.2f} ms, max {jitter['max_ms']:.2f} ms\n"
    )
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    for name, r in results.items():
        c, f = r["closed_loop"], r["fixed_rate"]
        print(
            f"| {name:28} | {c['throughput_rps']:9.0f} | {c['p50_ms']:6.2f} | {c['p99_ms']:6.2f} | "
            f"{f['achieved_rps']:13.0f} | {f['p50_ms']:13.2f} | {f['p99_ms']:13.2f} | {int(f['errors']):6d} | "
            f"{', '.join(f'{v:.1f}' for v in f['p99_ms_all_runs'])} |"
        )
    goals = {
        "throughput_ratio": ratio,
        "ratio_goal_met": ratio >= 3.0,
        "p99_at_rate_ms": onnx["fixed_rate"]["p99_ms"],
        "p99_goal_met": onnx["fixed_rate"]["p99_ms"] < 10.0,
    }
    print(
        f"\nonnx / baseline throughput: {ratio:.1f}x (goal >= 3x: {'met' if goals['ratio_goal_met'] else 'MISSED'}); "
        f"onnx p99 at {args.rate:.0f} req/s: {goals['p99_at_rate_ms']:.2f} ms "
        f"(goal < 10 ms: {'met' if goals['p99_goal_met'] else 'MISSED'})"
    )
    print(
        json.dumps({"results": results, "load_average": [load_at_start, load[0]], "scheduler_jitter": jitter, **goals})
    )
    return 0 if goals["ratio_goal_met"] and goals["p99_goal_met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())

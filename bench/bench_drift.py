"""Benchmark: the drift job over one window of captured traffic (1M capture records by default).

For each size it writes an hour of data capture in SageMaker's JSONL layout (one request of one
row per record, JSON, with the model's answer; not timed) and a baseline from 28k training rows
(the baseline processing job; not timed), then runs the drift job exactly as the monitor does: the
CreateProcessingJob request built by :func:`mlops.monitoring.steps.drift_request`, executed by
the local processing runner (a ``python3 drift_job.py`` subprocess in an ``/opt/ml`` job
directory: staging inputs, parsing, statistics, checks, report, publishing outputs). It reports
wall time, the job's own read/total split, and peak resident memory of the process tree.

Side by side in the same run (issue 15.2): today's reader (``capture_reader.read_folder`` over the
same capture folder) against the reader it replaced (``bench/legacy_capture_reader.py``, two
``json.loads`` per record and ``DataFrame.from_records``), each alone in a fresh SageMaker-runtime
process: wall and CPU seconds and the process's peak RSS. Every measurement is repeated
``--repeats`` times; the medians are reported (the machine is shared).

Baseline for the distance ratio: the exact two-sample KS statistic (``scipy.stats.ks_2samp`` on the
full training column vs the window) per numeric feature, against our L-inf from the baseline's KLL
sketch: time ratio and the largest absolute difference of the statistic.

    PYTHONPATH=include .venv/bin/python bench/bench_drift.py --records 100000 1000000 --repeats 3

The result replaces the "Monitoring" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "include"))

from benchmarks_md import write_section  # noqa: E402  (bench/ is on the path: the script's folder)

from mlops.config import PipelineConfig  # noqa: E402
from mlops.lake import Lake, local_path  # noqa: E402
from mlops.monitoring import baseline_steps, steps  # noqa: E402
from mlops.monitoring.drift import numeric_distance  # noqa: E402
from mlops.monitoring.statistics import typed_column  # noqa: E402
from mlops.monitoring.traffic import drift_rows  # noqa: E402
from mlops.serving.capture import capture_key  # noqa: E402
from mlops.training.synthetic import curated_features, write_dataset  # noqa: E402

SECTION = "## Monitoring"
ENDPOINT = "bench-orders"
START = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)
NUMERIC = ["basket_value", "basket_units", "prior_orders", "prior_returns", "days_since_prev_order", "has_fragile"]
CATEGORICAL = ["channel", "payment_method", "shipping_method", "country", "top_category"]
ANSWER = json.dumps(json.dumps({"predictions": [{"label": "delivered", "probabilities": {"delivered": 0.9}}]}))


def write_capture(lake: Lake, records: int, per_file: int = 2000) -> int:  # returns rows written
    """``records`` one-row capture lines over one hour (half of them drifted), in files of ``per_file``."""
    frame = curated_features(records, seed=11, decimals=False)[NUMERIC + CATEGORICAL]
    half = records // 2
    drifted = drift_rows(frame.iloc[half:], NUMERIC, CATEGORICAL, strength=0.6, seed=3)
    bodies = (
        frame.iloc[:half].to_json(orient="records", lines=True).splitlines()
        + drifted.to_json(orient="records", lines=True).splitlines()
    )
    root = local_path(lake.capture())
    step = 3600.0 / records
    for first in range(0, records, per_file):
        lines = []
        for i in range(first, min(first + per_file, records)):
            when = START + timedelta(seconds=i * step)
            stamp = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
            data = json.dumps('{"instances":[' + bodies[i] + "]}")
            lines.append(
                '{"captureData":{"endpointInput":{"observedContentType":"application/json","mode":"INPUT","data":'
                f'{data},"encoding":"JSON"}},"endpointOutput":{{"observedContentType":"application/json",'
                f'"mode":"OUTPUT","data":{ANSWER},"encoding":"JSON"}}}},"eventMetadata":{{"eventId":"e{i}",'
                f'"inferenceTime":"{stamp}"}},"eventVersion":"0"}}'
            )
        folder = root / capture_key(ENDPOINT, "AllTraffic", when)
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{when:%M-%S}-{when.microsecond // 1000:03d}-{first:08d}.jsonl"
        (folder / name).write_text("\n".join(lines) + "\n")
    return len(bodies)


def spec_package(path: Path, spec: dict) -> None:
    """A model.tar.gz holding only feature_spec.json (all the drift job reads from a model)."""
    import io
    import tarfile

    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(spec).encode()
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("feature_spec.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def peak_rss(stop: threading.Event, peak: list[float]) -> None:
    me = psutil.Process()
    while not stop.wait(0.2):
        try:
            total = sum(p.memory_info().rss for p in [me, *me.children(recursive=True)])
        except psutil.Error:
            continue
        peak[0] = max(peak[0], total / 2**30)


READER_SCRIPT = """
import json, sys, time
from datetime import datetime
from pathlib import Path
sys.path.insert(0, sys.argv[1])
module = __import__(sys.argv[2])
columns, categorical = json.loads(sys.argv[4]), json.loads(sys.argv[5])
start, end = datetime.fromisoformat(sys.argv[6]), datetime.fromisoformat(sys.argv[7])
kwargs = {"categorical": categorical} if sys.argv[2] == "capture_reader" else {}
wall, cpu = time.perf_counter(), time.process_time()
window = module.read_folder(Path(sys.argv[3]), columns, start, end, **kwargs)
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the (large) parent across fork + exec
peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) / 2**20
print(json.dumps({"wall": wall, "cpu": cpu, "peak_gib": peak, "rows": len(window.frame)}))
"""


def reader_run(which: str, capture: Path, start: datetime) -> dict:
    """One read of the window's capture by ``which`` reader ("today" / "before") in a fresh runtime process."""
    from mlops.runtimes import runtime_python

    folder, module = (
        (ROOT / "include" / "mlops" / "monitoring", "capture_reader")
        if which == "today"
        else (ROOT / "bench", "legacy_capture_reader")
    )
    argv = [str(folder), module, str(capture), json.dumps(NUMERIC + CATEGORICAL), json.dumps(CATEGORICAL)]
    argv += [start.isoformat(), (start + timedelta(hours=1)).isoformat()]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "include")}
    done = subprocess.run(
        [runtime_python("sagemaker"), "-c", READER_SCRIPT, *argv], capture_output=True, text=True, env=env, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{which} reader failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def median_of(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def run(records: int, workdir: Path, repeats: int = 3) -> dict:
    os.environ["MLOPS_HOME"] = str(workdir / "home")
    config = PipelineConfig.model_validate(
        {
            "lake": {"local_root": str(workdir / "lake")},
            "serving": {"endpoint_name": ENDPOINT},
            "monitoring": {"image_uri": "local/sklearn:1.2-1"},
        }
    )
    lake = Lake.for_target(config, "local")
    training = curated_features(40_000, seed=1, decimals=False)
    uri = lake.curated("features")
    write_dataset(training, local_path(uri))
    spec = {"numeric": NUMERIC, "categorical": CATEGORICAL}
    model_uri = lake.models("bench", "output", "model.tar.gz")
    spec_package(local_path(model_uri), spec)
    model = {"version": "1", "model_data_url": model_uri, "model_package_group": "bench"}
    from mlops.sagemaker_local import run_processing_job

    baseline = baseline_steps.ensure_baseline(
        config, lake, model, run_job=run_processing_job, run_id="bench-baseline", run_after=START, training_uri=uri
    )
    started = time.monotonic()
    write_capture(lake, records)
    write_seconds = time.monotonic() - started
    capture_bytes = sum(p.stat().st_size for p in local_path(lake.capture()).rglob("*.jsonl"))

    window = {"window_start": START.isoformat(), "window_end": (START + timedelta(hours=1)).isoformat()}
    jobs = [drift_job_run(config, lake, model, baseline, window, records) for _ in range(repeats)]
    summary = jobs[-1]["summary"]
    capture = local_path(lake.capture(ENDPOINT))
    readers = {}
    for which in ("today", "before"):
        runs = [reader_run(which, capture, START) for _ in range(repeats)]
        if {r["rows"] for r in runs} != {records}:
            raise RuntimeError(f"the {which} reader read {[r['rows'] for r in runs]} rows, not {records}")
        readers[which] = {key: median_of(runs, key) for key in ("wall", "cpu", "peak_gib")}
        readers[which]["walls"] = [round(r["wall"], 1) for r in runs]

    # Baseline for the ratio: exact KS (scipy) on the full training column vs a 100k-row window sample.
    from scipy.stats import ks_2samp

    stats = json.loads(local_path(baseline["statistics_uri"]).read_text())
    sketches = {
        f["name"]: f["numerical_statistics"]["distribution"]["kll"]["sketch"]
        for f in stats["features"]
        if "numerical_statistics" in f
    }
    train = training[training.split == "train"]
    window_frame = curated_features(100_000, seed=11, decimals=False)
    exact_s = ours_s = 0.0
    worst = 0.0
    for name in NUMERIC:
        base = typed_column(train[name]).numbers
        current = typed_column(window_frame[name]).numbers
        t = time.perf_counter()
        exact = ks_2samp(base, current).statistic
        exact_s += time.perf_counter() - t
        t = time.perf_counter()
        ours = numeric_distance(sketches[name], current)[0]
        ours_s += time.perf_counter() - t
        worst = max(worst, abs(exact - ours))
    return {
        "records": records,
        "capture_mib": capture_bytes / 2**20,
        "write_s": write_seconds,
        "seconds": median_of(jobs, "seconds"),
        "records_per_s": records / median_of(jobs, "seconds"),
        "read_s": median_of(jobs, "read_s"),
        "job_s": median_of(jobs, "job_s"),
        "job_walls": [round(j["job_s"], 1) for j in jobs],
        "peak_gib": median_of(jobs, "peak_gib"),
        "json_library": summary.get("json_library", "json"),
        "readers": readers,
        "rows": summary["rows"],
        "drift_share": summary["drift_share"],
        "ks_exact_s": exact_s,
        "ks_sketch_s": ours_s,
        "ks_max_diff": worst,
    }


def drift_job_run(config: PipelineConfig, lake: Lake, model: dict, baseline: dict, window: dict, records: int) -> dict:
    """The drift job as the monitor runs it (request -> local processing runner), with the tree's peak RSS."""
    from mlops.sagemaker_local import run_processing_job

    stop, peak = threading.Event(), [0.0]
    sampler = threading.Thread(target=peak_rss, args=(stop, peak), daemon=True)
    sampler.start()
    started = time.monotonic()
    keys = steps.list_capture_keys(lake.capture(ENDPOINT))
    request = steps.drift_request(
        config,
        lake,
        run_id=f"bench-{records}",
        run_after=START,
        model=model,
        baseline=baseline,
        window=window,
        folders=steps.window_folders(keys, window["window_start"], window["window_end"]),
        image="local",
        code_uri=steps.publish_code(lake),
    )
    described = run_processing_job(request)
    seconds = time.monotonic() - started
    stop.set()
    if described["ProcessingJobStatus"] != "Completed":
        raise RuntimeError(described.get("FailureReason"))
    summary = json.loads(local_path(steps.job_outputs(described)["drift_summary_uri"]).read_text())
    return {
        "seconds": seconds,
        "read_s": summary["seconds"]["read"],
        "job_s": summary["seconds"]["total"],
        "peak_gib": peak[0],
        "summary": summary,
    }


def render(results: list[dict], command: str, load: str) -> str:
    lines = [
        SECTION,
        "",
        f"`{command}` on {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{datetime.now(UTC):%Y-%m-%d}, load average {load}. One window (1 hour) of data capture, one JSON "
        "request of one row per record (half drifted), 11 features. **Job**: the drift job as the monitor runs it "
        "(the CreateProcessingJob request executed by the local processing runner: subprocess, /opt/ml staging, "
        "outputs published); peak RSS of the benchmark's process tree. **Readers, side by side**: today's "
        "capture reader and the one it replaced (`bench/legacy_capture_reader.py`), each reading the same window "
        "alone in a fresh SageMaker-runtime process; peak RSS of that process. Medians of the repeats.",
        "",
        "| capture records | capture size | job wall (runner) | in job: read / total | job peak RSS | drift share "
        "| reader today: wall / CPU / peak RSS | reader before: wall / CPU / peak RSS | speed-up (wall) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        today, before = r["readers"]["today"], r["readers"]["before"]
        lines.append(
            f"| {r['records']:,} | {r['capture_mib']:.0f} MiB | {r['seconds']:.1f} s | "
            f"{r['read_s']:.1f} s / {r['job_s']:.1f} s | {r['peak_gib']:.2f} GiB | {r['drift_share']:.2f} | "
            f"{today['wall']:.1f} s / {today['cpu']:.1f} s / {today['peak_gib']:.2f} GiB | "
            f"{before['wall']:.1f} s / {before['cpu']:.1f} s / {before['peak_gib']:.2f} GiB | "
            f"{before['wall'] / today['wall']:.1f}x |"
        )
    r = results[-1]
    lines += [
        "",
        "Each repeat (in-job total / reader today / reader before, s): "
        + "; ".join(
            f"{x['records']:,}: {x['job_walls']} / {x['readers']['today']['walls']} / {x['readers']['before']['walls']}"
            for x in results
        )
        + f". JSON parser in the job: {r['json_library']}.",
        "",
        "Distance computation vs the exact baseline (6 numeric features, 28k training rows vs a 100k-row window): "
        f"sketch-based L∞ {r['ks_sketch_s'] * 1000:.0f} ms vs `scipy.stats.ks_2samp` {r['ks_exact_s'] * 1000:.0f} ms "
        f"(ratio {r['ks_exact_s'] / max(r['ks_sketch_s'], 1e-9):.1f}x), largest difference in the KS statistic "
        f"{r['ks_max_diff']:.4f} (the sketch keeps 2,048 of the baseline's values).",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each measurement (medians are reported)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args()
    load_before = " ".join(f"{x:.1f}" for x in os.getloadavg())
    results = []
    for records in args.records:
        with tempfile.TemporaryDirectory(prefix="bench-drift-") as tmp:
            result = run(records, Path(tmp), args.repeats)
        print(json.dumps(result), flush=True)
        results.append(result)
    command = "PYTHONPATH=include .venv/bin/python bench/bench_drift.py " + " ".join(sys.argv[1:])
    load = f"{load_before} before, {' '.join(f'{x:.1f}' for x in os.getloadavg())} after"
    section = render(results, command, load)
    print(section)
    if not args.no_write:
        write_section(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())

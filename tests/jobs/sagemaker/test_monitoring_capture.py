"""The drift job's capture reader: SageMaker data-capture JSONL (JSON and CSV requests) back into the
rows that were sent, records outside the window skipped, and garbage lines quarantined, never fatal
(issue 13.6); the JSON fallback parser agrees with orjson, and chunked reading with whole-file reading
(Hypothesis, issue 13.9).

Job code, in-process: runs in the SageMaker runtime (``tests/jobs/sagemaker``)."""

from __future__ import annotations

import base64
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops.lake import local_path
from mlops.monitoring import capture_lines, capture_reader, drift_job
from mlops.monitoring.baseline import compute_baseline
from tests.jobs.sagemaker.monitoring_fixtures import capture_line, curated, make_lake, write_capture

ENDPOINT = "mlops-orders"
T0 = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)
EXAMPLES = settings(max_examples=120, deadline=None)


def test_capture_reader_json_csv_and_window(tmp_path):
    _, lake = make_lake(tmp_path)
    _, frame, spec = curated(lake, rows=400)
    columns = spec["numeric"] + spec["categorical"]
    held_out = frame[frame.split == "test"][columns]
    write_capture(lake, ENDPOINT, held_out.iloc[:20], T0, batch=5)
    write_capture(lake, ENDPOINT, held_out.iloc[20:40], T0 + timedelta(hours=1), batch=5, csv=True)
    root = local_path(lake.capture(ENDPOINT))
    everything = capture_reader.read_folder(root, columns, categorical=spec["categorical"])
    assert everything.records == 8 and len(everything.frame) == 40 and everything.malformed == 0
    assert list(everything.frame.columns) == columns and everything.predicted_labels == 40
    sent = held_out.iloc[:20].reset_index(drop=True)
    read = everything.frame.iloc[:20]
    assert np.allclose(read["basket_value"].astype(float), sent["basket_value"])
    assert list(read["channel"].astype(object)) == list(sent["channel"])
    first_hour = capture_reader.read_folder(root, columns, T0, T0 + timedelta(hours=1))
    assert first_hour.records == 4 and first_hour.skipped_records == 4
    assert first_hour.variants == {"AllTraffic": 4}
    broken = capture_reader.read_window(io.StringIO('not json\n{"eventMetadata": {}}\n'), columns)
    assert broken.malformed == 2 and broken.frame.empty


def _good(i: int, columns: list[str], when: datetime = T0) -> bytes:
    row = {c: (i if n < 3 else "web") for n, c in enumerate(columns)}
    body = json.dumps({"instances": [row]})
    return json.dumps(capture_line(body, "application/json", 1, when + timedelta(seconds=i), f"e{i}")).encode()


def _garbage(columns: list[str]) -> dict[str, bytes]:
    """One line per kind of garbage a capture file can hold, keyed by the reason it must be quarantined for."""
    good = json.loads(_good(0, columns))

    def record(**changes) -> bytes:
        data = json.loads(json.dumps(good))
        data["captureData"]["endpointInput"].update(changes)
        return json.dumps(data).encode()

    return {
        "not UTF-8": b'{"captureData": {"endpointInput": {"data": "\xff\xfe"}}}',
        "not JSON": _good(1, columns)[:57],  # truncated mid-record
        "not a capture record": b'{"eventVersion": "0"}',
        "bad inferenceTime": _good(2, columns).replace(b"2026-11-24T17:00:02.000Z", b"yesterday"),
        "request not JSON": record(data='{"instances": [{"basket_value": 1'),
        "request shape": record(data='{"instances": [3, "x"]}'),
        "request undecodable": record(data="!!!not-base64", encoding="BASE64"),
        "request malformed": record(data=["not", "text"]),
    }


def test_garbage_lines_are_quarantined_with_their_reason(tmp_path):
    """Issue 13.6: each unreadable line is counted, written aside with its reason, and the rest is read."""
    columns = ["basket_value", "basket_units", "prior_orders", "channel"]
    garbage = _garbage(columns)
    folder = tmp_path / "capture" / "AllTraffic" / "2026" / "11" / "24" / "17"
    folder.mkdir(parents=True)
    lines = [_good(10, columns), *garbage.values(), _good(11, columns), b"x" * 5000, _good(12, columns)]
    (folder / "00-00-000-a.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    quarantine = capture_lines.Quarantine(tmp_path / "out" / "quarantined.jsonl")
    window = capture_reader.read_folder(
        tmp_path / "capture",
        columns,
        categorical=["channel"],
        quarantine=quarantine,
        chunk_bytes=512,
        max_line_bytes=4096,
    )
    assert window.records == 3 and len(window.frame) == 3
    assert list(window.frame["basket_value"]) == [10.0, 11.0, 12.0]
    expected = {kind: 1 for kind in garbage} | {"line too long": 1}
    assert dict(quarantine.by_reason) == expected
    written = [json.loads(line) for line in (tmp_path / "out" / "quarantined.jsonl").read_text().splitlines()]
    assert [w["line"] for w in written] == [2, 3, 4, 5, 6, 7, 8, 9, 11]
    assert all(w["source"] == "AllTraffic/2026/11/24/17/00-00-000-a.jsonl" and w["reason"] for w in written)
    assert base64.b64decode(written[0]["data"]) == garbage["not UTF-8"]  # the bytes, as they were
    assert written[1]["data"].encode() == garbage["not JSON"]
    offsets = [sum(len(x) + 1 for x in lines[: w["line"] - 1]) for w in written]
    assert [w["offset"] for w in written] == offsets


@pytest.fixture
def baseline_dir(tmp_path) -> Path:
    _, lake = make_lake(tmp_path)
    _, frame, spec = curated(lake, rows=2000)
    stats, constraints = compute_baseline(frame[frame.split == "train"], spec["numeric"], spec["categorical"])
    folder = tmp_path / "baseline"
    folder.mkdir()
    (folder / "statistics.json").write_text(json.dumps(stats))
    (folder / "constraints.json").write_text(json.dumps(constraints))
    (folder / "feature_spec.json").write_text(json.dumps(spec))
    write_capture(lake, ENDPOINT, frame[frame.split == "test"][spec["numeric"] + spec["categorical"]], T0, batch=5)
    return folder


def test_a_non_utf8_line_no_longer_fails_the_drift_job(baseline_dir, tmp_path):
    """Issue 13.6 row: one non-UTF-8 line made the drift job fail on every retry. Now the window is
    analysed; the line is quarantined and reported in drift_summary.json, the report and the job log."""
    capture = local_path(make_lake(tmp_path)[1].capture(ENDPOINT))
    first = sorted(capture.rglob("*.jsonl"))[0]
    first.write_bytes(first.read_bytes() + b'{"captureData": "caf\xe9"}\n{"truncated": \n')
    output = tmp_path / "out"
    args = drift_job.parse_args(
        [
            f"--baseline={baseline_dir}",
            f"--capture={capture}",
            f"--output={output}",
            f"--window-start={T0.isoformat()}",
            f"--window-end={(T0 + timedelta(hours=2)).isoformat()}",
            f"--failure-file={tmp_path / 'failure'}",
            "--min-window-records=10",
        ]
    )
    summary = drift_job.analyse(args)
    assert summary["malformed_records"] == 2 and summary["rows"] > 200 and not summary["insufficient"]
    assert summary["quarantined"]["by_reason"] == {"not JSON": 1, "not UTF-8": 1}
    assert summary["quarantined"]["file"] == drift_job.QUARANTINE_FILE
    assert len((output / drift_job.QUARANTINE_FILE).read_text().splitlines()) == 2
    assert "Quarantined capture lines" in (output / "report.html").read_text()
    assert json.loads((output / "drift_summary.json").read_text())["quarantined"]["total"] == 2


# ---- properties (Hypothesis) -------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)


@pytest.mark.skipif(capture_lines.orjson_loads is None, reason="orjson is not installed")
@EXAMPLES
@given(
    st.one_of(
        json_values.map(lambda v: json.dumps(v).encode()),
        st.binary(max_size=60),
        st.text(max_size=40).map(lambda t: t.encode("utf-8", "surrogatepass")),
    )
)
def test_the_stdlib_fallback_agrees_with_orjson(data):
    """On the AWS processing image (no orjson) the job parses with json; both accept and refuse the same lines."""
    try:
        expected = capture_lines.orjson_loads(data)
    except ValueError:
        with pytest.raises(ValueError):
            capture_lines.stdlib_loads(data)
        return
    assert capture_lines.stdlib_loads(data) == expected


@EXAMPLES
@given(
    st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=12),
    st.integers(1, 64),
    st.integers(8, 48),
    st.booleans(),
)
def test_chunked_lines_match_whole_file_lines(lines, chunk, max_line, final_newline):
    data = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    got = list(capture_lines.file_lines(io.BytesIO(data), chunk, max_line))
    expected, offset = [], 0
    parts = data.split(b"\n")
    if parts and parts[-1] == b"":
        parts.pop()
    for number, part in enumerate(parts, 1):
        complete = len(part) <= max_line
        expected.append(
            (number, offset, part if complete else part[: capture_lines.QUARANTINED_PREFIX_BYTES], complete)
        )
        offset += len(part) + 1
    assert got == expected


@EXAMPLES
@given(
    st.lists(
        st.one_of(
            st.integers(0, 40).map(lambda i: ("good", i)),
            st.binary(max_size=80).map(lambda b: ("raw", b.replace(b"\n", b""))),
        ),
        max_size=25,
    ),
    st.integers(16, 4096),
)
def test_any_capture_bytes_are_read_or_quarantined_never_fatal(tmp_path_factory, items, chunk):
    """Every non-blank line is a record (in or outside the window) or quarantined; good rows all arrive."""
    columns = ["basket_value", "basket_units", "prior_orders", "channel"]
    root = tmp_path_factory.mktemp("capture")
    lines = [_good(v, columns) if kind == "good" else v for kind, v in items]
    (root / "f.jsonl").write_bytes(b"\n".join(lines))
    window = capture_reader.read_folder(
        root, columns, T0, T0 + timedelta(seconds=30), categorical=["channel"], chunk_bytes=chunk
    )
    blank = sum(1 for line in lines if not line.strip())
    assert window.records + window.skipped_records + window.malformed == len(lines) - blank
    good_in_window = sorted(float(v) for kind, v in items if kind == "good" and v < 30)
    assert sorted(window.frame["basket_value"].astype(float)) == good_in_window[: len(window.frame)]
    assert window.records >= len(good_in_window)

"""The drift job's capture reader: SageMaker data-capture JSONL (JSON and CSV requests) back into the
rows that were sent, records outside the window skipped, malformed lines counted.

Job code, in-process: runs in the SageMaker runtime (``tests/jobs/sagemaker``)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from mlops.lake import local_path
from mlops.monitoring import capture_reader
from tests.jobs.sagemaker.monitoring_fixtures import curated, make_lake, write_capture

ENDPOINT = "mlops-orders"
T0 = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)


def test_capture_reader_json_csv_and_window(tmp_path):
    _, lake = make_lake(tmp_path)
    _, frame, spec = curated(lake, rows=400)
    columns = spec["numeric"] + spec["categorical"]
    held_out = frame[frame.split == "test"][columns]
    write_capture(lake, ENDPOINT, held_out.iloc[:20], T0, batch=5)
    write_capture(lake, ENDPOINT, held_out.iloc[20:40], T0 + timedelta(hours=1), batch=5, csv=True)
    root = local_path(lake.capture(ENDPOINT))
    everything = capture_reader.read_folder(root, columns)
    assert everything.records == 8 and len(everything.frame) == 40 and everything.malformed == 0
    assert list(everything.frame.columns) == columns and len(everything.predicted_labels) == 40
    first_hour = capture_reader.read_folder(root, columns, T0, T0 + timedelta(hours=1))
    assert first_hour.records == 4 and first_hour.skipped_records == 4
    broken = capture_reader.read_window(io.StringIO('not json\n{"eventMetadata": {}}\n'), columns)
    assert broken.malformed == 2 and broken.frame.empty

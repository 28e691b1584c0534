"""The A/B analysis job and the rule on its summary: a clearly better challenger is promoted, equal variants
keep the champion, and too little traffic or too few matured labels keep it too, saying why.

Job code, in-process: runs in the SageMaker runtime (``tests/jobs/sagemaker``). The captured traffic is
written in SageMaker's capture format (:func:`mlops.serving.capture.capture_record`) with an ``order_id``
per row; the labels are a curated-style Parquet snapshot holding only terminal orders.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops.config import AbTestConfig
from mlops.monitoring import ab_job
from mlops.serving.ab_decision import KEEP, PROMOTE, decide
from mlops.serving.capture import CaptureSettings, capture_key, capture_record

CLASSES = ["cancelled", "delivered", "returned"]
T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def _probabilities(truth: np.ndarray, skill: float, rng: np.random.Generator) -> np.ndarray:
    """Class probabilities: ``skill`` of the mass on the true class, the rest random (skill 0: uninformative)."""
    noise = rng.dirichlet(np.ones(len(CLASSES)), size=len(truth))
    onehot = np.eye(len(CLASSES))[[CLASSES.index(t) for t in truth]]
    return skill * onehot + (1 - skill) * noise


def write_variant(root: Path, variant: str, truth: np.ndarray, ids: np.ndarray, skill: float, seed: int) -> None:
    """Capture files of one variant: requests of 10 rows, each row carrying its order_id."""
    rng = np.random.default_rng(seed)
    proba = _probabilities(truth, skill, rng)
    settings = CaptureSettings(destination_uri=root.as_uri())
    lines = []
    for start in range(0, len(truth), 10):
        rows = range(start, min(start + 10, len(truth)))
        body = {"instances": [{"order_id": int(ids[i]), "basket_value": 10.0} for i in rows]}
        answer = {
            "predictions": [
                {"label": CLASSES[int(np.argmax(proba[i]))], "probabilities": dict(zip(CLASSES, proba[i], strict=True))}
                for i in rows
            ]
        }
        record = capture_record(
            settings,
            request_body=json.dumps(body).encode(),
            request_content_type="application/json",
            response_body=json.dumps(answer).encode(),
            response_content_type="application/json",
            when=T0 + timedelta(minutes=start // 10),
        )
        lines.append(json.dumps(record))
    folder = root.parent / capture_key(root.name, variant, T0)  # root is <capture>/<endpoint>
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "00-00-000-x.jsonl").write_text("\n".join(lines) + "\nnot json\n")


def build(tmp_path: Path, skills: dict[str, float], rows: int = 400, labeled_share: float = 1.0) -> dict:
    """Capture of both variants and labels of ``labeled_share`` of their orders; returns the job's summary."""
    rng = np.random.default_rng(1)
    capture, labels = tmp_path / "capture" / "ep", tmp_path / "labels"
    all_ids, all_truth = [], []
    for offset, (variant, skill) in enumerate(skills.items()):
        ids = np.arange(rows) + offset * 100_000
        truth = rng.choice(CLASSES, size=rows, p=[0.15, 0.6, 0.25])
        write_variant(capture, variant, truth, ids, skill, seed=10 + offset)
        keep = rng.random(rows) < labeled_share  # the others are still open orders: no label yet
        all_ids += ids[keep].tolist()
        all_truth += truth[keep].tolist()
    (labels / "split=test").mkdir(parents=True)
    pd.DataFrame({"order_id": all_ids, "label": all_truth}).to_parquet(labels / "split=test" / "part-0.parquet")
    args = ab_job.parse_args(
        [
            f"--capture={capture}", f"--labels={labels}", f"--output={tmp_path / 'out'}", "--endpoint-name=ep",
            "--champion=champion", "--challenger=challenger", f"--window-start={T0.isoformat()}",
            f"--window-end={(T0 + timedelta(days=1)).isoformat()}", "--bootstrap-samples=300",
        ]
    )  # fmt: skip
    assert ab_job.main(args_list(args)) == 0
    return json.loads((tmp_path / "out" / "ab_summary.json").read_text())


def args_list(args) -> list[str]:
    return [f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items()]


RULE = AbTestConfig(min_requests=20, min_labeled=100, min_improvement=0.01)


def test_a_clearly_better_challenger_is_promoted(tmp_path):
    summary = build(tmp_path, {"champion": 0.0, "challenger": 0.6})
    champion, challenger = summary["variants"]["champion"], summary["variants"]["challenger"]
    assert champion["requests"] == challenger["requests"] == 40 and champion["rows"] == 400
    assert challenger["map"] > champion["map"] + 0.2 and summary["map_difference_ci"][0] > 0.1
    assert challenger["map_ci"][0] <= challenger["map"] <= challenger["map_ci"][1]
    assert abs(sum(challenger["prediction_mix"].values()) - 1) < 1e-3 and summary["unreadable_lines"] == 2
    decision = decide(summary, RULE)
    assert decision["action"] == PROMOTE and decision["winner"] == "challenger"
    assert "promote challenger challenger" in decision["reason"] and "95% interval" in decision["reason"]


def test_equal_variants_keep_the_champion(tmp_path):
    summary = build(tmp_path, {"champion": 0.4, "challenger": 0.4})
    low, high = summary["map_difference_ci"]
    assert low < RULE.min_improvement and low < 0 < high  # no difference beyond the noise
    decision = decide(summary, RULE)
    assert decision["action"] == KEEP and decision["winner"] == "champion"
    assert "does not clear min_improvement 0.01" in decision["reason"]


def test_too_little_traffic_or_too_few_labels_keep_the_champion(tmp_path):
    summary = build(tmp_path, {"champion": 0.0, "challenger": 0.6}, labeled_share=0.2)
    assert 40 < summary["variants"]["challenger"]["labeled_rows"] < 100
    decision = decide(summary, RULE)
    assert decision["action"] == KEEP and "labels not matured" in decision["reason"]
    busy = AbTestConfig(min_requests=1000, min_labeled=10)
    assert "not enough traffic: champion champion has 40 captured requests" in decide(summary, busy)["reason"]


@pytest.mark.parametrize("window_hours", [0])
def test_records_outside_the_window_are_left_out(tmp_path, window_hours):
    build(tmp_path, {"champion": 0.0, "challenger": 0.6})
    args = ab_job.parse_args(
        [
            f"--capture={tmp_path / 'capture' / 'ep'}", f"--labels={tmp_path / 'labels'}",
            f"--output={tmp_path / 'later'}", "--endpoint-name=ep", "--champion=champion", "--challenger=challenger",
            f"--window-start={(T0 + timedelta(days=1)).isoformat()}",
            f"--window-end={(T0 + timedelta(days=2)).isoformat()}",
        ]
    )  # fmt: skip
    summary = ab_job.summarize(args)
    assert summary["variants"]["champion"]["requests"] == 0 and "map_difference" not in summary
    assert "not enough traffic" in decide(summary, RULE)["reason"]

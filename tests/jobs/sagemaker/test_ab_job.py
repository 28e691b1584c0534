"""The A/B analysis job and the rule on its summary: a clearly better challenger is promoted, equal variants
keep the champion, and too little traffic or too few matured labels keep it too, saying why.

Job code, in-process: runs in the SageMaker runtime (``tests/jobs/sagemaker``). The captured traffic is
written in SageMaker's capture format (:mod:`tests.ab_fixtures`) with an ``order_id``
per row; the labels are a curated-style Parquet snapshot holding only terminal orders.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mlops.config import AbTestConfig
from mlops.monitoring import ab_job
from mlops.serving.ab_decision import KEEP, PROMOTE, decide
from tests.ab_fixtures import write_ab_traffic

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def build(tmp_path: Path, skills: dict[str, float], labeled_share: float = 1.0) -> dict:
    """Capture of both variants and labels of ``labeled_share`` of their orders; returns the job's summary."""
    capture, labels = tmp_path / "capture", tmp_path / "labels"
    write_ab_traffic(capture, labels, "ep", skills, when=T0, labeled_share=labeled_share)
    args = ab_job.parse_args(
        [
            f"--capture={capture / 'ep'}", f"--labels={labels}", f"--output={tmp_path / 'out'}", "--endpoint-name=ep",
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

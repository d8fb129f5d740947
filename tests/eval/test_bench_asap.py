"""`scoring bench asap-aes --route` on a small ASAP-shaped folder the test writes (the real data never ships).

The benchmark is how the routing targets are measured, so CI runs it end to end: every key the issue asks
for is on the final line, the files it promises exist, and calibration never sees the test ids.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from scoring.cli import app
from scoring.policy import load_policy

DETAILS = [
    "The road was hot and the cyclist had no water left in his bottle.",
    "The hills were steep so he had to push hard and lost energy.",
    "The town was abandoned which made him feel hopeless and alone.",
    "The old pump gave brackish water that made him sick.",
    "The snake on the road showed how dangerous the setting was.",
    "The outdated directions from the old men sent him the wrong way.",
]
FILLER = ["I think this story is about a boy.", "He rode a bike.", "It was a long day.", "The end was good."]


def _write_asap(folder: Path, n: int = 150, n_test: int = 40, seed: int = 3) -> list[int]:
    """Set 3 (0-3): the score counts the story details used; raters disagree by one now and then."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        true = int(rng.integers(0, 4))
        r1, r2 = (int(np.clip(true + rng.choice([0, 0, 0, 0, -1, 1]), 0, 3)) for _ in range(2))
        picked = rng.choice(len(DETAILS), size=true + (true == 3), replace=False)
        words = [DETAILS[k] for k in picked] + list(rng.choice(FILLER, size=2, replace=False))
        rng.shuffle(words)
        rows.append({"essay_id": 1000 + i, "essay_set": 3, "essay": " ".join(words),
                     "rater1_domain1": r1, "rater2_domain1": r2, "domain1_score": max(r1, r2)})
    with (folder / "training_set_rel3.tsv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]), delimiter="\t", quoting=csv.QUOTE_NONE)
        w.writeheader()
        w.writerows(rows)
    test_ids = [r["essay_id"] for r in rows[-n_test:]]
    (folder / "fold_0").mkdir()
    (folder / "fold_0" / "test_ids.txt").write_text("\n".join(map(str, test_ids)) + "\n")
    return test_ids


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path, int]:
    data = tmp_path_factory.mktemp("asap")
    test_ids = _write_asap(data)
    out = tmp_path_factory.mktemp("bench-out")
    res = CliRunner().invoke(app, [
        "bench", "asap-aes", "--data-dir", str(data), "--sets", "3", "--route", "--no-throughput",
        "--method", "none", "--cache-dir", str(tmp_path_factory.mktemp("cache")), "--out", str(out),
    ])
    assert res.exit_code == 0, res.output
    assert "--method none" in res.output.splitlines()[0]  # the reproduce line names every option that matters
    return json.loads(res.output.strip().splitlines()[-1]), out, 150 - len(test_ids)


def test_final_line_carries_every_routing_figure_the_issue_names(bench_run: tuple[dict, Path, int]) -> None:
    summary, _, _ = bench_run
    for key in ("auto_fraction", "auto_qwk_mean", "human_qwk_auto_items", "human_qwk_mean", "coverage",
                "coverage_nominal", "ece_before", "ece_after", "qwk_mean", "baseline_qwk_mean",
                "auto_qwk_vs_r2_mean", "route_sets_meeting_bar_vs_r2"):  # the bar's comparison
        assert key in summary, key
    assert 0.0 <= summary["auto_fraction"] <= 1.0
    assert summary["coverage_nominal"] == 0.9 and 0.0 <= summary["coverage"] <= 1.0
    assert summary["route_method"] == "none" and summary["route_calibration"] == "cross-fit"
    assert summary["qwk_mean"] > 0.5  # the details are learnable: a broken scorer would sit near 0


def test_the_requested_calibration_method_is_the_one_used(bench_run: tuple[dict, Path, int]) -> None:
    _, out, _ = bench_run
    rows = list(csv.DictReader((out / "route_per_criterion.csv").open()))
    assert [(r["set"], r["criterion"], r["calibration"]) for r in rows] == [("3", "holistic", "none")]
    assert rows[0]["ece_before"] == rows[0]["ece_after"]  # "none" leaves the probabilities as they were


def test_policy_is_tuned_on_training_ids_only_and_a_plot_is_written(bench_run: tuple[dict, Path, int]) -> None:
    summary, out, n_train = bench_run
    policy = load_policy(out / "policies" / "set3.yaml")
    assert policy.criteria["holistic"].evidence["n_cal"] == n_train  # cross-fitted training ids, no test id
    assert Path(summary["route_plot"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unknown_calibration_method_is_refused_before_any_work(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["bench", "asap-aes", "--data-dir", str(tmp_path), "--route", "--method", "platt"])
    assert res.exit_code == 2
    said = " ".join(res.output.replace("│", " ").split())  # rich draws a box and wraps long lines
    assert "Invalid value for --method: expected one of auto, temperature, isotonic, none, found 'platt'" in said


@pytest.mark.parametrize("bench, keys", [
    ("backlog", ["n", "texts_per_s_files_only", "texts_per_s_with_store", "store_overhead", "queued", "auto_fraction",
                 "report_auto_fraction", "audit_verified", "files_equal_files_only"]),
    ("credential", ["auto_decision_fraction", "decision_kappa_auto", "human_decision_kappa", "false_award_rate",
                    "false_deny_rate", "human_false_award_rate", "human_false_deny_rate"]),
])
def test_the_backlog_and_credential_benchmarks_run_end_to_end_on_an_asap_shaped_folder(
        tmp_path: Path, bench: str, keys: list[str]) -> None:
    data = tmp_path / "asap"
    data.mkdir()
    _write_asap(data, n=120, n_test=30)
    res = CliRunner().invoke(app, ["bench", bench, "--data-dir", str(data), "--sets", "3",
                                   "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output.strip().splitlines()[-1])
    assert all(k in summary for k in keys), summary
    if bench == "backlog":
        assert summary["n"] == 30 and summary["audit_verified"] is True and summary["files_equal_files_only"] is True
        assert summary["auto_fraction"] == pytest.approx(summary["report_auto_fraction"], abs=1e-4)
    else:
        assert summary["n"] == 30 and 0.0 <= summary["auto_decision_fraction"] <= 1.0

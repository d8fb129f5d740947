"""`scoring bench route-guarantee` on a small ASAP-shaped folder the test writes (the real data never ships)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from test_bench_asap import _write_asap
from typer.testing import CliRunner

from scoring.cli import app


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    data = tmp_path_factory.mktemp("asap")
    _write_asap(data, n=260, n_test=120)
    out = tmp_path_factory.mktemp("rg-out")
    res = CliRunner().invoke(app, [
        "bench", "route-guarantee", "--data-dir", str(data), "--sets", "3", "--splits", "3",
        "--signals", "probability,+distance", "--cache-dir", str(tmp_path_factory.mktemp("cache")), "--out", str(out),
    ])
    assert res.exit_code == 0, res.output
    return json.loads(res.output.strip().splitlines()[-1]), out


def test_final_line_carries_the_violation_rates_before_and_after(run: tuple[dict, Path]) -> None:
    summary, _ = run
    for key in ("violation_rate", "violation_rate_before", "auto_fraction_mean", "auto_fraction_mean_before", "delta"):
        assert key in summary, key
    assert summary["delta"] == 0.05 and summary["n_cases"] == 3 and summary["splits"] == 3
    assert 0.0 <= summary["violation_rate"] <= 1.0 and 0.0 <= summary["auto_fraction_mean"] <= 1.0
    assert set(summary["signals"]) == {"probability", "+distance"}


def test_final_line_figures_are_the_shares_of_the_written_split_rows(run: tuple[dict, Path]) -> None:
    summary, out = run
    rows = list(csv.DictReader((out / "route_guarantee_splits.csv").open()))
    for method, rate_key, auto_key in (("ltt", "violation_rate", "auto_fraction_mean"),
                                       ("best", "violation_rate_before", "auto_fraction_mean_before")):
        mine = [r for r in rows if r["method"] == method]
        assert mine, method
        assert {r["violation"] for r in mine} <= {"True", "False"}
        violating = sum(r["violation"] == "True" for r in mine)
        auto_mean = sum(float(r["auto_fraction"]) for r in mine) / len(mine)
        assert summary[rate_key] == pytest.approx(violating / len(mine), abs=5e-5), rate_key
        assert summary[auto_key] == pytest.approx(auto_mean, abs=5e-5), auto_key
    assert summary["n_cases"] == sum(r["method"] == "ltt" for r in rows)


def test_splits_are_disjoint_halves_of_the_held_out_ids_and_cached(run: tuple[dict, Path]) -> None:
    _, out = run
    rows = list(csv.DictReader((out / "route_guarantee_splits.csv").open()))
    assert {r["method"] for r in rows} == {"ltt", "best", "+distance"}
    assert all(int(r["n_cal"]) + int(r["n_test"]) == 120 for r in rows)
    assert (out / "cache" / "set3-fold0.pkl").exists(), "held-out probabilities are kept: reruns do not retrain"

"""``scoring policy check``: a policy's promise judged on fresh double-scored data, as a user runs it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from scoring.cli import app
from scoring.policy import CriterionPolicy, RoutingPolicy, save_policy
from scoring.policy_check import check_criterion

runner = CliRunner()
LEVELS = [0, 1, 2, 3, 4]


def _policy(tmp_path: Path) -> Path:
    pol = RoutingPolicy(policy_version="p-1", model_version="model-1", criteria={
        "quality": CriterionPolicy(min_confidence=0.5, evidence={"guarantee": {"delta": 0.05, "statistic": "qwk"}})})
    return save_policy(pol, tmp_path / "policy.yaml")


def _fresh_data(tmp_path: Path, machine_noise: float, n: int = 400, seed: int = 0,
                model_version: str = "model-1", routed: bool = True) -> tuple[Path, Path]:
    """A routed output of `scoring score --policy` (JSONL) and a CSV of two independent human scores."""
    rng = np.random.default_rng(seed)
    latent = rng.uniform(-0.4, 4.4, n)
    r1 = np.clip(np.round(latent + rng.normal(0, 0.6, n)), 0, 4).astype(int)
    r2 = np.clip(np.round(latent + rng.normal(0, 0.6, n)), 0, 4).astype(int)
    m = np.clip(np.round(latent + rng.normal(0, machine_noise, n)), 0, 4).astype(int)
    routes = np.where(rng.random(n) < 0.7, "auto", "human")
    routes[:20] = "double"  # a double-scoring sample: accepted by the rule, two humans
    scored = tmp_path / f"scored-{machine_noise}-{model_version}-{routed}.jsonl"
    with scored.open("w", encoding="utf-8") as fh:
        for i in range(n):
            res: dict = {"score": int(m[i]), "probabilities": {str(k): 0.2 for k in LEVELS}}
            if routed:
                reason = "random double-scoring sample (5%); machine rule: auto (confident)" if routes[i] == "double" else "x"
                res.update({"route": str(routes[i]), "rule": "r", "reason": reason, "confidence": 0.9})
            fh.write(json.dumps({"id": f"s{i}", "model_version": model_version, "criteria": {"quality": res}}) + "\n")
    humans = tmp_path / "humans.csv"
    with humans.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "first", "second"])
        for i in range(n):
            w.writerow([f"s{i}", r1[i], r2[i] if i % 50 else ""])  # a few items lack the second score
    return scored, humans


def _check(policy: Path, scored: Path, humans: Path, *extra: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["policy", "check", "--policy", str(policy), "--data", str(scored), "--humans", str(humans),
                               "--score-col", "quality=first", "--second-score-col", "quality=second", *extra])


def test_a_machine_at_human_level_passes_with_intervals(tmp_path: Path) -> None:
    scored, humans = _fresh_data(tmp_path, machine_noise=0.3)
    res = _check(_policy(tmp_path), scored, humans)
    assert res.exit_code == 0, res.output
    out = json.loads(res.output.strip().splitlines()[-1])
    q = out["criteria"]["quality"]
    assert out["status"] == "pass" and q["status"] == "pass" and q["statistic"] == "qwk"
    est, lo, hi = q["difference"]
    assert lo <= est <= hi and q["confirmed"] == (lo >= 0)
    assert q["machine_qwk"][1] <= q["machine_qwk"][0] <= q["machine_qwk"][2] and "human_exact" in q
    assert q["n_checked"] < q["n_accepted"], "accepted items without two human scores are left out, and counted"
    assert "quality: PASS on qwk" in res.output


def test_a_machine_below_the_humans_fails_and_exits_1(tmp_path: Path) -> None:
    scored, humans = _fresh_data(tmp_path, machine_noise=1.6)
    res = _check(_policy(tmp_path), scored, humans)
    assert res.exit_code == 1, res.output
    q = json.loads(res.output.strip().splitlines()[-1])["criteria"]["quality"]
    assert q["status"] == "fail" and q["difference"][2] < 0, "fail: the whole interval lies below the bar"


def test_too_few_double_scored_accepted_items_is_insufficient_not_pass(tmp_path: Path) -> None:
    scored, humans = _fresh_data(tmp_path, machine_noise=0.3, n=40)
    res = _check(_policy(tmp_path), scored, humans)
    assert res.exit_code == 3, res.output  # not a pass: a script gating on the exit code must not deploy it
    last = json.loads(res.output.strip().splitlines()[-1])
    assert last["status"] == "insufficient" and last["criteria"]["quality"]["status"] == "insufficient"
    assert "INSUFFICIENT on qwk" in res.output and "need at least 30 accepted items" in res.output
    assert "undefined" not in res.output


@pytest.mark.parametrize(("case", "message"), [
    ("missing-column", "expected columns ['nope']"),
    ("same-column", "two different people"),
    ("no-second", "each criterion needs both human scores"),
    ("unrouted", "score the file with `scoring score --policy"),
    ("other-model", "was tuned for model model-1"),
    ("no-file", "not found"),
    ("bad-format", "expected the .jsonl or .csv output"),
    ("humans-not-routed", "expected routes"),
    ("unknown-criterion", "have no routed scores"),
    ("text-column", "holds no whole-number score"),
    ("no-shared-id", "no id in"),
    ("one-based", "lie outside the criterion's scale [0, 1, 2, 3, 4]: 5 in"),
])
def test_bad_input_gets_a_clear_error(tmp_path: Path, case: str, message: str) -> None:
    policy = _policy(tmp_path)
    scored, humans = _fresh_data(tmp_path, machine_noise=0.3, n=60)
    args = ["--score-col", "quality=first", "--second-score-col", "quality=second"]
    if case == "missing-column":
        args = ["--score-col", "quality=nope", "--second-score-col", "quality=second"]
    elif case == "same-column":
        args = ["--score-col", "quality=first", "--second-score-col", "quality=first"]
    elif case == "no-second":
        args = ["--score-col", "quality=first"]
    elif case == "unrouted":
        scored, _ = _fresh_data(tmp_path, machine_noise=0.3, n=60, routed=False)
    elif case == "other-model":
        scored, _ = _fresh_data(tmp_path, machine_noise=0.3, n=60, model_version="model-2")
    elif case == "no-file":
        scored = tmp_path / "missing.jsonl"
    elif case == "bad-format":
        scored = tmp_path / "scores.txt"
        scored.write_text("id score\n")
    elif case == "humans-not-routed":
        scored = humans  # the human score file is not a routed output
    elif case == "unknown-criterion":
        args = ["--score-col", "style=first", "--second-score-col", "style=second"]
    elif case in ("text-column", "no-shared-id", "one-based"):
        rows = list(csv.reader(humans.open(encoding="utf-8")))
        other = tmp_path / f"humans-{case}.csv"
        with other.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(rows[0] + ["note"])
            for r in rows[1:]:
                if case == "no-shared-id":
                    r = [f"other-{r[0]}", *r[1:]]
                if case == "one-based":  # exported 1-based: 0-4 written as 1-5
                    r = [r[0], *(str(int(v) + 1) if v else v for v in r[1:])]
                w.writerow([*r, "looks fine"])
        humans = other
        if case == "text-column":
            args = ["--score-col", "quality=note", "--second-score-col", "quality=second"]
    res = runner.invoke(app, ["policy", "check", "--policy", str(policy), "--data", str(scored), "--humans", str(humans),
                              *args])
    assert res.exit_code == 2, res.output
    assert message in " ".join(res.output.replace("│", " ").split()), res.output
    assert "Traceback" not in res.output


def test_an_undefined_kappa_is_judged_on_exact_agreement() -> None:
    ones = np.ones(40)
    # machine vs the second score (the reference), as the first score is: 1.0 vs 0.9 exact agreement
    c = check_criterion("q", ones, np.r_[np.zeros(4), np.ones(36)], ones, statistic="qwk", n_boot=200)
    assert c.statistic == "exact" and c.status == "pass" and c.difference[0] == pytest.approx(0.1)


def test_the_rater_scale_multiplier_is_shown_in_the_line_and_the_json() -> None:
    # a user who passes raters already on the sum scale must see that they were doubled
    rng = np.random.default_rng(3)
    h = rng.integers(1, 7, 80).astype(float)
    c = check_criterion("q", 2 * h, h, h, statistic="qwk", n_boot=100, rater_multiplier=2)
    assert c.as_dict()["rater_multiplier"] == 2 and "raters x2" in c.line()
    one = check_criterion("q", h, h, h, statistic="qwk", n_boot=100)
    assert one.as_dict()["rater_multiplier"] == 1 and "raters x" not in one.line()


def test_an_empty_second_column_is_not_yet_double_scored_and_a_disabled_criterion_has_nothing_to_check(
        tmp_path: Path) -> None:
    scored, humans = _fresh_data(tmp_path, machine_noise=0.3, n=60)
    rows = list(csv.reader(humans.open(encoding="utf-8")))
    blank = tmp_path / "first-only.csv"
    with blank.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(rows[0])
        w.writerows([[r[0], r[1], ""] for r in rows[1:]])  # nobody second-scored yet
    res = _check(_policy(tmp_path), scored, blank)
    assert res.exit_code == 3 and "INSUFFICIENT" in res.output, res.output
    off = save_policy(RoutingPolicy(policy_version="p-2", model_version="model-1", criteria={
        "quality": CriterionPolicy(enabled=False, evidence={"why": "nothing certified"})}), tmp_path / "off.yaml")
    res = _check(off, scored, humans)
    out = " ".join(res.output.split())
    assert res.exit_code == 0 and "automates nothing on this criterion" in out, res.output
    assert json.loads(res.output.strip().splitlines()[-1])["criteria"] == {}
